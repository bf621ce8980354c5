//! HTTP API v2 request semantics over real sockets against the real binary: ETag /
//! If-Match / If-None-Match / if-equal / condition, response-required / timeout /
//! requested-acks, correlation-id echo, retrieve by `ids`, the paged listing with `Link`
//! headers, whoami, health and authentication (401 + WWW-Authenticate).

use crate::common;
use common::http::Http;
use common::*;
use serde_json::json;

const T: &str = "/api/2/things/org.eclipse.ditto:lamp";

#[test]
fn conditional_requests_carry_etags() {
    let srv = Server::start();
    let c = Http::new(srv.addr);
    block_on(async {
        let r = c.put(T, &json!({"attributes": {"n": 1}})).await;
        let etag = r.header("etag").unwrap().to_owned();
        let r = c.get_with(T, &[("If-None-Match", &etag)]).await;
        assert_eq!((r.status, r.body.len()), (304, 0));
        assert_eq!(r.header("etag"), Some(etag.as_str()));
        let r = c.get_with(T, &[("If-None-Match", "\"rev:99\"")]).await;
        assert_eq!(r.status, 200);
        let r = c.get_with(T, &[("If-Match", "\"rev:99\"")]).await;
        assert_eq!((r.status, r.header("etag")), (412, Some(etag.as_str())));

        let r = c
            .put_with(
                &format!("{T}/attributes/n"),
                &json!(2),
                &[("If-Match", "\"rev:1\"")],
            )
            .await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (412, "things:precondition.failed")
        );
        let attr_etag = r
            .header("etag")
            .expect("412 carries the current ETag")
            .to_owned();
        assert!(attr_etag.starts_with("\"hash:"));
        let r = c
            .put_with(
                &format!("{T}/attributes/n"),
                &json!(2),
                &[("If-Match", &attr_etag)],
            )
            .await;
        assert_eq!(r.status, 204);
        let r = c.put_with(T, &json!({}), &[("If-None-Match", "*")]).await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (412, "things:precondition.failed")
        );
        assert_eq!(r.header("etag"), Some("\"rev:2\""));
        let other = "/api/2/things/org.eclipse.ditto:other";
        let r = c.put_with(other, &json!({}), &[("If-Match", "*")]).await;
        assert_eq!(r.status, 412, "If-Match: * never creates");
        assert_eq!(c.get(other).await.status, 404);
        let r = c
            .put_with(other, &json!({}), &[("If-None-Match", "*")])
            .await;
        assert_eq!(r.status, 201, "If-None-Match: * creates");

        let r = c
            .put_with(
                &format!("{T}/attributes/n"),
                &json!(2),
                &[("if-equal", "skip")],
            )
            .await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (412, "things:precondition.failed")
        );
        let r = c
            .put(
                &format!("{T}/attributes/n?condition=eq(attributes/n,5)"),
                &json!(3),
            )
            .await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (412, "things:condition.failed")
        );
        let r = c
            .put_with(
                &format!("{T}/attributes/n"),
                &json!(3),
                &[("condition", "eq(attributes/n,2)")],
            )
            .await;
        assert_eq!(r.status, 204);
        let r = c
            .put(
                &format!("{T}/attributes/n?condition=eq(attributes/n"),
                &json!(3),
            )
            .await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (400, "things:condition.invalid")
        );
    });
}

#[test]
fn response_required_timeout_acks_and_correlation_ids() {
    let srv = Server::start();
    let c = Http::new(srv.addr);
    block_on(async {
        c.put(T, &json!({})).await;
        let r = c
            .put(
                &format!("{T}/attributes/a?response-required=false"),
                &json!(1),
            )
            .await;
        assert_eq!((r.status, r.body.len()), (202, 0));
        assert_eq!(
            c.get(&format!("{T}/attributes/a")).await.json(),
            1,
            "the change was applied"
        );
        let r = c
            .put(&format!("{T}/attributes/a?timeout=0"), &json!(2))
            .await;
        assert_eq!(r.status, 202);
        let r = c
            .put(
                &format!("{T}/attributes/a?response-required=false&requested-acks=twin-persisted"),
                &json!(3),
            )
            .await;
        assert_eq!(r.status, 202, "202 after the write is durable");
        let r = c
            .put(&format!("{T}/attributes/a?requested-acks="), &json!(4))
            .await;
        assert_eq!(
            r.status, 204,
            "no acks requested: answered without waiting for the disk"
        );
        let r = c
            .put(&format!("{T}/attributes/a?timeout=5s"), &json!(5))
            .await;
        assert_eq!(r.status, 204);
        let r = c
            .put(
                &format!("{T}/attributes/missing/deeper?response-required=false"),
                &json!(1),
            )
            .await;
        assert_eq!(r.status, 202, "created without response required");
        let r = c
            .delete(&format!("{T}/features?response-required=false"))
            .await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (404, "things:features.notfound"),
            "errors are still reported"
        );

        let r = c
            .put(&format!("{T}/attributes/a?timeout=70s"), &json!(1))
            .await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (400, "gateway:timeout.invalid")
        );
        let r = c
            .put(&format!("{T}/attributes/a?timeout=abc"), &json!(1))
            .await;
        assert_eq!((r.status, r.error().as_str()), (400, "header.invalid"));
        let r = c
            .put(
                &format!("{T}/attributes/a?timeout=0&response-required=true"),
                &json!(1),
            )
            .await;
        assert_eq!(r.status, 400);

        let r = c.get_with(T, &[("correlation-id", "my-id-1")]).await;
        assert_eq!(r.header("correlation-id"), Some("my-id-1"));
        let r = c.get(&format!("{T}/nope?correlation-id=my-id-2")).await;
        assert_eq!(
            (r.status, r.header("correlation-id")),
            (404, Some("my-id-2")),
            "echoed on errors"
        );
        let r = c.get(T).await;
        assert_eq!(
            r.header("correlation-id").map(str::len),
            Some(36),
            "generated when absent"
        );
        let r = c
            .get_with(&format!("{T}?timeout=5s"), &[("timeout", "6s")])
            .await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (400, "gateway:duplicate.header.field")
        );
    });
}

#[test]
fn retrieve_multiple_and_listing() {
    let srv = Server::start();
    let c = Http::new(srv.addr);
    block_on(async {
        for id in ["a:1", "a:2", "a:3", "b:1", "b:2"] {
            let r = c
                .put(
                    &format!("/api/2/things/{id}"),
                    &json!({"attributes": {"id": id}}),
                )
                .await;
            assert_eq!(r.status, 201);
        }
        c.delete("/api/2/things/a:3").await;
        let r = c
            .get("/api/2/things?ids=b:2,a:1,a:3,x:9&fields=thingId")
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.json(),
            json!([{"thingId": "b:2"}, {"thingId": "a:1"}]),
            "request order, missing and deleted skipped"
        );
        let r = c.get("/api/2/things?ids=bad").await;
        assert_eq!((r.status, r.error().as_str()), (400, "things:id.invalid"));

        let ids = |v: serde_json::Value| -> Vec<String> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|t| t["thingId"].as_str().unwrap().to_owned())
                .collect()
        };
        let r = c.get("/api/2/things?option=size(3)&fields=thingId").await;
        assert_eq!(ids(r.json()), ["a:1", "a:2", "b:1"]);
        let links = r.headers_all("link");
        assert!(
            links.contains(&"</api/2/things?option=size(3)&fields=thingId>; rel=\"canonical\""),
            "{links:?}"
        );
        let next = links
            .iter()
            .find(|l| l.ends_with("rel=\"next\""))
            .expect("next link");
        let next_url = next
            .trim_start_matches('<')
            .split('>')
            .next()
            .unwrap()
            .to_owned();
        assert!(
            next_url.starts_with("/api/2/things?option=cursor("),
            "{next_url}"
        );
        let r = c.get(&next_url).await;
        assert_eq!(
            r.json(),
            json!([{"thingId": "b:2"}]),
            "the cursor keeps size and fields"
        );
        assert!(r.headers_all("link").iter().all(|l| !l.contains("next")));

        let r = c.get("/api/2/things?namespaces=b").await;
        assert_eq!(ids(r.json()), ["b:1", "b:2"]);
        assert_eq!(r.json()[0]["attributes"]["id"], "b:1");
        let r = c.get("/api/2/things").await;
        assert_eq!(ids(r.json()).len(), 4);
        // the listing is the search without a filter (as in Ditto): sort works
        let r = c.get("/api/2/things?option=sort(-thingId)").await;
        assert_eq!(ids(r.json()), ["b:2", "b:1", "a:2", "a:1"]);
        let r = c
            .get("/api/2/things?option=sort(-thingId),limit(0,2)")
            .await;
        assert_eq!(ids(r.json()), ["b:2", "b:1"]);
        let r = c.get("/api/2/things?namespaces=none&fields=bogus").await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (400, "things:field.selection.invalid"),
            "fields are validated even for an empty page"
        );
        let r = c.get("/api/2/things?option=size(500)").await;
        assert_eq!(r.status, 400);
    });
}

#[test]
fn whoami_health_and_authentication() {
    let srv = Server::start();
    let c = Http::new(srv.addr);
    let anon = Http::anonymous(srv.addr);
    let wrong = Http {
        addr: srv.addr,
        // not `c`'s user: 5 wrong passwords lock that user at this address (docs/auth.md)
        auth: Some(basic("dittoo", "wrong")),
    };
    block_on(async {
        let r = anon.get("/health").await;
        assert_eq!((r.status, r.json()), (200, json!({"status": "UP"})));
        let r = c.get("/api/2/whoami").await;
        assert_eq!(
            (r.status, r.json()),
            (
                200,
                json!({"defaultSubject": "nginx:ditto", "subjects": ["nginx:ditto"]})
            )
        );
        assert_eq!(c.get("/status/health").await.json()["status"], "UP");
        for path in [
            "/api/2/whoami",
            "/api/2/things",
            "/status/health",
            T,
            "/api/2/unknown",
        ] {
            for client in [&anon, &wrong] {
                let r = client.get(path).await;
                assert_eq!(
                    (r.status, r.error().as_str()),
                    (401, "gateway:authentication.failed"),
                    "{path}"
                );
                assert_eq!(
                    r.header("www-authenticate"),
                    Some("Basic realm=\"edgetwin\"")
                );
            }
        }
        let r = anon.put(T, &json!({})).await;
        assert_eq!(r.status, 401);
        assert_eq!(
            c.get(T).await.status,
            404,
            "the unauthenticated PUT changed nothing"
        );
    });
}
