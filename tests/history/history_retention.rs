//! Retention edges over HTTP: by revisions per thing (just kept / just dropped), by age (the
//! state current at the cutoff stays answerable, the one before it does not), and the
//! `/status/health` figures.

use crate::{counted_health, get_at, put, start, thing};
use serde_json::json;
use std::time::Duration;

const T: &str = "ret:one";

#[test]
fn the_revisions_bound_keeps_exactly_the_last_revisions() {
    smol::block_on(async {
        let rig = start("[history]\nmax_revisions = 3\n");
        let h = &rig.http;
        put(h, T, "", thing(1)).await;
        for n in 2..=5 {
            put(h, T, "/attributes/n", json!(n)).await;
        }
        // revisions 3, 4, 5 are kept: 3 just kept, 2 just dropped
        let (s, v) = get_at(h, T, "/attributes/n", &[("at-historical-revision", "3")]).await;
        assert_eq!((s, v), (200, json!(3)), "just kept");
        let (s, v) = get_at(h, T, "", &[("at-historical-revision", "2")]).await;
        assert_eq!(
            (s, v["error"].clone()),
            (404, json!("things:thing.history.notfound")),
            "just dropped"
        );
        let mut sse = h
            .sse(&format!(
                "/api/2/things/{T}?from-historical-revision=0&fields=_revision"
            ))
            .await
            .unwrap_or_else(|r| panic!("{} {}", r.status, r.text()));
        let mut revs = Vec::new();
        while let Some(v) = sse.next_json(Duration::from_secs(5)).await {
            revs.push(v["_revision"].as_u64().unwrap());
        }
        assert_eq!(
            revs,
            vec![3, 4, 5],
            "the stream starts at the oldest kept revision"
        );
    });
}

#[test]
fn the_age_bound_keeps_the_state_current_at_the_cutoff() {
    smol::block_on(async {
        let rig = start("[history]\nmax_age_secs = 2\n");
        let h = &rig.http;
        put(h, T, "", thing(1)).await; // rev 1, replaced at once
        put(h, T, "/attributes/n", json!(2)).await; // rev 2, current until rev 3
        smol::Timer::after(Duration::from_millis(2300)).await;
        put(h, T, "/attributes/n", json!(3)).await; // rev 3
        let (s, v) = get_at(h, T, "/attributes/n", &[("at-historical-revision", "2")]).await;
        assert_eq!((s, v), (200, json!(2)), "current at the cutoff: kept");
        let (s, v) = get_at(h, T, "", &[("at-historical-revision", "1")]).await;
        assert_eq!(
            (s, v["error"].clone()),
            (404, json!("things:thing.history.notfound")),
            "older: dropped"
        );
        // the sweep removes it from the disk too (within a few sweeps of a second)
        let until = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let health = counted_health(h).await;
            let events = health["history"]["events"].as_i64().unwrap();
            if events <= 2 {
                assert!(health["history"]["bytes"].as_i64().unwrap() > 0, "{health}");
                assert!(health["history"]["oldest"].is_string(), "{health}");
                break;
            }
            assert!(std::time::Instant::now() < until, "not swept: {health}");
            smol::Timer::after(Duration::from_millis(200)).await;
        }
    });
}

/// Whether a change's previous event is kept is remembered in memory by the run that recorded
/// it; after a `kill -9` the store answers. Every revision stays answerable across two kills
/// (a change after a restart continues the run: nothing kept is dropped, nothing is missing).
#[test]
fn a_run_of_revisions_continues_across_kill9() {
    smol::block_on(async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("data");
        let mut srv = crate::common::Server::start_in(&data, &[]);
        let h = crate::common::http::Http::new(srv.addr);
        put(&h, T, "", thing(1)).await; // rev 1
        for n in 2..=4 {
            put(&h, T, "/attributes/n", json!(n)).await; // waited writes: on disk
        }
        srv.kill9();
        for (from, to) in [(5, 6), (7, 7)] {
            srv = crate::common::Server::start_in(&data, &[]);
            let h = crate::common::http::Http::new(srv.addr);
            for n in from..=to {
                put(&h, T, "/attributes/n", json!(n)).await;
            }
            srv.kill9();
        }
        let srv = crate::common::Server::start_in(&data, &[]);
        let h = crate::common::http::Http::new(srv.addr);
        for rev in 1..=7 {
            let r = rev.to_string();
            let (s, v) = get_at(&h, T, "/attributes/n", &[("at-historical-revision", &r)]).await;
            assert_eq!((s, v), (200, json!(rev)), "revision {rev}");
        }
        let (s, v) = get_at(&h, T, "/attributes/n", &[]).await;
        assert_eq!((s, v), (200, json!(7)));
    });
}
