//! HTTP API v2 things endpoints over real sockets against the real binary: every sub-path with
//! Ditto's statuses (201 + body + Location, 204, 200), POST with server-chosen IDs, routing
//! errors (404, 405 + Allow, 415), ETag / If-Match / If-None-Match / if-equal / condition,
//! response-required / timeout / requested-acks, correlation-id echo, fields and error bodies.

mod common;
use common::http::Http;
use common::*;
use serde_json::json;

const T: &str = "/api/2/things/org.eclipse.ditto:lamp";

#[test]
fn create_replace_retrieve_delete_thing() {
    let srv = Server::start();
    let c = Http::new(srv.addr);
    block_on(async {
        let thing = json!({"attributes": {"manufacturer": "ACME"}, "features": {"lamp": {"properties": {"on": false}}}});
        let r = c.put(T, &thing).await;
        assert_eq!(r.status, 201, "{}", r.text());
        assert_eq!(r.header("etag"), Some("\"rev:1\""));
        assert_eq!(
            r.header("location"),
            Some(format!("http://127.0.0.1{T}").as_str()),
            "absolute URL of the created thing"
        );
        let body = r.json();
        assert_eq!(body["thingId"], "org.eclipse.ditto:lamp");
        assert_eq!(body["policyId"], "org.eclipse.ditto:lamp");
        assert_eq!(body["attributes"]["manufacturer"], "ACME");

        let r = c.get(T).await;
        assert_eq!((r.status, r.header("etag")), (200, Some("\"rev:1\"")));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.json()["features"]["lamp"]["properties"]["on"], false);

        let r = c.put(T, &json!({"attributes": {"a": 1}})).await;
        assert_eq!((r.status, r.header("etag")), (204, Some("\"rev:2\"")));
        assert!(r.body.is_empty() && r.header("location").is_none());
        assert_eq!(c.get(T).await.json()["attributes"], json!({"a": 1}));

        let r = c
            .patch(T, &json!({"attributes": {"a": null, "b": 2}}))
            .await;
        assert_eq!(r.status, 204);
        assert_eq!(c.get(T).await.json()["attributes"], json!({"b": 2}));

        let r = c
            .get(&format!("{T}?fields=thingId,attributes/b,_revision"))
            .await;
        assert_eq!(
            r.json(),
            json!({"thingId": "org.eclipse.ditto:lamp", "attributes": {"b": 2}, "_revision": 3})
        );
        let r = c.send("HEAD", T, &[], None).await;
        assert_eq!(
            (r.status, r.body.len()),
            (200, 0),
            "HEAD answers like GET without body"
        );

        let r = c.delete(T).await;
        assert_eq!(r.status, 204);
        let r = c.get(T).await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (404, "things:thing.notfound")
        );
        let e = r.json();
        assert!(e["message"]
            .as_str()
            .unwrap()
            .contains("org.eclipse.ditto:lamp"));
        assert!(e["description"].is_string(), "Ditto error shape: {e}");

        let r = c
            .patch(
                "/api/2/things/org.eclipse.ditto:patched",
                &json!({"attributes": {"x": 1}}),
            )
            .await;
        assert_eq!(r.status, 201, "PATCH on a missing thing creates it");
        assert_eq!(
            r.header("location"),
            Some("http://127.0.0.1/api/2/things/org.eclipse.ditto:patched")
        );
    });
}

#[test]
fn every_sub_resource_answers_with_dittos_statuses() {
    let srv = Server::start();
    let c = Http::new(srv.addr);
    block_on(async {
        assert_eq!(c.put(T, &json!({})).await.status, 201);
        // (path, first value, second value); PUT creates (201 + value), PUT again 204,
        // GET 200 with the value, PATCH 204, DELETE 204, GET 404.
        let cases = [
            (
                "/definition",
                json!("org.eclipse.ditto:lamp:1.0.0"),
                json!("org.eclipse.ditto:lamp:2.0.0"),
            ),
            ("/attributes", json!({"a": 1}), json!({"a": 2})),
            ("/attributes/location/room", json!("kitchen"), json!("hall")),
            (
                "/features",
                json!({"f": {}}),
                json!({"f": {"properties": {}}}),
            ),
            (
                "/features/lamp",
                json!({"properties": {"on": true}}),
                json!({"properties": {"on": false}}),
            ),
            (
                "/features/lamp/definition",
                json!(["org.eclipse.ditto:lamp:1.0.0"]),
                json!(["org.eclipse.ditto:lamp:2.0.0"]),
            ),
            (
                "/features/lamp/properties",
                json!({"on": true}),
                json!({"on": false}),
            ),
            ("/features/lamp/properties/color/r", json!(1), json!(2)),
            (
                "/features/lamp/desiredProperties",
                json!({"on": true}),
                json!({"on": false}),
            ),
            (
                "/features/lamp/desiredProperties/on",
                json!(true),
                json!(false),
            ),
        ];
        for (path, first, second) in &cases {
            let url = format!("{T}{path}");
            if path.starts_with("/features/lamp/") {
                c.put(&format!("{T}/features/lamp"), &json!({})).await;
            }
            let r = c.put(&url, first).await;
            assert_eq!(r.status, 201, "PUT {path} creates: {}", r.text());
            assert_eq!(&r.json(), first, "201 returns the created value");
            assert_eq!(
                r.header("location"),
                Some(format!("http://127.0.0.1{url}").as_str())
            );
            assert!(r.header("etag").unwrap().starts_with("\"hash:"), "{path}");
            let r = c.put(&url, second).await;
            assert_eq!((r.status, r.body.len()), (204, 0), "PUT {path} replaces");
            let r = c.get(&url).await;
            assert_eq!(r.status, 200, "GET {path}");
            assert_eq!(&r.json(), second);
            assert!(r.header("etag").is_some());
            let r = c.patch(&url, first).await;
            assert_eq!(r.status, 204, "PATCH {path}: {}", r.text());
            let r = c.delete(&url).await;
            assert_eq!(r.status, 204, "DELETE {path}: {}", r.text());
            let r = c.get(&url).await;
            assert_eq!(r.status, 404, "GET {path} after delete");
            assert!(r.error().starts_with("things:"), "{}", r.text());
        }
        let r = c.get(&format!("{T}/policyId")).await;
        assert_eq!((r.status, r.json()), (200, json!("org.eclipse.ditto:lamp")));
        let r = c
            .put(&format!("{T}/policyId"), &json!("org.eclipse.ditto:lamp"))
            .await;
        assert_eq!(r.status, 204);
        let r = c.patch(&format!("{T}/policyId"), &json!(null)).await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (400, "things:policyId.notdeletable")
        );
        let r = c.put(&format!("{T}/attributes/a%2Fb"), &json!(1)).await;
        assert_eq!(r.status, 201, "an encoded '/' splits the pointer");
        assert_eq!(
            c.get(&format!("{T}/attributes/a")).await.json(),
            json!({"b": 1})
        );
        let r = c.get(&format!("{T}/attributes?fields=a")).await;
        assert_eq!(r.json(), json!({"a": {"b": 1}}), "fields on a sub-resource");
    });
}

#[test]
fn post_creates_things_with_generated_ids() {
    let srv = Server::start();
    let c = Http::new(srv.addr);
    block_on(async {
        let r = c
            .post(
                "/api/2/things?namespace=my.ns",
                &json!({"attributes": {"x": 1}}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let id = r.json()["thingId"].as_str().unwrap().to_owned();
        let (ns, name) = id.split_once(':').unwrap();
        assert_eq!(ns, "my.ns");
        assert_eq!(
            (name.len(), name.matches('-').count()),
            (36, 4),
            "uuid name: {name}"
        );
        assert_eq!(
            r.json()["policyId"],
            id.as_str(),
            "default policy = thing ID"
        );
        assert_eq!(
            r.header("location"),
            Some(format!("http://127.0.0.1/api/2/things/{id}").as_str())
        );
        assert_eq!(r.header("etag"), Some("\"rev:1\""));
        assert_eq!(
            c.get(&format!("/api/2/things/{id}")).await.json()["attributes"]["x"],
            1
        );

        let r = c.post("/api/2/things", &json!({})).await;
        assert_eq!(r.status, 201);
        assert!(
            r.json()["thingId"].as_str().unwrap().starts_with(':'),
            "Ditto's default namespace is empty"
        );
        let r = c.send("POST", "/api/2/things", &[], None).await;
        assert_eq!(r.status, 201, "an empty body counts as {{}}");

        let r = c.post("/api/2/things", &json!({"thingId": "a:b"})).await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (400, "things:id.notsettable")
        );
        let r = c.post("/api/2/things?channel=live", &json!({})).await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (405, "things:thing.notcreatable")
        );
        let r = c.post("/api/2/things?namespace=1bad", &json!({})).await;
        assert_eq!((r.status, r.error().as_str()), (400, "things:id.invalid"));
    });
}

#[test]
fn routing_media_type_and_input_errors() {
    let srv = Server::start();
    let c = Http::new(srv.addr);
    block_on(async {
        c.put(T, &json!({})).await;
        for path in ["/foo", "/features/f/foo", "/attributesx"] {
            let r = c.get(&format!("{T}{path}")).await;
            assert_eq!(
                (r.status, r.error().as_str()),
                (404, "gateway:route.notfound"),
                "{path}"
            );
        }
        let r = c.get("/api/2/nothing").await;
        assert_eq!(r.status, 404);
        let r = c.delete(&format!("{T}/policyId")).await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (405, "gateway:method.notallowed")
        );
        assert_eq!(r.header("allow"), Some("GET, HEAD, PUT, PATCH"));
        let r = c
            .send(
                "POST",
                T,
                &[("Content-Type", "application/json")],
                Some(b"{}"),
            )
            .await;
        assert_eq!(r.status, 405);
        assert_eq!(r.header("allow"), Some("GET, HEAD, PUT, PATCH, DELETE"));
        let r = c.send("DELETE", "/api/2/things", &[], None).await;
        assert_eq!(
            (r.status, r.header("allow")),
            (405, Some("GET, HEAD, POST"))
        );
        let r = c.send("PUT", "/api/2/whoami", &[], None).await;
        assert_eq!(r.status, 405);

        let r = c
            .send(
                "PATCH",
                T,
                &[("Content-Type", "application/json")],
                Some(b"{}"),
            )
            .await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (415, "mediatype.unsupported")
        );
        assert_eq!(
            r.json()["message"],
            "The Media-Type <application/json> is not supported for this resource."
        );
        let r = c.send("PATCH", T, &[], Some(b"{}")).await;
        assert_eq!(r.status, 415, "PATCH without content type");
        let r = c
            .send(
                "PUT",
                &format!("{T}/attributes/x"),
                &[("Content-Type", "text/plain")],
                Some(b"1"),
            )
            .await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (415, "mediatype.unsupported")
        );
        let r = c
            .send("PUT", &format!("{T}/attributes/x"), &[], Some(b"1"))
            .await;
        assert_eq!(
            r.status, 201,
            "no content type = octet-stream, accepted as JSON like Ditto"
        );
        let r = c
            .send(
                "PUT",
                &format!("{T}/attributes/x"),
                &[("Content-Type", "application/json; charset=utf-8")],
                Some(b"2"),
            )
            .await;
        assert_eq!(r.status, 204);

        let r = c
            .send(
                "PUT",
                &format!("{T}/attributes/x"),
                &[("Content-Type", "application/json")],
                Some(b"FOO"),
            )
            .await;
        assert_eq!((r.status, r.error().as_str()), (400, "json.invalid"));
        let r = c
            .put(T, &json!({"thingId": "org.eclipse.ditto:other"}))
            .await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (400, "things:id.notsettable")
        );
        assert_eq!(
            r.json()["message"],
            "The Thing ID in the request body is not equal to the Thing ID in the request URL."
        );
        let r = c.get("/api/2/things/no-namespace-colon").await;
        assert_eq!((r.status, r.error().as_str()), (400, "things:id.invalid"));
        let r = c.get(&format!("{T}/attributes/a//b")).await;
        assert_eq!(r.status, 400, "{}", r.text());
        let r = c.get(&format!("{T}?fields=bogus")).await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (400, "things:field.selection.invalid")
        );
        let r = c.get(&format!("{T}/inbox/messages/hello")).await;
        assert_eq!((r.status, r.error().as_str()), (400, "signal.unsupported"));
    });
}

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
        let r = c.get("/api/2/things?option=sort(-thingId)").await;
        assert_eq!(
            (r.status, r.error().as_str()),
            (400, "thing-search:search.option.invalid")
        );
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
        auth: Some(basic("ditto", "wrong")),
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
