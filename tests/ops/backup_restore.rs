//! `edgetwin backup` / `edgetwin restore` (issue 20) as an operator runs them: a backup of a
//! gateway that three writers keep changing, restored into a new data directory (on the other
//! backend), served by a second gateway: every unchanged thing and policy equal to the first
//! gateway's, the written things a consistent cut (each writer's last KEYS changes, each thing
//! at the revision it had then), the search index agreeing with the twins; a restore into a
//! non-empty directory is refused, and so is a damaged backup.

use crate::authkit::PASSWORD;
use crate::common::{self, block_on, command, modify, Server, Ws};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

const FILLER: usize = 300;
const WRITERS: usize = 3;
const KEYS: u64 = 10;

fn config(dir: &Path) -> String {
    let hash = edgetwin::auth::hash_password(PASSWORD).expect("hash");
    let path = dir.join("edgetwin.toml");
    let toml = format!(
        "[[users]]\nname = \"admin\"\npassword_hash = \"{hash}\"\n[auth]\ndevops_users = [\"admin\"]\n"
    );
    std::fs::write(&path, toml).expect("config");
    path.to_str().expect("utf8").to_owned()
}

/// Runs the edgetwin command line (the password in the environment).
fn cli(args: &[&str]) -> Output {
    let mut c = common::edgetwin_command();
    c.args(args).env("EDGETWIN_PASSWORD", PASSWORD);
    c.output().expect("run edgetwin")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn ws(addr: SocketAddr) -> Ws {
    Ws::connect(addr, Some(("admin", PASSWORD)))
        .await
        .expect("ws")
}

fn writer_thing(w: usize, j: u64) -> String {
    format!("bk:w{w}-{j}")
}

/// Writer `w`: change i goes to thing `i % KEYS` with `attributes/n = i` (i < KEYS creates
/// it), each answered before the next is sent; `done` counts the answered changes.
fn writer(addr: SocketAddr, w: usize, stop: Arc<AtomicBool>, done: Arc<AtomicU64>) {
    block_on(async {
        let mut c = ws(addr).await;
        let mut i = 0u64;
        while !stop.load(Ordering::SeqCst) || i < KEYS {
            let thing = writer_thing(w, i % KEYS);
            let mut cmd = if i < KEYS {
                modify(&thing, "/", json!({"attributes": {"n": i}}))
            } else {
                modify(&thing, "/attributes/n", json!(i))
            };
            // answered once applied (not once on disk): no stall behind a checkpoint
            cmd["headers"]["requested-acks"] = json!([]);
            let r = c.request(cmd).await;
            assert!(r["status"].as_u64().is_some_and(|s| s < 300), "{r}");
            i += 1;
            done.store(i, Ordering::SeqCst);
        }
    });
}

/// A thing with its read-only fields.
async fn thing(c: &mut Ws, id: &str) -> Value {
    let mut cmd = command(id, "retrieve", "/", None);
    cmd["fields"] = json!("thingId,policyId,attributes,_revision,_created,_modified");
    let r = c.request(cmd).await;
    assert_eq!(r["status"], 200, "{id}: {r}");
    r["value"].clone()
}

async fn policy(c: &mut Ws, id: &str) -> Value {
    let (ns, name) = id.split_once(':').expect("id");
    let topic = format!("{ns}/{name}/policies/commands/retrieve");
    let r = c
        .request(json!({"topic": topic, "headers": {}, "path": "/"}))
        .await;
    assert_eq!(r["status"], 200, "policy {id}: {r}");
    r["value"].clone()
}

/// Sorted IDs of the things a search finds (up to 200).
async fn search(addr: SocketAddr, filter: &str) -> Vec<String> {
    let http = common::http::Http {
        addr,
        auth: Some(common::basic("admin", PASSWORD)),
    };
    let q: String = filter
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let r = http
        .get(&format!(
            "/api/2/search/things?filter={q}&option=size(200)&fields=thingId"
        ))
        .await;
    assert_eq!(r.status, 200, "{filter}: {}", r.text());
    let mut ids: Vec<String> = r.json()["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|t| t["thingId"].as_str().expect("id").to_owned())
        .collect();
    ids.sort();
    ids
}

fn backup_under_writes_restores_a_consistent_cut(from: &str, to: &str) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let conf = config(tmp.path());
    let a = Server::start_in(&tmp.path().join("a"), &["--config", &conf, "--store", from]);
    // things nobody changes during the backup, with their default policies (~150 KB each
    // 100 things, so the backup takes a while)
    let blob = |i: usize| -> String {
        (0..1500)
            .map(|k| char::from(b'a' + ((i * 7 + k * k) % 26) as u8))
            .collect()
    };
    block_on(async {
        let mut c = ws(a.addr).await;
        for i in 0..FILLER {
            let cmd = modify(
                &format!("bk:f{i:03}"),
                "/",
                json!({"attributes": {"i": i, "blob": blob(i)}}),
            );
            let r = c.request(cmd).await;
            assert_eq!(r["status"], 201, "{r}");
        }
    });
    let stop = Arc::new(AtomicBool::new(false));
    let done: Vec<Arc<AtomicU64>> = (0..WRITERS).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (stop, done, addr) = (stop.clone(), done[w].clone(), a.addr);
            std::thread::spawn(move || writer(addr, w, stop, done))
        })
        .collect();
    // every writer has created its things and goes on writing
    while done.iter().any(|d| d.load(Ordering::SeqCst) < 2 * KEYS) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let before: Vec<u64> = done.iter().map(|d| d.load(Ordering::SeqCst)).collect();
    let file = tmp.path().join("edgetwin.backup");
    let url = format!("http://{}", a.addr);
    let out = cli(&[
        "backup",
        file.to_str().expect("utf8"),
        "--url",
        &url,
        "--user",
        "admin",
    ]);
    assert!(out.status.success(), "backup: {}", text(&out));
    assert!(
        text(&out).contains(&format!("{} things", FILLER + WRITERS * KEYS as usize)),
        "{}",
        text(&out)
    );
    let after: Vec<u64> = done.iter().map(|d| d.load(Ordering::SeqCst)).collect();
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().expect("writer");
    }
    assert!(
        before.iter().zip(&after).all(|(b, a)| a > b),
        "the writers went on during the backup: {before:?} -> {after:?}"
    );

    // restore: into a new directory, then refused into the now non-empty one
    let b_dir = tmp.path().join("b");
    let b_arg = b_dir.to_str().expect("utf8");
    let f = file.to_str().expect("utf8");
    let out = cli(&["restore", f, "--data", b_arg, "--store", to]);
    assert!(out.status.success(), "restore: {}", text(&out));
    let again = cli(&["restore", f, "--data", b_arg, "--store", to]);
    assert!(
        !again.status.success() && text(&again).contains("not empty"),
        "{}",
        text(&again)
    );
    // a damaged backup is refused and leaves nothing behind
    let mut bytes = std::fs::read(&file).expect("read backup");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    let damaged = tmp.path().join("damaged.backup");
    std::fs::write(&damaged, bytes).expect("write");
    let c_dir = tmp.path().join("c");
    let out = cli(&[
        "restore",
        damaged.to_str().expect("utf8"),
        "--data",
        c_dir.to_str().expect("utf8"),
    ]);
    assert!(
        !out.status.success() && text(&out).contains("checksum"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read_dir(&c_dir).map(|d| d.count()).unwrap_or(0), 0);

    let b = Server::start_in(&b_dir, &["--config", &conf, "--store", to]);
    block_on(async {
        let (mut ca, mut cb) = (ws(a.addr).await, ws(b.addr).await);
        for i in 0..FILLER {
            let id = format!("bk:f{i:03}");
            assert_eq!(thing(&mut cb, &id).await, thing(&mut ca, &id).await, "{id}");
            assert_eq!(
                policy(&mut cb, &id).await,
                policy(&mut ca, &id).await,
                "policy {id}"
            );
        }
        for w in 0..WRITERS {
            let mut vals = Vec::new();
            for j in 0..KEYS {
                let id = writer_thing(w, j);
                let t = thing(&mut cb, &id).await;
                let n = t["attributes"]["n"].as_u64().expect("n");
                assert_eq!(n % KEYS, j, "{id}: {t}");
                // the revision it had after that change: created at 1, +1 per change since
                assert_eq!(t["_revision"], json!(1 + (n - j) / KEYS), "{id}: {t}");
                assert_eq!(policy(&mut cb, &id).await, policy(&mut ca, &id).await);
                // the index agrees: the value finds the thing, the value before it nothing
                let mine =
                    |v: u64| format!("and(eq(attributes/n,{v}),like(thingId,\"bk:w{w}-*\"))");
                assert_eq!(search(b.addr, &mine(n)).await, vec![id.clone()]);
                if n >= KEYS {
                    let old = search(b.addr, &mine(n - KEYS)).await;
                    assert_eq!(old, Vec::<String>::new(), "{id}");
                }
                vals.push(n);
            }
            vals.sort_unstable();
            let last = vals[vals.len() - 1];
            let cut: Vec<u64> = (last + 1 - KEYS..=last).collect();
            assert_eq!(vals, cut, "writer {w}: not a cut");
            assert!(
                last + 1 >= before[w] && last < after[w],
                "writer {w}: change {last} is not between {} and {}",
                before[w],
                after[w]
            );
        }
        let all = search(b.addr, "like(thingId,\"bk:w*\")").await;
        assert_eq!(all.len(), WRITERS * KEYS as usize);
        let filler = search(b.addr, "and(exists(attributes/blob),lt(attributes/i,200))").await;
        assert_eq!(filler.len(), 200);
    });
}

#[test]
fn a_backup_of_a_redb_gateway_under_writes_restores_a_consistent_cut_on_sled() {
    backup_under_writes_restores_a_consistent_cut("redb", "sled");
}

#[test]
fn a_backup_of_a_sled_gateway_under_writes_restores_a_consistent_cut_on_redb() {
    backup_under_writes_restores_a_consistent_cut("sled", "redb");
}

/// With `[tls]` the listener speaks only HTTPS: `edgetwin backup --config` goes to
/// `https://localhost:PORT` and checks the certificate (against `--cacert`); a CA it does not
/// trust is refused and leaves no file.
#[test]
fn a_backup_over_https_checks_the_certificate() {
    if let Err(why) = common::certs::available() {
        return println!("SKIPPED: {why}");
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    common::certs::ca(dir, "ca");
    common::certs::ca(dir, "other");
    let (crt, key) = common::certs::signed(
        dir,
        "ca",
        "server",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
    );
    let hash = edgetwin::auth::hash_password(PASSWORD).expect("hash");
    let conf = dir.join("edgetwin.toml");
    let toml = format!(
        "[[users]]\nname = \"admin\"\npassword_hash = \"{hash}\"\n[auth]\ndevops_users = [\"admin\"]\n\
         [tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
        crt.display(),
        key.display()
    );
    let conf = conf.to_str().expect("utf8");
    std::fs::write(conf, toml).expect("config");
    let srv = Server::start_in(&dir.join("data"), &["--config", conf]);
    // the config's listen address is not the test's free port: name it, keep the rest
    let url = format!("https://localhost:{}", srv.addr.port());
    let file = dir.join("tls.backup");
    let f = file.to_str().expect("utf8");
    let ca = dir.join("ca.crt");
    let other = dir.join("other.crt");
    let refused = cli(&[
        "backup",
        f,
        "--config",
        conf,
        "--url",
        &url,
        "--cacert",
        other.to_str().expect("utf8"),
    ]);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(text(&refused).contains("TLS"), "{}", text(&refused));
    assert!(!file.exists() && !dir.join("tls.backup.partial").exists());
    let plain = cli(&[
        "backup",
        f,
        "--config",
        conf,
        "--url",
        &format!("http://{}", srv.addr),
    ]);
    assert!(
        !plain.status.success(),
        "plain HTTP on the TLS port: {}",
        text(&plain)
    );
    let ok = cli(&[
        "backup",
        f,
        "--config",
        conf,
        "--url",
        &url,
        "--cacert",
        ca.to_str().expect("utf8"),
    ]);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains("0 things"), "{}", text(&ok));
    assert!(file.exists());
}
