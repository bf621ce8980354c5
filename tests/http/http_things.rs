//! HTTP API v2 things endpoints over real sockets against the real binary: every sub-path with
//! Ditto's statuses (201 + body + Location + ETag, 204, 200, 404), POST with server-chosen IDs,
//! routing and input errors (404 route-not-found, 405 + Allow, 415, 400) in Ditto's error shape.

use crate::common;
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
        assert_eq!(
            (r.status, r.error().as_str(), r.header("allow")),
            (405, "gateway:method.notallowed", Some("POST")),
            "messages are sent with POST"
        );
    });
}
