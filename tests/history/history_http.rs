//! Retrieves at `at-historical-revision` / `at-historical-timestamp` over HTTP (headers and
//! query parameters) at `/` and sub-paths; 404 `things:thing.history.notfound` beyond what is
//! kept (never today's state); `historical-headers`; deleted and re-created things; policies;
//! history off; history across a restart.

use crate::{get_at, later_set_n, modified, put, start, thing};
use serde_json::json;

const T: &str = "hist:one";

#[test]
fn a_retrieve_at_a_revision_answers_the_state_then_at_root_and_sub_paths() {
    smol::block_on(async {
        let rig = start("");
        let h = &rig.http;
        put(h, T, "", thing(1)).await; // rev 1
        put(h, T, "/attributes/n", json!(2)).await; // rev 2
        put(h, T, "/features/lamp/properties/on", json!(true)).await; // rev 3
        let (s, v) = get_at(h, T, "", &[("at-historical-revision", "1")]).await;
        assert_eq!(s, 200);
        assert_eq!(v["attributes"]["n"], 1, "{v}");
        assert_eq!(v["features"]["lamp"]["properties"]["on"], false);
        let (s, v) = get_at(
            h,
            T,
            "?at-historical-revision=2&fields=attributes/n,_revision",
            &[],
        )
        .await;
        assert_eq!(
            (s, v),
            (200, json!({"attributes": {"n": 2}, "_revision": 2}))
        );
        let (s, v) = get_at(h, T, "/attributes/n", &[("at-historical-revision", "1")]).await;
        assert_eq!((s, v), (200, json!(1)));
        let (s, v) = get_at(
            h,
            T,
            "/features/lamp/properties/on?at-historical-revision=2",
            &[],
        )
        .await;
        assert_eq!((s, v), (200, json!(false)));
        let (s, v) = get_at(h, T, "/attributes", &[("at-historical-revision", "3")]).await;
        assert_eq!((s, v), (200, json!({"n": 2, "name": "sensor"})));
        let (s, v) = get_at(h, T, "", &[]).await;
        assert_eq!(
            (s, v["features"]["lamp"]["properties"]["on"].clone()),
            (200, json!(true))
        );
        for rev in ["4", "0", "99"] {
            let (s, v) = get_at(h, T, "", &[("at-historical-revision", rev)]).await;
            assert_eq!(s, 404, "revision {rev}: {v}");
            assert_eq!(
                v["error"], "things:thing.history.notfound",
                "revision {rev}"
            );
        }
        let (s, v) = get_at(h, T, "", &[("at-historical-revision", "one")]).await;
        assert_eq!((s, v["error"].clone()), (400, json!("header.invalid")));
    });
}

#[test]
fn a_retrieve_at_a_timestamp_answers_the_state_current_then() {
    smol::block_on(async {
        let rig = start("");
        let h = &rig.http;
        put(h, T, "", thing(1)).await;
        let t1 = modified(h, T).await;
        let t2 = later_set_n(h, T, 2).await;
        assert!(t2 > t1 + 1);
        let iso = edgetwin::clock::format_millis;
        let at = |t: i64| iso(t);
        let (s, v) = get_at(
            h,
            T,
            "/attributes/n",
            &[("at-historical-timestamp", &at(t1 + 1))],
        )
        .await;
        assert_eq!((s, v), (200, json!(1)), "just after revision 1");
        let (s, v) = get_at(
            h,
            T,
            &format!("/attributes/n?at-historical-timestamp={}", at(t2 + 1)),
            &[],
        )
        .await;
        assert_eq!((s, v), (200, json!(2)), "just after revision 2 (now)");
        let (s, v) = get_at(h, T, "", &[("at-historical-timestamp", &at(t1 - 1000))]).await;
        assert_eq!(
            (s, v["error"].clone()),
            (404, json!("things:thing.history.notfound")),
            "before creation"
        );
        let future = at(edgetwin::clock::now_millis() + 3_600_000);
        let (s, v) = get_at(h, T, "", &[("at-historical-timestamp", &future)]).await;
        assert_eq!(
            (s, v["error"].clone()),
            (404, json!("things:thing.history.notfound")),
            "future"
        );
        let (s, v) = get_at(h, T, "", &[("at-historical-timestamp", "yesterday")]).await;
        assert_eq!((s, v["error"].clone()), (400, json!("header.invalid")));
    });
}

#[test]
fn historical_headers_to_persist_come_back_with_the_state() {
    smol::block_on(async {
        let rig =
            start("[history]\nheaders_to_persist = [\"ditto-originator\", \"correlation-id\"]\n");
        let h = &rig.http;
        put(h, T, "", thing(1)).await;
        let r = h
            .put_with(
                &format!("/api/2/things/{T}/attributes/n"),
                &json!(2),
                &[("correlation-id", "change-2")],
            )
            .await;
        assert_eq!(r.status, 204);
        put(h, T, "/attributes/n", json!(3)).await;
        let r = h
            .get_with(
                &format!("/api/2/things/{T}"),
                &[("at-historical-revision", "2")],
            )
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["attributes"]["n"], 2);
        let hh: serde_json::Value =
            serde_json::from_str(r.header("historical-headers").expect("historical-headers"))
                .unwrap();
        assert_eq!(
            hh,
            json!({"ditto-originator": "nginx:ditto", "correlation-id": "change-2"})
        );
    });
}

#[test]
fn a_deleted_and_recreated_thing_keeps_one_history() {
    smol::block_on(async {
        let rig = start("");
        let h = &rig.http;
        put(h, T, "", thing(1)).await; // rev 1
        assert_eq!(h.delete(&format!("/api/2/things/{T}")).await.status, 204); // rev 2
        let mut again = thing(10);
        again["policyId"] = json!(T); // the policy stays when its thing is deleted
        put(h, T, "", again).await; // rev 3
        put(h, T, "/attributes/n", json!(11)).await; // rev 4
        let (s, v) = get_at(h, T, "/attributes/n", &[("at-historical-revision", "1")]).await;
        assert_eq!((s, v), (200, json!(1)), "before the deletion");
        let (s, v) = get_at(h, T, "", &[("at-historical-revision", "2")]).await;
        assert_eq!(
            (s, v["error"].clone()),
            (404, json!("things:thing.notfound")),
            "while deleted"
        );
        let (s, v) = get_at(h, T, "/attributes/n", &[("at-historical-revision", "3")]).await;
        assert_eq!((s, v), (200, json!(10)), "re-created");
        // deleted now: no history is answered (nothing says who may READ it)
        assert_eq!(h.delete(&format!("/api/2/things/{T}")).await.status, 204);
        let (s, v) = get_at(h, T, "", &[("at-historical-revision", "3")]).await;
        assert_eq!(
            (s, v["error"].clone()),
            (404, json!("things:thing.notfound"))
        );
    });
}

#[test]
fn policies_are_answered_at_a_revision() {
    smol::block_on(async {
        let rig = start("");
        let h = &rig.http;
        put(h, T, "", thing(1)).await; // creates policy hist:one at revision 1
        let p = format!("/api/2/policies/{T}");
        let mut policy = h.get(&p).await.json();
        policy["entries"]["EXTRA"] = json!({"subjects": {"nginx:other": {"type": "t"}},
            "resources": {"thing:/attributes": {"grant": ["READ"], "revoke": []}}});
        assert_eq!(h.put(&p, &policy).await.status, 204); // revision 2
        let r = h.get_with(&p, &[("at-historical-revision", "1")]).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.json()["entries"].get("EXTRA").is_none(), "{}", r.text());
        let r = h
            .get_with(&format!("{p}/entries/EXTRA?at-historical-revision=2"), &[])
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let r = h
            .get_with(
                &format!("{p}/entries/EXTRA"),
                &[("at-historical-revision", "1")],
            )
            .await;
        assert_eq!(r.status, 404, "the entry did not exist then: {}", r.text());
        let r = h.get_with(&p, &[("at-historical-revision", "5")]).await;
        assert_eq!(
            (r.status, r.error()),
            (404, "policies:policy.history.notfound".into())
        );
    });
}

#[test]
fn with_history_off_only_the_current_revision_is_answered() {
    smol::block_on(async {
        let rig = start("[history]\nenabled = false\n");
        let h = &rig.http;
        put(h, T, "", thing(1)).await;
        put(h, T, "/attributes/n", json!(2)).await;
        let (s, v) = get_at(h, T, "/attributes/n", &[("at-historical-revision", "2")]).await;
        assert_eq!((s, v), (200, json!(2)));
        let (s, v) = get_at(h, T, "", &[("at-historical-revision", "1")]).await;
        assert_eq!(
            (s, v["error"].clone()),
            (404, json!("things:thing.history.notfound"))
        );
        let health = h.get("/status/health").await.json();
        assert_eq!(health["history"], json!({"enabled": false}));
    });
}

#[test]
fn history_survives_a_restart() {
    smol::block_on(async {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let mut srv = crate::common::Server::start_in(&data, &[]);
        let h = crate::common::http::Http::new(srv.addr);
        put(&h, T, "", thing(1)).await;
        for n in 2..=70 {
            // nobody waits for these (second class): flushed within the interval
            let r = h
                .put_with(
                    &format!("/api/2/things/{T}/attributes/n"),
                    &json!(n),
                    &[("requested-acks", "[]")],
                )
                .await;
            assert!(matches!(r.status, 202 | 204), "{}", r.status);
        }
        // a waited write makes everything before it durable
        put(&h, T, "/attributes/name", json!("last")).await;
        assert!(srv.terminate().success());
        let srv = crate::common::Server::start_in(&data, &[]);
        let h = crate::common::http::Http::new(srv.addr);
        for (rev, n) in [(1, 1), (2, 2), (64, 64), (65, 65), (70, 70)] {
            let (s, v) = get_at(
                &h,
                T,
                "/attributes/n",
                &[("at-historical-revision", &rev.to_string())],
            )
            .await;
            assert_eq!((s, v), (200, json!(n)), "revision {rev}");
        }
        let health = crate::counted_health(&h).await;
        // 71 thing revisions and its policy's first one
        assert_eq!(health["history"]["events"], 72, "{health}");
    });
}
