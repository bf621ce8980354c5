//! Every command in README.md and docs/*.md, run as printed: the fenced `sh` blocks of each file
//! in order with `bash -euo pipefail`, in a fresh directory, against a gateway started for that
//! file (markers and `#> expected output` lines: tests/common/docs.rs). Each block must exit 0
//! and print its `#>` lines, in order (`...` in one stands for any text); a background block
//! must print them before the file is done. `toml` blocks must pass `edgetwin check-config`.
//!
//! What differs from a reader's machine, and how the text is changed for it: ports (8080 = the
//! file's gateway, 8081 = a free port for a gateway the text starts itself, 1883 = the file's
//! mosquitto, which `mosquitto_sub`/`mosquitto_pub` get as `-p`); `./target/release/edgetwin`
//! and `edgetwin` are the tested binary (a link in the directory and on PATH). Needs curl (and
//! for docs/mqtt.md mosquitto and its clients; scripts/test.sh installs them).

use crate::common;
use common::docs::{self, Block};
use common::mqtt::{free_port, Broker};
use common::Server;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Longest a foreground block may run.
const BLOCK_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a background block may take to print its first line, and its `#>` lines.
const BACKGROUND_WAIT: Duration = Duration::from_secs(15);

/// The files and whether their examples need an MQTT broker.
const FILES: &[(&str, bool)] = &[
    ("README.md", false),
    ("docs/auth.md", false),
    ("docs/configuration.md", false),
    ("docs/development.md", false),
    ("docs/http.md", false),
    ("docs/limits.md", false),
    ("docs/live.md", false),
    ("docs/mqtt.md", true),
    ("docs/raspberry-pi.md", false),
    ("docs/search.md", false),
    ("docs/storage.md", false),
    ("docs/websocket.md", false),
];

/// A started background block.
struct Background {
    block: Block,
    child: Child,
    out: PathBuf,
}

/// The directory, gateway, broker and substitutions of one file's run.
struct Run {
    dir: tempfile::TempDir,
    _server: Server,
    _broker: Option<Broker>,
    subs: Vec<(String, String)>,
    path_env: String,
}

impl Run {
    fn start(mqtt: bool) -> Run {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = PathBuf::from(env!("CARGO_BIN_EXE_edgetwin"));
        for link in ["target/release/edgetwin", "bin/edgetwin"] {
            let l = dir.path().join(link);
            std::fs::create_dir_all(l.parent().expect("parent")).expect("mkdir");
            std::os::unix::fs::symlink(&bin, &l).expect("symlink");
        }
        let broker = mqtt.then(Broker::start);
        let mqtt_url = broker
            .as_ref()
            .map(|b| b.url())
            .unwrap_or_else(|| "none".into());
        let server = Server::start_in(&dir.path().join("gateway-data"), &["--mqtt", &mqtt_url]);
        let mut subs = vec![
            (":8080".to_owned(), format!(":{}", server.addr.port())),
            (":8081".to_owned(), format!(":{}", free_port())),
        ];
        if let Some(b) = &broker {
            subs.push(("1883".into(), b.port.to_string()));
            for tool in ["mosquitto_sub ", "mosquitto_pub "] {
                subs.push((tool.into(), format!("{tool}-p {} ", b.port)));
            }
        }
        let path_env = format!(
            "{}:{}:/usr/sbin",
            dir.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Run {
            dir,
            _server: server,
            _broker: broker,
            subs,
            path_env,
        }
    }

    fn script(&self, b: &Block) -> String {
        let mut s = b.text.clone();
        for (from, to) in &self.subs {
            s = s.replace(from, to);
        }
        s
    }

    fn bash(&self, b: &Block, out: Stdio, err: Stdio) -> Child {
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", &self.script(b)])
            .current_dir(self.dir.path())
            .env("PATH", &self.path_env)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .expect("bash")
    }
}

/// Kills a block's whole process group (bash and what it started).
fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .status();
    let _ = child.wait();
}

/// True if `line` of the expectation (with `...` as "any text") occurs in one line of `out`,
/// at or after line `from`; returns the line after the match.
fn find(out: &[&str], from: usize, expected: &str) -> Option<usize> {
    let parts: Vec<&str> = expected.split("...").collect();
    (from..out.len()).find_map(|i| {
        let mut rest = out[i];
        for p in &parts {
            rest = &rest[rest.find(p)? + p.len()..];
        }
        Some(i + 1)
    })
}

/// The `#>` lines of `b` that `output` does not show in order.
fn missing(b: &Block, output: &str) -> Vec<String> {
    let lines: Vec<&str> = output.lines().collect();
    let mut at = 0;
    let mut miss = Vec::new();
    for e in b.expected() {
        match find(&lines, at, &e) {
            Some(next) => at = next,
            None => miss.push(e),
        }
    }
    miss
}

fn run_foreground(run: &Run, b: &Block) {
    let mut child = run.bash(b, Stdio::piped(), Stdio::piped());
    let (mut so, mut se) = (
        child.stdout.take().expect("stdout"),
        child.stderr.take().expect("stderr"),
    );
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + BLOCK_TIMEOUT;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break Some(st);
        }
        if Instant::now() > deadline {
            kill_group(&mut child);
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (out, err) = (out.join().unwrap_or_default(), err.join().unwrap_or_default());
    let script = run.script(b);
    let Some(status) = status else {
        panic!("{}: still running after {BLOCK_TIMEOUT:?}\n{script}\nstdout:\n{out}\nstderr:\n{err}", b.at());
    };
    assert!(
        status.success(),
        "{}: {status}\n{script}\nstdout:\n{out}\nstderr:\n{err}",
        b.at()
    );
    let miss = missing(b, &out);
    assert!(
        miss.is_empty(),
        "{}: output lacks {miss:#?}\n{script}\nstdout:\n{out}\nstderr:\n{err}",
        b.at()
    );
}

fn start_background(run: &Run, b: &Block, n: usize) -> Background {
    let out = run.dir.path().join(format!("background-{n}.out"));
    let file = std::fs::File::create(&out).expect("output file");
    let err = file.try_clone().expect("clone");
    let mut child = run.bash(b, Stdio::from(file), Stdio::from(err));
    let deadline = Instant::now() + BACKGROUND_WAIT;
    while std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0) == 0 {
        if let Some(st) = child.try_wait().expect("wait") {
            panic!(
                "{}: background block ended ({st}) before printing anything\n{}",
                b.at(),
                run.script(b)
            );
        }
        assert!(
            Instant::now() < deadline,
            "{}: background block printed nothing within {BACKGROUND_WAIT:?}\n{}",
            b.at(),
            run.script(b)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Background {
        block: b.clone(),
        child,
        out,
    }
}

fn finish_background(mut bg: Background) {
    let deadline = Instant::now() + BACKGROUND_WAIT;
    let mut text;
    loop {
        text = std::fs::read_to_string(&bg.out).unwrap_or_default();
        if missing(&bg.block, &text).is_empty() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    kill_group(&mut bg.child);
    let miss = missing(&bg.block, &text);
    assert!(
        miss.is_empty(),
        "{}: background output lacks {miss:#?}\n{}\noutput:\n{text}",
        bg.block.at(),
        bg.block.text
    );
}

fn check_toml(run: &Run, b: &Block) {
    let file = run.dir.path().join(format!("block-{}.toml", b.line));
    std::fs::write(&file, &b.text).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_edgetwin"))
        .arg("check-config")
        .arg(&file)
        .output()
        .expect("check-config");
    assert!(
        out.status.success(),
        "{}: check-config: {}{}\n{}",
        b.at(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        b.text
    );
}

fn is_shell(lang: &str) -> bool {
    matches!(lang, "sh" | "bash" | "shell" | "console")
}

/// Runs every block of `file`.
fn run_file(file: &str, mqtt: bool) {
    if Command::new("curl").arg("--version").output().is_err() {
        return println!("SKIPPED: curl is not installed (scripts/test.sh installs it)");
    }
    let run = Run::start(mqtt);
    let mut background = Vec::new();
    for b in docs::blocks(&docs::root().join(file)) {
        let runs = is_shell(&b.lang) || b.lang == "toml";
        match b.marker.as_deref() {
            _ if !runs => {}
            Some(m) if m.starts_with("skip") => {
                println!("SKIPPED: {}: {}", b.at(), m["skip".len()..].trim());
            }
            Some("systemd") => {} // tests/ops/ops_systemd_boot.rs
            Some("background") => {
                let n = background.len();
                background.push(start_background(&run, &b, n));
            }
            Some(other) => panic!("{}: unknown marker '{other}'", b.at()),
            None if b.lang == "toml" => check_toml(&run, &b),
            None => run_foreground(&run, &b),
        }
    }
    for bg in background {
        finish_background(bg);
    }
}

#[test]
fn every_doc_file_has_a_test() {
    let listed: Vec<PathBuf> = FILES.iter().map(|f| docs::root().join(f.0)).collect();
    assert_eq!(
        docs::files(),
        listed,
        "add new docs files to FILES and give them a test"
    );
    // a block with a marker that no runner knows would silently not run
    for b in docs::all_blocks() {
        if let Some(m) = &b.marker {
            let known = m.starts_with("skip ") || m == "background" || m == "systemd";
            assert!(known, "{}: unknown marker '{m}'", b.at());
        }
    }
}

#[test]
fn matching_of_expected_output() {
    let b = Block {
        file: "x".into(),
        line: 1,
        lang: "sh".into(),
        marker: None,
        text: "cmd\n#> {\"a\":1,...}\n#> done\n".into(),
    };
    assert!(missing(&b, "{\"a\":1,\"b\":2}\ndone\n").is_empty());
    assert_eq!(missing(&b, "done\n{\"a\":1,\"b\":2}\n"), vec!["done"]);
    assert_eq!(missing(&b, "{\"a\":2}\ndone\n"), vec!["{\"a\":1,...}"]);
}

fn file(name: &str) {
    let (f, mqtt) = FILES
        .iter()
        .find(|f| f.0 == name)
        .unwrap_or_else(|| panic!("{name} not in FILES"));
    run_file(f, *mqtt);
}

#[test]
fn readme() {
    file("README.md");
}

#[test]
fn docs_auth() {
    file("docs/auth.md");
}

#[test]
fn docs_configuration() {
    file("docs/configuration.md");
}

#[test]
fn docs_development() {
    file("docs/development.md");
}

#[test]
fn docs_http() {
    file("docs/http.md");
}

#[test]
fn docs_limits() {
    file("docs/limits.md");
}

#[test]
fn docs_live() {
    file("docs/live.md");
}

#[test]
fn docs_mqtt() {
    file("docs/mqtt.md");
}

#[test]
fn docs_raspberry_pi() {
    file("docs/raspberry-pi.md");
}

#[test]
fn docs_search() {
    file("docs/search.md");
}

#[test]
fn docs_storage() {
    file("docs/storage.md");
}

#[test]
fn docs_websocket() {
    file("docs/websocket.md");
}
