//! A full disk, for real (issue 14 finding 10), on both stores: the data directory on a small
//! tmpfs filled by a file. Below `store.min_free_mb` writes get 503 `things:thing.unavailable`
//! naming the full disk, while reads, searches and an open WebSocket subscription keep working
//! and `/health` says DOWN; once the file is deleted writes resume by themselves; the gateway
//! starts on a completely full disk and serves reads; no acknowledged write is lost.
//! Needs root to mount the tmpfs; otherwise each test prints SKIPPED.

use crate::common::disk::Tmpfs;
use crate::common::http::{Http, Resp};
use crate::common::*;
use serde_json::json;
use std::time::{Duration, Instant};

const THING: &str = "/api/2/things/disk:t0";

async fn eventually_status(http: &Http, n: u64, want: u16) -> Resp {
    let t = Instant::now();
    loop {
        let r = http.put(&format!("{THING}/attributes/n"), &json!(n)).await;
        if r.status == want {
            return r;
        }
        assert!(t.elapsed() < WAIT, "PUT n={n}: {} {}", r.status, r.text());
        smol::Timer::after(Duration::from_millis(100)).await;
    }
}

async fn n_is(http: &Http, n: u64) {
    let r = http.get(&format!("{THING}/attributes/n")).await;
    assert_eq!((r.status, r.json()), (200, json!(n)), "{}", r.text());
}

fn full_disk(store: &str) {
    let fs = match Tmpfs::mount(96) {
        Ok(fs) => fs,
        Err(why) => return eprintln!("SKIPPED: {why}"),
    };
    let data = fs.path().join("data");
    let conf = fs.path().join("edgetwin.toml");
    std::fs::write(
        &conf,
        format!("[store]\nbackend = \"{store}\"\nmin_free_mb = 16\n"),
    )
    .unwrap();
    let conf = conf.to_str().unwrap().to_owned();
    let mut srv = Server::start_in(&data, &["--config", &conf]);
    block_on(async {
        let http = Http::new(srv.addr);
        let r = http.put(THING, &json!({"attributes": {"n": 0}})).await;
        assert_eq!(r.status, 201, "{}", r.text());
        for n in 1..=20 {
            assert_eq!(
                http.put(&format!("{THING}/attributes/n"), &json!(n))
                    .await
                    .status,
                204
            );
        }
        let mut sub = srv.ws().await;
        sub.control("START-SEND-EVENTS").await;
        assert_eq!(http.get("/health").await.status, 200);

        let filler = fs.fill(8 << 20);
        // writes refused with a clear error (HTTP and WS), nothing stored
        let r = eventually_status(&http, 21, 503).await;
        assert_eq!(
            r.json()["error"],
            "things:thing.unavailable",
            "{}",
            r.text()
        );
        assert!(r.text().contains("disk full"), "{}", r.text());
        let mut ws = srv.ws().await;
        let e = ws
            .request(modify("disk:t0", "/attributes/n", json!(21)))
            .await;
        assert_eq!(e["status"], 503, "{e}");
        assert_eq!(e["value"]["error"], "things:thing.unavailable", "{e}");
        // reads, searches and the subscription go on; health says why
        n_is(&http, 20).await;
        let s = http
            .get("/api/2/search/things?filter=eq(attributes/n,20)")
            .await;
        assert_eq!(s.status, 200, "{}", s.text());
        assert_eq!(s.json()["items"][0]["thingId"], "disk:t0", "{}", s.text());
        let r = ws
            .request(command("disk:t0", "retrieve", "/attributes/n", None))
            .await;
        assert_eq!(
            (r["status"].clone(), r["value"].clone()),
            (json!(200), json!(20))
        );
        let h = http.get("/health").await;
        assert_eq!((h.status, h.json()), (503, json!({"status": "DOWN"})));
        let sh = http.get("/status/health").await.json();
        assert_eq!(sh["store"]["status"], "DEGRADED", "{sh}");
        assert_eq!(sh["store"]["writable"], false, "{sh}");
        assert!(
            sh["store"]["reason"]
                .as_str()
                .unwrap()
                .contains("disk full"),
            "{sh}"
        );

        // space freed: writes resume by themselves, the subscription sees them
        std::fs::remove_file(&filler).unwrap();
        eventually_status(&http, 21, 204).await;
        let ev = sub
            .next_event(WAIT)
            .await
            .expect("event after the disk was freed");
        assert_eq!(ev["value"], 21, "{ev}");
        assert_eq!(http.get("/health").await.status, 200);
    });
    assert!(srv.terminate().success());

    // a completely full disk at start: the gateway starts and serves reads
    let filler = fs.fill(0);
    let mut srv = Server::start_in(&data, &["--config", &conf]);
    block_on(async {
        let http = Http::new(srv.addr);
        n_is(&http, 21).await;
        let r = http.put(&format!("{THING}/attributes/n"), &json!(22)).await;
        assert_eq!(r.status, 503, "{}", r.text());
        assert_eq!(http.get("/health").await.status, 503);
        std::fs::remove_file(&filler).unwrap();
        eventually_status(&http, 22, 204).await;
    });
    // every acknowledged write is there after a crash
    srv.kill9();
    let srv = Server::start_in(&data, &["--config", &conf]);
    block_on(n_is(&Http::new(srv.addr), 22));
}

#[test]
fn full_disk_redb() {
    full_disk("redb");
}

#[test]
fn full_disk_sled() {
    full_disk("sled");
}
