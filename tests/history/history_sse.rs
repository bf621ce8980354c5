//! Persisted events over SSE: `from-historical-revision` / `to-historical-revision` (absolute,
//! relative, 0), `from-historical-timestamp` / `to-historical-timestamp`, with `fields`
//! (`_context`), `filter` and a pointer; the stream ends after the last event.

use crate::common::http::{Http, Sse};
use crate::{get_at, later_set_n, modified, put, start, thing};
use serde_json::{json, Value};
use std::time::Duration;

const T: &str = "sse:one";

async fn open(h: &Http, query: &str) -> Sse {
    h.sse(&format!("/api/2/things/{T}{query}"))
        .await
        .unwrap_or_else(|r| panic!("{query}: {} {}", r.status, r.text()))
}

/// Every event until the stream ends (it must end).
async fn all(mut sse: Sse) -> Vec<Value> {
    let mut out = Vec::new();
    while let Some(v) = sse.next_json(crate::common::WAIT).await {
        out.push(v);
    }
    // the body ended (its last chunk came): the connection answers the next request
    let req = crate::common::http::request_bytes("GET", "/health", &[], None);
    assert!(sse.conn.send(&req).await);
    let (status, _) = sse
        .conn
        .read_head(crate::common::WAIT)
        .await
        .expect("the stream ended");
    assert_eq!(status, 200);
    out
}

fn revs(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .map(|v| v["_revision"].as_u64().unwrap())
        .collect()
}

async fn five(h: &Http) {
    put(h, T, "", thing(1)).await; // rev 1
    for n in 2..=4 {
        put(h, T, "/attributes/n", json!(n)).await; // revs 2-4
    }
    put(h, T, "/features/lamp/properties/on", json!(true)).await; // rev 5
}

#[test]
fn revision_ranges_absolute_relative_and_open() {
    smol::block_on(async {
        let rig = start("");
        let h = &rig.http;
        five(h).await;
        let f = "&fields=thingId,attributes,features,_revision,_modified";
        let ev = all(open(h, &format!("?from-historical-revision=0{f}")).await).await;
        assert_eq!(revs(&ev), vec![1, 2, 3, 4, 5]);
        assert_eq!(
            ev[0]["attributes"],
            json!({"n": 1, "name": "sensor"}),
            "created: the whole thing"
        );
        assert_eq!(
            ev[1],
            json!({"thingId": T, "attributes": {"n": 2}, "_revision": 2, "_modified": ev[1]["_modified"]})
        );
        assert!(ev[1]["_modified"].is_string());
        let ev = all(open(
            h,
            &format!("?from-historical-revision=2&to-historical-revision=3{f}"),
        )
        .await)
        .await;
        assert_eq!(revs(&ev), vec![2, 3]);
        let ev = all(open(
            h,
            &format!("?from-historical-revision=-2&to-historical-revision=0{f}"),
        )
        .await)
        .await;
        assert_eq!(
            revs(&ev),
            vec![3, 4, 5],
            "relative to the current revision 5"
        );
        let ev = all(open(
            h,
            &format!("?from-historical-revision=-3&to-historical-revision=-1{f}"),
        )
        .await)
        .await;
        assert_eq!(revs(&ev), vec![2, 3, 4]);
        let ev = all(open(
            h,
            &format!("?from-historical-revision=4&to-historical-revision=2{f}"),
        )
        .await)
        .await;
        assert!(ev.is_empty(), "from after to: nothing");
        let r = h
            .sse(&format!("/api/2/things/{T}?from-historical-revision=x"))
            .await
            .err()
            .expect("400");
        assert_eq!(r.status, 400);
        let r = h
            .sse("/api/2/things/sse:none?from-historical-revision=0")
            .await
            .err()
            .expect("404");
        assert_eq!((r.status, r.error()), (404, "things:thing.notfound".into()));
    });
}

#[test]
fn timestamp_ranges_filter_fields_context_and_pointer() {
    smol::block_on(async {
        let rig = start("[history]\nheaders_to_persist = [\"ditto-originator\"]\n");
        let h = &rig.http;
        put(h, T, "", thing(1)).await;
        let t1 = modified(h, T).await;
        let t2 = later_set_n(h, T, 2).await;
        later_set_n(h, T, 3).await;
        let iso = edgetwin::clock::format_millis;
        // strictly after `from`, strictly before `to` (Ditto's persisted-events source)
        let q = format!(
            "?from-historical-timestamp={}&to-historical-timestamp={}&fields=_revision",
            iso(t1),
            iso(t2 + 1)
        );
        assert_eq!(revs(&all(open(h, &q).await).await), vec![2]);
        let q = format!(
            "?from-historical-timestamp={}&fields=_revision",
            iso(t1 - 1)
        );
        assert_eq!(
            revs(&all(open(h, &q).await).await),
            vec![1, 2, 3],
            "open end"
        );
        // filter on the event as partial thing JSON
        let q = "?from-historical-revision=0&fields=_revision&filter=gt(attributes/n,1)";
        assert_eq!(revs(&all(open(h, q).await).await), vec![2, 3]);
        // _context: the Ditto Protocol event with its historical headers
        let q = "?from-historical-revision=2&to-historical-revision=2&fields=_revision,_context";
        let ev = all(open(h, q).await).await;
        assert_eq!(ev.len(), 1);
        let c = &ev[0]["_context"];
        assert_eq!(c["topic"], "sse/one/things/twin/events/modified");
        assert_eq!(
            (c["path"].clone(), c["value"].clone()),
            (json!("/attributes/n"), json!(2))
        );
        assert_eq!(
            c["headers"]["historical-headers"],
            json!({"ditto-originator": "nginx:ditto"})
        );
        // a pointer streams the raw values there
        let mut sse = h
            .sse(&format!(
                "/api/2/things/{T}/attributes/n?from-historical-revision=0"
            ))
            .await
            .unwrap_or_else(|r| panic!("{}", r.status));
        let mut values = Vec::new();
        while let Some(d) = sse.next_data(Duration::from_secs(5)).await {
            values.push(d);
        }
        assert_eq!(values, vec!["1", "2", "3"]);
        // the current state is unchanged by all this
        assert_eq!(get_at(h, T, "/attributes/n", &[]).await, (200, json!(3)));
    });
}
