//! History benchmark (not a test), in process on a real redb store in a temp dir:
//! 1. bytes written to the disk per update (`/proc/self/io`), history off vs on, for the
//!    flash_bench workload (one attribute of one of 100 twins of ~200 B, nobody waits) in
//!    simulated time: a log sync every 300 updates, as `flush_interval_ms` does at 300/s;
//!    long enough to include checkpoints and, with `max_revisions`, steady-state drops;
//! 2. disk per 1,000 events (the redb file after a checkpoint, with minus without history,
//!    and the logical bytes history counts);
//! 3. time to answer `at-historical-revision` for one thing with 10k events, per snapshot
//!    spacing (the choice of `SNAPSHOT_EVERY`).
//!
//! Usage and figures: BENCHMARKS.md "History".

use edgetwin::history::{At, Found, History, HistoryConfig};
use edgetwin::hub::{Hub, Requester};
use edgetwin::protocol::{Envelope, Signal};
use edgetwin::rules::acks::AckRequest;
use edgetwin::store::{BackendKind, Store};
use std::sync::Arc;
use std::time::Instant;

fn write_bytes() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    let field = |name: &str| -> u64 {
        io.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    field("write_bytes:").saturating_sub(field("cancelled_write_bytes:"))
}

fn command(text: &str) -> Signal {
    Signal::from_envelope(Envelope::parse(text).expect("envelope")).expect("signal")
}

fn who() -> Requester {
    Requester {
        subjects: Arc::from(vec!["nginx:ditto".to_owned()]),
        origin: None,
    }
}

struct Rig {
    dir: tempfile::TempDir,
    store: Store,
    hub: Hub,
    history: Option<Arc<History>>,
}

fn rig(history: Option<(HistoryConfig, u64)>) -> Rig {
    let dir = tempfile::tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| ".".into()))
        .expect("temp dir");
    // BENCH_PENDING: the store's overlay key bound (a checkpoint starts at half of it)
    let opts = edgetwin::store::Options {
        cache_bytes: 8 << 20,
        max_pending_ops: std::env::var("BENCH_PENDING")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(edgetwin::store::DEFAULT_MAX_PENDING_OPS),
        ..Default::default()
    };
    let store = Store::open_with(BackendKind::Redb, dir.path(), &opts).expect("store");
    let hub = Hub::new(store.clone());
    let history = history.map(|(cfg, every)| {
        let h = Arc::new(History::with_snapshots(cfg, store.clone(), every));
        hub.set_history(h.clone());
        h
    });
    Rig {
        dir,
        store,
        hub,
        history,
    }
}

impl Rig {
    fn run(&self, text: &str) {
        // through the one door, nobody waits (`Durability::Interval`)
        smol::block_on(
            self.hub
                .call(&who(), command(text), &AckRequest::unwaited()),
        )
        .expect("command");
    }

    fn populate(&self, twins: u32) {
        for k in 0..twins {
            self.run(&format!(
                r#"{{"topic":"bench/t{k}/things/twin/commands/modify","headers":{{}},"path":"/","value":{{"attributes":{{"n":0,"name":"sensor {k}","location":"building 1, floor 2, room {k}"}},"features":{{"v":{{"properties":{{"value":0}}}}}}}}}}"#
            ));
        }
        smol::block_on(self.store.checkpoint()).expect("checkpoint");
    }

    /// `updates` updates of random twins, a log sync every `per_sync`; bytes written per update.
    fn updates(&self, twins: u32, updates: u64, per_sync: u64) -> f64 {
        let mut rng = fastrand::Rng::with_seed(7);
        let before = write_bytes();
        for n in 0..updates {
            let k = rng.u32(0..twins);
            self.run(&format!(
                r#"{{"topic":"bench/t{k}/things/twin/commands/modify","headers":{{}},"path":"/attributes/n","value":{}}}"#,
                1_000_000 + n
            ));
            if (n + 1) % per_sync == 0 {
                smol::block_on(self.store.durable(self.store.last_seq())).expect("sync");
            }
        }
        smol::block_on(self.store.durable(self.store.last_seq())).expect("sync");
        let st = self.store.stats();
        eprintln!(
            "store: {} log bytes/update, {} checkpoints, {} checkpoint ops",
            st.wal_bytes / updates,
            st.checkpoints,
            st.checkpoint_ops
        );
        (write_bytes() - before) as f64 / updates as f64
    }

    fn file_bytes(&self) -> u64 {
        smol::block_on(self.store.checkpoint()).expect("checkpoint");
        std::fs::metadata(self.dir.path().join(edgetwin::store::REDB_FILE))
            .map(|m| m.len())
            .unwrap_or(0)
    }
}

fn cfg(max_revisions: u64) -> HistoryConfig {
    HistoryConfig {
        max_revisions,
        max_mb: 0,
        ..HistoryConfig::default()
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: u64| -> u64 {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let updates = arg("--updates", 180_000);
    let max_revisions = arg("--max-revisions", 1000);
    let every = arg("--every", edgetwin::history::SNAPSHOT_EVERY);
    let twins = 100;
    let only_bytes = args.iter().any(|a| a == "--bytes-only");
    println!(
        "## bytes written per update ({updates} updates of 100 twins, a sync per 300, redb)\n"
    );
    println!("| history | snapshot every | max_revisions | bytes/update | ratio |");
    println!("|---|---:|---:|---:|---:|");
    let off = rig(None);
    off.populate(twins);
    let base = off.updates(twins, updates, 300);
    let off_file = off.file_bytes();
    println!("| off | | | {base:.0} | 1.00 |");
    let mut disk = Vec::new();
    for (every, max) in [(every, 0), (every, max_revisions)] {
        let on = rig(Some((cfg(max), every)));
        on.populate(twins);
        let b = on.updates(twins, updates, 300);
        let max_s = if max == 0 {
            "none".into()
        } else {
            max.to_string()
        };
        println!("| on | {every} | {max_s} | {b:.0} | {:.2} |", b / base);
        if max == 0 {
            let h = on.history.as_ref().expect("history").health();
            disk.push((on.file_bytes(), h));
        }
    }
    if let Some((file, h)) = disk.first() {
        let events = h["events"].as_i64().unwrap_or(1).max(1) as f64;
        println!(
            "\n## disk per 1,000 events\n\nredb file {:.0} KiB with history vs {:.0} KiB without: {:.1} KiB per 1,000 events; \
             history counts {:.1} KiB per 1,000 events ({events} events)",
            *file as f64 / 1024.0,
            off_file as f64 / 1024.0,
            (*file as f64 - off_file as f64) / events,
            h["bytes"].as_f64().unwrap_or(0.0) / events,
        );
    }
    if only_bytes {
        return;
    }
    println!("\n## at-historical-revision, one thing with 10,000 events\n");
    println!("| snapshot every | history KiB | mean µs | max µs | ratio to a plain retrieve |");
    println!("|---:|---:|---:|---:|---:|");
    for every in [1, 16, 64, 256, 100_000] {
        let r = rig(Some((cfg(0), every)));
        r.populate(1);
        for n in 0..10_000u64 {
            r.run(&format!(
                r#"{{"topic":"bench/t0/things/twin/commands/modify","headers":{{}},"path":"/attributes/n","value":{n}}}"#
            ));
        }
        smol::block_on(r.store.checkpoint()).expect("checkpoint");
        let h = r.history.as_ref().expect("history");
        let cur = r.hub.load_thing("bench:t0").expect("load").expect("thing");
        let mut rng = fastrand::Rng::with_seed(3);
        let now = edgetwin::clock::now_millis();
        let (mut total, mut max) = (0u128, 0u128);
        let rounds = 200;
        for _ in 0..rounds {
            let rev = rng.u64(1..cur.revision);
            let t = Instant::now();
            let found = h
                .thing_at("bench:t0", At::Revision(rev), &cur, now)
                .expect("read");
            let us = t.elapsed().as_micros();
            assert!(matches!(found, Found::Past(ref s, _) if s.revision == rev));
            total += us;
            max = max.max(us);
        }
        let t = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(r.hub.load_thing("bench:t0").expect("load"));
        }
        let plain = t.elapsed().as_secs_f64() * 1e6 / rounds as f64;
        let mean = total as f64 / rounds as f64;
        let kib = h.health()["bytes"].as_f64().unwrap_or(0.0) / 1024.0;
        let label = if every >= 100_000 {
            "never".into()
        } else {
            every.to_string()
        };
        println!(
            "| {label} | {kib:.0} | {mean:.0} | {max} | {:.0}x |",
            mean / plain.max(0.001)
        );
    }
}
