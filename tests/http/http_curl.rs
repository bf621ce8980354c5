//! The curl examples of Eclipse Ditto's HTTP documentation, run verbatim with `bash` against the
//! real binary. The only change is the address: `http://localhost:8080` becomes
//! `http://127.0.0.1:<port>`, and the examples without a host (`/api/2/...`, no credentials)
//! get `http://ditto:ditto@127.0.0.1:<port>` prepended. The test appends
//! `-s -o <file> -w '%{http_code}'` to read status and body. Requires `curl` (scripts/test.sh
//! installs it).

use crate::common;
use common::http::Http;
use common::*;
use serde_json::{json, Value};
use std::process::Command;

/// intro-hello-world.md, steps 1-5 (step 6 is the search API, not part of this binding).
const HELLO_WORLD: [(&str, u16); 5] = [
    (
        r#"curl -u ditto:ditto -X PUT -H 'Content-Type: application/json' -d '{
  "definition": "https://eclipse-ditto.github.io/ditto-examples/wot/models/floor-lamp-1.0.0.tm.jsonld",
  "attributes": {
    "manufacturer": "ACME",
    "serialNo": "0815666337"
  }
}' 'http://localhost:8080/api/2/things/io.eclipseprojects.ditto:floor-lamp-0815'"#,
        201,
    ),
    (
        r#"curl -u ditto:ditto -X GET \
  'http://localhost:8080/api/2/things/io.eclipseprojects.ditto:floor-lamp-0815'"#,
        200,
    ),
    (
        r#"curl -u ditto:ditto -X PUT -H 'Content-Type: application/json' -d '{
  "properties": {
    "on": false,
    "dimmer-level": 0,
    "color": { "r": 0, "g": 0, "b": 0 }
  }
}' 'http://localhost:8080/api/2/things/io.eclipseprojects.ditto:floor-lamp-0815/features/Spot1'"#,
        201,
    ),
    (
        r#"curl -u ditto:ditto -X GET \
  'http://localhost:8080/api/2/things/io.eclipseprojects.ditto:floor-lamp-0815/features/Spot1/properties/on'"#,
        200,
    ),
    (
        r#"curl -u ditto:ditto -X PUT -H 'Content-Type: application/json' -d 'true' \
  'http://localhost:8080/api/2/things/io.eclipseprojects.ditto:floor-lamp-0815/features/Spot1/properties/on'"#,
        204,
    ),
];

/// basic-feature.md.
const FEATURE: &str = r#"curl -u ditto:ditto -X GET \
  'http://localhost:8080/api/2/things/com.example:thermostat-1/features/temperature/properties/value'"#;

/// basic-conditional-requests.md, the header form (the query form is not valid shell as
/// printed: its unquoted parentheses are a bash syntax error).
const CONDITION_HEADER: &str = r#"curl -X PUT -H 'Content-Type: application/json' -H 'condition: gt(features/temperature/properties/lastModified,"2021-08-10T15:10:02.592Z")' /api/2/things/org.eclipse.ditto:fancy-thing/features/temperature/properties/value -d 19.26"#;

/// Runs a documented command with the address substituted; returns status and body.
fn run(cmd: &str, port: u16) -> (u16, String) {
    let cmd = cmd
        .replace("http://localhost:8080", &format!("http://127.0.0.1:{port}"))
        .replace(
            " /api/2/",
            &format!(" http://ditto:ditto@127.0.0.1:{port}/api/2/"),
        );
    let out = tempfile::NamedTempFile::new().expect("temp file");
    let full = format!("{cmd} -s -o '{}' -w '%{{http_code}}'", out.path().display());
    let o = Command::new("bash")
        .arg("-c")
        .arg(&full)
        .output()
        .expect("bash runs (is curl installed? scripts/test.sh installs it)");
    assert!(
        o.status.success(),
        "curl failed: {full}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let status = String::from_utf8_lossy(&o.stdout)
        .trim()
        .parse()
        .expect("http code");
    (
        status,
        std::fs::read_to_string(out.path()).unwrap_or_default(),
    )
}

#[test]
fn ditto_docs_hello_world_runs_verbatim() {
    let srv = Server::start();
    let port = srv.addr.port();
    let mut bodies = Vec::new();
    for (cmd, status) in HELLO_WORLD {
        let (got, body) = run(cmd, port);
        assert_eq!(got, status, "{cmd}\n{body}");
        bodies.push(body);
    }
    let thing: Value = serde_json::from_str(&bodies[1]).expect("thing JSON");
    assert_eq!(thing["thingId"], "io.eclipseprojects.ditto:floor-lamp-0815");
    assert_eq!(
        thing["policyId"],
        "io.eclipseprojects.ditto:floor-lamp-0815"
    );
    assert_eq!(thing["attributes"]["serialNo"], "0815666337");
    assert_eq!(bodies[3].trim(), "false");
    let c = Http::new(srv.addr);
    block_on(async {
        let r = c
            .get("/api/2/things/io.eclipseprojects.ditto:floor-lamp-0815/features/Spot1/properties")
            .await;
        assert_eq!(
            r.json(),
            json!({"on": true, "dimmer-level": 0, "color": {"r": 0, "g": 0, "b": 0}})
        );
    });
}

#[test]
fn ditto_docs_feature_and_condition_examples_run_verbatim() {
    let srv = Server::start();
    let port = srv.addr.port();
    let c = Http::new(srv.addr);
    block_on(async {
        let r = c
            .put(
                "/api/2/things/com.example:thermostat-1",
                &json!({"features": {"temperature": {"properties": {"value": 21.5}}}}),
            )
            .await;
        assert_eq!(r.status, 201);
        // The state of basic-conditional-requests.md.
        let r = c
            .put(
                "/api/2/things/org.eclipse.ditto:fancy-thing",
                &json!({"features": {"temperature": {"properties": {
                    "value": 23.42, "unit": "Celcius", "lastModified": "2021-08-10T15:07:20.398Z"}}}}),
            )
            .await;
        assert_eq!(r.status, 201);
    });
    let (status, body) = run(FEATURE, port);
    assert_eq!((status, body.trim()), (200, "21.5"));
    let (status, body) = run(CONDITION_HEADER, port);
    assert_eq!(status, 412, "the stored lastModified is older: {body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"],
        "things:condition.failed"
    );
    block_on(async {
        c.put(
            "/api/2/things/org.eclipse.ditto:fancy-thing/features/temperature/properties/lastModified",
            &json!("2021-08-10T15:20:00.000Z"),
        )
        .await;
    });
    let (status, _) = run(CONDITION_HEADER, port);
    assert_eq!(status, 204, "newer lastModified: the condition holds");
    block_on(async {
        let r = c
            .get(
                "/api/2/things/org.eclipse.ditto:fancy-thing/features/temperature/properties/value",
            )
            .await;
        assert_eq!(r.json(), json!(19.26));
    });
}

#[test]
fn curl_streams_server_sent_events() {
    let srv = Server::start();
    let port = srv.addr.port();
    let url = format!("http://127.0.0.1:{port}/api/2/things?ids=org.eclipse.ditto:fancy-thing&fields=thingId,features/lamp");
    let mut child = Command::new("curl")
        .args([
            "-s",
            "-N",
            "--max-time",
            "5",
            "-u",
            "ditto:ditto",
            "-H",
            "Accept: text/event-stream",
            &url,
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("curl");
    let c = Http::new(srv.addr);
    block_on(async {
        // Wait until curl's stream is registered (one hub session), then change the thing.
        let deadline = std::time::Instant::now() + WAIT;
        while c.sessions().await == 0 && std::time::Instant::now() < deadline {
            smol::Timer::after(std::time::Duration::from_millis(50)).await;
        }
        c.put(
            "/api/2/things/org.eclipse.ditto:fancy-thing",
            &json!({"features": {"lamp": {"properties": {"on": false}}}}),
        )
        .await;
        c.put(
            "/api/2/things/org.eclipse.ditto:fancy-thing/features/lamp/properties/on",
            &json!(true),
        )
        .await;
    });
    // Read the stream as curl prints it until two events arrived, then stop curl.
    let stdout = child.stdout.take().expect("curl stdout");
    let mut text = String::new();
    let mut data: Vec<Value> = Vec::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
        let line = line.expect("curl output");
        text.push_str(&line);
        text.push('\n');
        if let Some(d) = line.strip_prefix("data:") {
            data.push(serde_json::from_str(d).expect("JSON data"));
            if data.len() == 2 {
                break;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        data,
        vec![
            json!({"thingId": "org.eclipse.ditto:fancy-thing", "features": {"lamp": {"properties": {"on": false}}}}),
            json!({"thingId": "org.eclipse.ditto:fancy-thing", "features": {"lamp": {"properties": {"on": true}}}}),
        ],
        "{text}"
    );
}
