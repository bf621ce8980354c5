//! The DevOps routes (issue 16 point 11) as Ditto's explorer uses them: only the Basic users of
//! `[auth] devops_users` get in (401 for everyone else, the dev user included);
//! `GET/PUT /devops/logging` in Ditto's shape changes the level of the running process (seen
//! in its log); `/api/2/connections` with the bridge off lists nothing; writes are refused.

use crate::authkit;
use crate::common;
use authkit::{http, start, user, PASSWORD};
use common::{basic, Server};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// edgetwin with its stderr in a file, to see what it logs.
struct Logged {
    child: Child,
    addr: SocketAddr,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Logged {
    fn start(toml: &str) -> Logged {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("edgetwin.toml");
        std::fs::write(&conf, toml).expect("config");
        let log = dir.path().join("stderr.log");
        let mut cmd = common::edgetwin_command();
        cmd.arg("--config")
            .arg(&conf)
            .args(["--listen", "127.0.0.1:0", "--mqtt", "none", "--data"])
            .arg(dir.path().join("data"))
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"));
        let mut child = cmd.spawn().expect("spawn");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("listen line");
        let addr = line
            .trim()
            .strip_prefix("edgetwin listening on ")
            .expect("listen line")
            .parse()
            .expect("addr");
        Logged {
            child,
            addr,
            log,
            _dir: dir,
        }
    }

    fn log_contains(&self, text: &str, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            if std::fs::read_to_string(&self.log).is_ok_and(|l| l.contains(text)) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn users_toml(names: &[&str], devops: &str) -> String {
    let hash = edgetwin::auth::hash_password(PASSWORD).expect("hash");
    let mut t = String::from("log_level = \"warn\"\n");
    for n in names {
        t.push_str(&format!(
            "[[users]]\nname = \"{n}\"\npassword_hash = \"{hash}\"\n"
        ));
    }
    t.push_str(&format!("[auth]\ndevops_users = [{devops}]\n"));
    t
}

#[test]
fn only_devops_users_get_in_and_the_log_level_changes_at_run_time() {
    let srv = Logged::start(&users_toml(&["admin", "alice"], "\"admin\""));
    let a = srv.addr;
    let admin = || vec![("authorization", user("admin"))];
    for (who, creds) in [
        ("nobody", vec![]),
        (
            "alice (no devops user)",
            vec![("authorization", user("alice"))],
        ),
        (
            "admin with a wrong password",
            vec![("authorization", basic("admin", "wrong"))],
        ),
    ] {
        for path in ["/devops/logging", "/devops/backup", "/api/2/connections"] {
            let r = http(a, "GET", path, &creds, None);
            assert_eq!(r.status, 401, "{who} on {path}: {}", r.body);
            assert_eq!(r.json()["error"], "gateway:authentication.failed");
        }
    }
    let r = http(a, "GET", "/devops/logging", &admin(), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json(),
        json!({"edgetwin": {"1": {"type": "devops.responses:retrieveLoggerConfig", "status": 200,
            "serviceName": "edgetwin", "instance": "1",
            "loggerConfigs": [{"level": "warn", "logger": "ROOT"}]}}})
    );

    // the change itself logs at info: not written while the level is warn ...
    let r = http(
        a,
        "PUT",
        "/devops/logging/edgetwin",
        &admin(),
        Some(r#"{"logger":"edgetwin::mqtt","level":"debug"}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json(),
        json!({"1": {"type": "devops.responses:changeLogLevel", "status": 200,
                     "serviceName": "edgetwin", "instance": "1", "successful": true}})
    );
    assert!(!srv.log_contains("log level changed", Duration::from_millis(300)));
    // ... and written once ROOT is at info
    let r = http(
        a,
        "PUT",
        "/devops/logging",
        &admin(),
        Some(r#"{"logger":"ROOT","level":"info"}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["edgetwin"]["1"]["successful"], true);
    assert!(srv.log_contains("log level changed", common::WAIT));
    let r = http(a, "GET", "/devops/logging/edgetwin/1", &admin(), None);
    assert_eq!(
        r.json()["loggerConfigs"],
        json!([{"level": "info", "logger": "ROOT"}, {"level": "debug", "logger": "edgetwin::mqtt"}])
    );

    // Ditto's 400 for a level it does not know; unknown services do not exist
    let r = http(
        a,
        "PUT",
        "/devops/logging",
        &admin(),
        Some(r#"{"level":"loud"}"#),
    );
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (400, json!("json.invalid"))
    );
    let r = http(
        a,
        "PUT",
        "/devops/logging",
        &admin(),
        Some(r#"{"logger":"x"}"#),
    );
    assert_eq!(r.status, 400);
    let r = http(a, "GET", "/devops/logging/things", &admin(), None);
    assert_eq!(r.status, 404);
    let r = http(a, "DELETE", "/devops/logging", &admin(), None);
    assert_eq!(r.status, 405);

    // the bridge is off: no connections; writes are refused with a reason
    let r = http(a, "GET", "/api/2/connections", &admin(), None);
    assert_eq!((r.status, r.json()), (200, json!([])));
    let r = http(
        a,
        "GET",
        "/api/2/connections/mqtt-bridge/status",
        &admin(),
        None,
    );
    assert_eq!(r.json()["error"], "connectivity:connection.notfound");
    let r = http(
        a,
        "POST",
        "/api/2/connections",
        &admin(),
        Some(r#"{"connectionType":"mqtt"}"#),
    );
    assert_eq!(r.status, 405);
    assert_eq!(r.headers["allow"], "GET");
    assert!(r.json()["description"].as_str().unwrap().contains("[mqtt]"));
}

#[test]
fn nobody_is_a_devops_user_by_default() {
    // zero config: the dev user works for the API, not for DevOps
    let dev = Server::start();
    let ditto = vec![("authorization", basic("ditto", "ditto"))];
    assert_eq!(
        http(dev.addr, "GET", "/api/2/whoami", &ditto, None).status,
        200
    );
    for path in ["/devops/logging", "/api/2/connections"] {
        assert_eq!(
            http(dev.addr, "GET", path, &ditto, None).status,
            401,
            "{path}"
        );
    }
    // users without [auth] devops_users: nobody either
    let env = start(&["admin"], "");
    let r = http(
        env.srv.addr,
        "GET",
        "/devops/logging",
        &[("authorization", user("admin"))],
        None,
    );
    assert_eq!(r.status, 401);
}
