//! Ditto fidelity of the HTTP binding (issue 16, points 6, 9, 10): a raw `"` (and `<`, `>`) in
//! a query is accepted as Ditto's relaxed URI parsing does, without touching bodies of
//! pipelined requests; `Accept: application/td+json` answers Ditto's WoT errors, never the
//! plain JSON; `POST /api/2/cloudevents` in binary and structured mode, with Ditto's errors.

use crate::common;
use common::http::{request_bytes, Conn, Http};
use common::{basic, block_on, Server};
use serde_json::{json, Value};

#[test]
fn raw_quotes_in_a_query_are_accepted_and_bodies_stay_untouched() {
    let srv = Server::start();
    block_on(async {
        let http = Http::new(srv.addr);
        for (id, m) in [("q:acme", "ACME"), ("q:other", "Other")] {
            let r = http
                .put(
                    &format!("/api/2/things/{id}"),
                    &json!({"attributes": {"manufacturer": m}}),
                )
                .await;
            assert_eq!(r.status, 201, "{}", r.text());
        }
        // Ditto's hello world, unencoded
        let r = http
            .get("/api/2/search/things?filter=eq(attributes/manufacturer,\"ACME\")")
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let ids: Vec<Value> = r.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["thingId"].clone())
            .collect();
        assert_eq!(ids, vec![json!("q:acme")]);
        let r = http
            .get("/api/2/search/things?filter=eq(attributes/manufacturer,\"<A>\")&fields=thingId")
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["items"], json!([]));

        // one keep-alive connection: a body that looks like a request line is stored as sent,
        // and the pipelined request after it is still relaxed
        let note = "GET /x?a=\"b\"&c=<d> HTTP/1.1";
        let body = json!(note).to_string();
        let auth = basic("ditto", "ditto");
        let mut bytes = request_bytes(
            "PUT",
            "/api/2/things/q:acme/attributes/note?x=\"y\"",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            Some(body.as_bytes()),
        );
        bytes.extend(request_bytes(
            "GET",
            "/api/2/things/q:acme/attributes/note?fields=\"\"",
            &[("Authorization", &auth)],
            None,
        ));
        let mut c = Conn::connect(srv.addr).await;
        assert!(c.send(&bytes).await);
        let put = c.read_response(false).await.expect("PUT answered");
        assert_eq!(put.status, 201, "{}", put.text());
        let get = c.read_response(false).await.expect("GET answered");
        assert_eq!(get.status, 200, "{}", get.text());
        assert_eq!(get.json(), json!(note));
    });
}

#[test]
fn thing_descriptions_answer_dittos_wot_errors() {
    let srv = Server::start();
    block_on(async {
        let http = Http::new(srv.addr);
        let td = [("Accept", "application/td+json")];
        let put = |id: &'static str, v: Value| {
            let http = http.clone();
            async move {
                let r = http.put(&format!("/api/2/things/{id}"), &v).await;
                assert_eq!(r.status, 201, "{}", r.text());
            }
        };
        put(
            "w:plain",
            json!({"features": {"lamp": {"definition": ["org.example:lamp:1.0.0"]}, "bare": {}}}),
        )
        .await;
        put("w:ns", json!({"definition": "org.example:thing:1.0.0"})).await;
        put(
            "w:url",
            json!({"definition": "https://models.example.com/lamp-1.0.0.tm.jsonld"}),
        )
        .await;

        let r = http.get_with("/api/2/things/w:plain", &td).await;
        assert_eq!(
            (r.status, r.error()),
            (404, "wot:definition.invalid".into())
        );
        assert_eq!(
            r.json()["message"],
            "The definition identifier is missing from the Thing or Feature."
        );
        let r = http.get_with("/api/2/things/w:ns", &td).await;
        assert_eq!(r.status, 404);
        assert_eq!(
            r.json()["message"],
            "The definition identifier 'org.example:thing:1.0.0' is not a valid URL."
        );
        // a Thing Model URL: edgetwin fetches no models, Ditto's answer when it cannot
        let r = http.get_with("/api/2/things/w:url", &td).await;
        assert_eq!((r.status, r.error()), (421, "wot:tm.notfound".into()));
        assert!(r.json()["message"]
            .as_str()
            .unwrap()
            .contains("https://models.example.com/lamp-1.0.0.tm.jsonld"));
        // features
        let r = http
            .get_with("/api/2/things/w:plain/features/lamp", &td)
            .await;
        assert_eq!(r.status, 404);
        assert_eq!(
            r.json()["message"],
            "The definition identifier 'org.example:lamp:1.0.0' is not a valid URL."
        );
        let r = http
            .get_with("/api/2/things/w:plain/features/bare", &td)
            .await;
        assert_eq!(r.error(), "wot:definition.invalid");
        let r = http
            .get_with("/api/2/things/w:plain/features/none", &td)
            .await;
        assert_eq!(r.error(), "things:feature.notfound");
        let r = http.get_with("/api/2/things/w:none", &td).await;
        assert_eq!(r.error(), "things:thing.notfound");
        // other resources and other media types: the JSON as always
        let r = http.get_with("/api/2/things/w:url/definition", &td).await;
        assert_eq!(r.status, 200);
        let r = http
            .get_with("/api/2/things/w:url", &[("Accept", "application/json")])
            .await;
        assert_eq!(r.json()["thingId"], "w:url");
    });
}

fn ce_headers(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut h = vec![
        ("ce-specversion", "1.0"),
        ("ce-id", "evt-1"),
        ("ce-source", "urn:test:device"),
        ("ce-type", "org.example.update"),
    ];
    h.extend_from_slice(extra);
    h
}

#[test]
fn cloudevents_carry_ditto_protocol_messages() {
    let srv = Server::start();
    block_on(async {
        let http = Http::new(srv.addr);
        let post = |headers: Vec<(&'static str, &'static str)>, body: String| {
            let http = http.clone();
            async move {
                http.send(
                    "POST",
                    "/api/2/cloudevents",
                    &headers,
                    Some(body.as_bytes()),
                )
                .await
            }
        };
        let create = json!({"topic": "ce/lamp/things/twin/commands/create", "headers": {},
                            "path": "/", "value": {"attributes": {"on": false}}});
        let json_ct = ("Content-Type", "application/json");
        // binary mode: Ditto answers 202 without body once the change is persisted
        let r = post(ce_headers(&[json_ct]), create.to_string()).await;
        assert_eq!(r.status, 202, "{}", r.text());
        assert!(r.body.is_empty());
        assert_eq!(
            http.get("/api/2/things/ce:lamp/attributes/on").await.json(),
            false
        );

        // structured mode, data content type of Ditto Protocol
        let modify = json!({"topic": "ce/lamp/things/twin/commands/modify", "headers": {},
                            "path": "/attributes/on", "value": true});
        let event = json!({"specversion": "1.0", "id": "evt-2", "source": "urn:test",
                           "type": "org.example.update",
                           "datacontenttype": "application/vnd.eclipse.ditto+json",
                           "dataschema": "ditto:modify", "data": modify});
        let r = post(
            vec![("Content-Type", "application/cloudevents+json")],
            event.to_string(),
        )
        .await;
        assert_eq!(r.status, 202, "{}", r.text());
        assert_eq!(
            http.get("/api/2/things/ce:lamp/attributes/on").await.json(),
            true
        );

        // errors of the hub come back with their status
        let missing = json!({"topic": "ce/none/things/twin/commands/modify", "headers": {},
                             "path": "/attributes/on", "value": 1});
        let r = post(ce_headers(&[json_ct]), missing.to_string()).await;
        assert_eq!((r.status, r.error()), (404, "things:thing.notfound".into()));

        // Ditto's CloudEvent errors
        let mut no_id = ce_headers(&[json_ct]);
        no_id.retain(|(k, _)| *k != "ce-id");
        let r = post(no_id, modify.to_string()).await;
        assert_eq!((r.status, r.error()), (400, "cloudevent.unparsable".into()));
        let r = post(
            ce_headers(&[("Content-Type", "text/plain")]),
            modify.to_string(),
        )
        .await;
        assert_eq!((r.status, r.error()), (415, "mediatype.unsupported".into()));
        let r = post(
            ce_headers(&[json_ct, ("ce-dataschema", "https://example.com/s")]),
            modify.to_string(),
        )
        .await;
        assert_eq!(
            (r.status, r.error()),
            (400, "cloudevent.dataschema.unsupported".into())
        );
        let r = post(ce_headers(&[json_ct]), String::new()).await;
        assert_eq!(
            (r.status, r.error()),
            (400, "cloudevent.payload.missing".into())
        );
        let r = post(ce_headers(&[json_ct]), "[1]".into()).await;
        assert_eq!(r.status, 400, "{}", r.text());
        let r = http.get("/api/2/cloudevents").await;
        assert_eq!(r.status, 405);
        let r = Http::anonymous(srv.addr)
            .send(
                "POST",
                "/api/2/cloudevents",
                &ce_headers(&[json_ct]),
                Some(modify.to_string().as_bytes()),
            )
            .await;
        assert_eq!(r.status, 401);
        assert_eq!(
            http.get("/api/2/things/ce:lamp/attributes/on").await.json(),
            true
        );
    });
}
