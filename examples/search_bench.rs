//! Search benchmark (not a test): N generated twins in a fresh sled store, the index built from
//! them (bulk rebuild, as at first start on an old data dir), then p50/p99 latencies of indexed
//! queries next to the same queries forced through a full scan of the things (`not(not(..))`
//! is not indexable), and the peak RSS of the query phase (VmHWM reset via /proc/self/clear_refs).
//!
//! `cargo run --release --example search_bench -- [N] [ROUNDS] [sled|redb] [own]` (defaults
//! 100000, 200, sled; `own` = every twin has its own policy instead of one shared policy).
//! Figures go to BENCHMARKS.md ("## Search").

use edgetwin::engine::ThingState;
use edgetwin::hub::{Hub, Requester};
use edgetwin::policy::PolicyState;
use edgetwin::rql::parse_options;
use edgetwin::search::{rebuild, request, Searcher, Spec};
use edgetwin::store::{BackendKind, Op, Store, Tree};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn status(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn du(path: &std::path::Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(path) {
        for e in rd.flatten() {
            let p = e.path();
            total += if p.is_dir() {
                du(&p)
            } else {
                e.metadata().map(|m| m.len()).unwrap_or(0)
            };
        }
    }
    total
}

fn thing(i: u64, own_policy: bool) -> ThingState {
    let temp = 15.0 + ((i * 7919) % 1500) as f64 / 100.0; // 15.00 .. 29.99
    ThingState {
        thing: json!({
            "thingId": format!("bench:t{i:06}"),
            "policyId": if own_policy { format!("bench:t{i:06}") } else { "bench:policy".to_owned() },
            "attributes": {
                "serial": format!("SN-{i:06}"),
                "counter": i,
                "room": format!("room-{}", i % 100),
                "temp": temp,
                "active": i.is_multiple_of(3),
                "tags": [format!("t{}", i % 10), "fleet"],
                "location": {"building": format!("b{}", i % 7), "floor": i % 12}
            },
            "features": {"env": {"properties": {"temperature": temp, "humidity": i % 100}},
                         "lamp": {"properties": {"on": i.is_multiple_of(2)}}}
        }),
        revision: 1,
        created: 1_700_000_000_000 + i as i64,
        modified: 1_700_000_000_000 + i as i64,
        metadata: None,
        deleted: false,
    }
}

fn spec(filter: &str, options: &str) -> Spec {
    let r = request::resolve(
        &request::Params {
            filters: vec![filter.to_owned()],
            options: Some(options.to_owned()),
            ..Default::default()
        },
        request::Endpoint::Search,
    )
    .unwrap_or_else(|e| panic!("{filter}: {e:?}"));
    r.spec
}

struct Row {
    name: String,
    p50: Duration,
    p99: Duration,
    examined: u64,
    result: String,
    /// p50 / p99 per round of the wall time minus the time the thread waited for a CPU, and
    /// p99 of that wait
    cpu: (Duration, Duration, Duration),
}

/// How long this thread has waited in the run queue for a CPU so far (ns, scheduler statistics;
/// exact, unlike the on-CPU time there, which is updated only at ticks for a running thread).
fn run_queue_wait() -> u64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    s.split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0)
}

type Measured = (
    Duration,
    Duration,
    u64,
    String,
    (Duration, Duration, Duration),
);

fn measure(rounds: usize, mut f: impl FnMut(usize) -> (u64, String)) -> Measured {
    let (mut times, mut work, mut wait) = (Vec::new(), Vec::new(), Vec::new());
    let (mut examined, mut result) = (0, String::new());
    for r in 0..rounds {
        let w0 = run_queue_wait();
        let t = Instant::now();
        let (e, res) = f(r);
        let wall = t.elapsed();
        let waited = Duration::from_nanos(run_queue_wait().saturating_sub(w0));
        times.push(wall);
        work.push(wall.saturating_sub(waited));
        wait.push(waited);
        examined = e;
        result = res;
    }
    if std::env::var_os("SEARCH_BENCH_TIMES").is_some() {
        // every round's time without its run-queue wait (ms) in round order: where the slow
        // ones fall
        let ms: Vec<String> = work
            .iter()
            .map(|t| format!("{:.2}", t.as_secs_f64() * 1e3))
            .collect();
        eprintln!("rounds (without run-queue wait): {}", ms.join(" "));
    }
    let p = |v: &mut Vec<Duration>, q: usize| {
        v.sort();
        v[(v.len() * q / 100).min(v.len() - 1)]
    };
    let c = (p(&mut work, 50), p(&mut work, 99), p(&mut wait, 99));
    (p(&mut times, 50), p(&mut times, 99), examined, result, c)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let rounds: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let backend: BackendKind = args
        .get(2)
        .map_or(Ok(BackendKind::Sled), |b| b.parse())
        .expect("sled|redb");
    // "own": every twin has its own policy (Ditto's default for a created thing)
    let own = args.get(3).is_some_and(|a| a == "own");
    let scan_rounds = (rounds / 10).max(5);
    let tmp = tempfile::tempdir().expect("tempdir");
    // the store cache of a server with the default config (`cache_mib`); SEARCH_BENCH_CACHE_MIB
    // sets another
    let cache_mib: u64 = std::env::var("SEARCH_BENCH_CACHE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(edgetwin::config::Config::default().cache_mib);
    let store = Store::open(backend, tmp.path(), cache_mib * 1024 * 1024).expect("store");
    let policy = |id: &str| {
        let p = json!({"policyId": id, "entries": {"all": {
            "subjects": {"nginx:bench": {"type": "t"}},
            "resources": {"thing:/": {"grant": ["READ", "WRITE"], "revoke": []}}}}});
        Op::put(Tree::Policies, id, PolicyState::new(p, 0).to_bytes())
    };
    let seq = store.submit(vec![policy("bench:policy")]);
    smol::block_on(store.durable(seq)).unwrap();
    let t = Instant::now();
    let (mut ops, mut bytes) = (Vec::new(), 0);
    for i in 0..n {
        let b = thing(i, own).to_bytes();
        bytes += b.len();
        ops.push(Op::put(Tree::Things, format!("bench:t{i:06}"), b));
        if own {
            let p = policy(&format!("bench:t{i:06}"));
            bytes += p.value.as_ref().map_or(0, Vec::len);
            ops.push(p);
        }
        // small commits: sled 0.34 keeps memory for batches above ~128 KiB (see rebuild.rs)
        if bytes >= 64 * 1024 {
            let seq = store.submit(std::mem::take(&mut ops));
            smol::block_on(store.durable(seq)).unwrap();
            bytes = 0;
        }
    }
    let seq = store.submit(ops);
    smol::block_on(store.durable(seq)).unwrap();
    let load = t.elapsed();
    let things_bytes = du(tmp.path());
    let rss_load = status("VmRSS:");
    let stats = rebuild::rebuild(&store).expect("rebuild");
    let index_bytes = du(tmp.path()).saturating_sub(things_bytes);
    let rss_index = status("VmRSS:");
    // per-write cost of the index delta (what the twin write path adds for a cached twin):
    // modify one attribute
    let pairs: Vec<_> = (0..10_000u64.min(n))
        .map(|i| {
            let old = thing(i, own);
            let size = edgetwin::search::index::sized_entries(&old).1;
            let mut new = old.clone();
            new.thing["attributes"]["counter"] = json!(i + 1);
            new.revision += 1;
            new.modified += 1;
            (old, size, new)
        })
        .collect();
    let t = Instant::now();
    let mut delta_ops = 0;
    for (old, size, new) in &pairs {
        let (ops, _) = edgetwin::search::delta::write_ops(Some(old), Some(*size), Some(new));
        delta_ops += ops.len();
    }
    let delta_time = t.elapsed() / 10_000u32.min(n as u32).max(1);

    let hub = Hub::new(store.clone());
    let who = Requester {
        subjects: Arc::from(vec!["nginx:bench".to_owned()]),
        origin: None,
    };
    let rss_before = status("VmRSS:");
    reset_peak();
    let now = edgetwin::clock::now_millis();
    let mut rows: Vec<Row> = Vec::new();
    let only = std::env::var("SEARCH_BENCH_ONLY").ok(); // profiling: run matching rows only
    let mut run = |name: &str,
                   filter: &dyn Fn(usize) -> String,
                   options: &str,
                   count: bool,
                   rounds: usize| {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            return;
        }
        let (p50, p99, examined, result, cpu) = measure(rounds, |r| {
            let s = spec(&filter(r), options);
            let mut q = Searcher::new(&hub, &who, now, None);
            let res = if count {
                let n = q.count(&s).expect("count");
                // candidates decided from the index alone (search::counted): not loaded
                match q.decided_by_index {
                    0 => n.to_string(),
                    d => format!("{n} ({d} decided by the index)"),
                }
            } else {
                let p = q
                    .page(&s, None, parse_options(options).unwrap().page_size())
                    .expect("page");
                format!(
                    "{} items{}",
                    p.items.len(),
                    if p.more.is_some() { " +more" } else { "" }
                )
            };
            (q.examined, res)
        });
        rows.push(Row {
            name: name.to_owned(),
            p50,
            p99,
            examined,
            result,
            cpu,
        });
    };
    let serial = |r: usize| format!("eq(attributes/serial,\"SN-{:06}\")", (r as u64 * 7_919) % n);
    let range = |r: usize| {
        let lo = 16.0 + (r % 10) as f64;
        format!(
            "and(ge(attributes/temp,{lo:.1}),lt(attributes/temp,{:.1}))",
            lo + 2.0
        )
    };
    let like = |r: usize| {
        format!(
            "like(attributes/serial,\"SN-0{:02}1*\")",
            r as u64 % (n / 10_000).max(1)
        )
    };
    let room = |r: usize| format!("eq(attributes/room,\"room-{}\")", r % 100);
    let scan = |f: String| format!("not(not({f}))");
    // (name, filter, options, count?, phase): indexed queries run first, then the heap plan,
    // then the full scans (which fill sled's cache), so each phase's peak RSS is its own
    type Filter<'a> = Box<dyn Fn(usize) -> String + 'a>;
    let queries: Vec<(&str, Filter, &str, bool, u8)> = vec![
        (
            "eq attributes/serial (1 hit)",
            Box::new(serial),
            "size(25)",
            false,
            0,
        ),
        (
            "  same, full scan",
            Box::new(move |r| scan(serial(r))),
            "size(25)",
            false,
            2,
        ),
        (
            "range temp [x,x+2) sort(+temp) size(25)",
            Box::new(range),
            "sort(+attributes/temp),size(25)",
            false,
            0,
        ),
        (
            "  same, full scan",
            Box::new(move |r| scan(range(r))),
            "sort(+attributes/temp),size(25)",
            false,
            2,
        ),
        (
            "range temp [x,x+2) sort(-temp) size(25) (heap)",
            Box::new(range),
            "sort(-attributes/temp),size(25)",
            false,
            1,
        ),
        (
            "like serial \"SN-0xx1*\" (100 hits)",
            Box::new(like),
            "size(25)",
            false,
            0,
        ),
        (
            "  same, full scan",
            Box::new(move |r| scan(like(r))),
            "size(25)",
            false,
            2,
        ),
        ("count eq attributes/room (1%)", Box::new(room), "", true, 0),
        (
            "  same, full scan",
            Box::new(move |r| scan(room(r))),
            "",
            true,
            2,
        ),
        (
            "count like serial \"SN-0xx1*\" (100)",
            Box::new(like),
            "",
            true,
            0,
        ),
        (
            "no filter, sort(+thingId) size(25)",
            Box::new(|_| "exists(thingId)".into()),
            "size(25)",
            false,
            0,
        ),
    ];
    let mut phase_peak = [0u64; 3];
    for phase in 0..3u8 {
        reset_peak();
        for (name, filter, options, count, ph) in &queries {
            if *ph == phase {
                let n = if phase == 0 { rounds } else { scan_rounds };
                run(name, filter.as_ref(), options, *count, n);
            }
        }
        phase_peak[phase as usize] = status("VmHWM:");
    }
    let order: Vec<&str> = queries.iter().map(|q| q.0).collect();
    let mut printed = vec![false; rows.len()];
    let mut sorted_rows = Vec::new();
    for name in order {
        if let Some(i) = (0..rows.len()).find(|&i| !printed[i] && rows[i].name == name) {
            printed[i] = true;
            sorted_rows.push(i);
        }
    }
    let policies = if own {
        "a policy per twin"
    } else {
        "one shared policy"
    };
    println!("## search_bench: {n} twins, {backend}, {cache_mib} MiB cache, {policies}, {rounds} rounds ({scan_rounds} for full scans)");
    println!(
        "load things (no index): {:.2} s, RSS after load {} MiB, after index build {} MiB",
        load.as_secs_f64(),
        rss_load / 1024,
        rss_index / 1024
    );
    println!(
        "index build (bulk rebuild from things): {:.2} s, {} entries ({:.1} per thing), ~{:.0} MiB on disk (things ~{:.0} MiB)",
        stats.millis as f64 / 1000.0,
        stats.entries,
        stats.entries as f64 / n.max(1) as f64,
        index_bytes as f64 / 1048576.0,
        things_bytes as f64 / 1048576.0
    );
    println!(
        "index delta per write (modify one attribute): {} ops, {:.1} us to compute",
        delta_ops / 10_000usize.min(n as usize).max(1),
        delta_time.as_secs_f64() * 1e6
    );
    println!("| query | p50 ms | p99 ms | things examined | result | without run-queue wait p50 / p99 ms | run-queue wait p99 ms |");
    println!("|---|---:|---:|---:|---|---:|---:|");
    for r in sorted_rows.iter().map(|&i| &rows[i]) {
        println!(
            "| {} | {:.2} | {:.2} | {} | {} | {:.2} / {:.2} | {:.2} |",
            r.name,
            r.p50.as_secs_f64() * 1e3,
            r.p99.as_secs_f64() * 1e3,
            r.examined,
            r.result,
            r.cpu.0.as_secs_f64() * 1e3,
            r.cpu.1.as_secs_f64() * 1e3,
            r.cpu.2.as_secs_f64() * 1e3
        );
    }
    println!(
        "RSS before queries {} MiB; peak RSS (VmHWM) of indexed queries {} MiB, heap plan {} MiB, full scans {} MiB",
        rss_before / 1024,
        phase_peak[0] / 1024,
        phase_peak[1] / 1024,
        phase_peak[2] / 1024
    );
    drop(hub);
    store.close().unwrap();
}
