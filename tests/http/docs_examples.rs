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
    ("docs/backup.md", false),
    ("docs/configuration.md", false),
    ("docs/development.md", false),
    ("docs/explorer.md", false),
    ("docs/history.md", false),
    ("docs/http.md", false),
    ("docs/limits.md", false),
    ("docs/live.md", false),
    ("docs/mqtt.md", true),
    ("docs/raspberry-pi.md", false),
    ("docs/search.md", false),
    ("docs/storage.md", false),
    ("docs/uplink.md", false),
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
    server: Server,
    mqtt_url: String,
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
            server,
            mqtt_url,
            _broker: broker,
            subs,
            path_env,
        }
    }

    /// Restarts the file's gateway on the same port and data with `b` as its config file.
    fn reconfigure(&mut self, b: &Block) {
        let conf = self.dir.path().join("gateway.toml");
        std::fs::write(&conf, &b.text).expect("write config");
        self.server.terminate();
        let listen = format!("127.0.0.1:{}", self.server.addr.port());
        let conf = conf.to_str().expect("utf-8").to_owned();
        self.server = Server::start_in(
            &self.dir.path().join("gateway-data"),
            &[
                "--config",
                &conf,
                "--listen",
                &listen,
                "--mqtt",
                &self.mqtt_url,
            ],
        );
    }

    fn script(&self, b: &Block) -> String {
        let mut s = b.text.clone();
        for (from, to) in &self.subs {
            s = s.replace(from, to);
        }
        s
    }

    /// Runs an already substituted block, with line-buffered output as on a terminal (stdbuf:
    /// otherwise mosquitto_sub, for one, would hold its lines back).
    fn bash(&self, b: &Block, out: Stdio, err: Stdio) -> Child {
        Command::new("stdbuf")
            .args(["-oL", "-eL", "bash", "-euo", "pipefail", "-c", &b.text])
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

/// Where `expected` (with `...` as any text within a line) first occurs in `out` at or after
/// byte `from`; returns the end of the match. Outputs are matched as text, not by lines: the
/// API's JSON bodies end without a newline, so consecutive outputs share a line.
fn find(out: &str, from: usize, expected: &str) -> Option<usize> {
    let mut parts = expected.split("...");
    let first = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    let mut start = from;
    loop {
        let at = start + out.get(start..)?.find(first)?;
        let mut end = at + first.len();
        let ok = rest.iter().all(|p| {
            let line_end = out[end..].find('\n').map_or(out.len(), |n| end + n);
            match out[end..line_end].find(p) {
                Some(i) => {
                    end += i + p.len();
                    true
                }
                None => false,
            }
        });
        if ok {
            return Some(end);
        }
        start = at + first.len().max(1);
    }
}

/// The `#>` lines of `b` that `output` does not show in order.
fn missing(b: &Block, output: &str) -> Vec<String> {
    let mut at = 0;
    let mut miss = Vec::new();
    for e in b.expected() {
        match find(output, at, &e) {
            Some(next) => at = next,
            None => miss.push(e),
        }
    }
    miss
}

/// `b` with the run's substitutions applied (to commands and expected output alike).
fn substituted(run: &Run, b: &Block) -> Block {
    Block {
        text: run.script(b),
        ..b.clone()
    }
}

fn run_foreground(run: &Run, b: &Block) {
    let b = &substituted(run, b);
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
    let (out, err) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    let script = &b.text;
    let Some(status) = status else {
        panic!(
            "{}: still running after {BLOCK_TIMEOUT:?}\n{script}\nstdout:\n{out}\nstderr:\n{err}",
            b.at()
        );
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

/// Starts a background block; it is ready once its stdout shows `until`, or without `until`
/// any line (a gateway its `edgetwin listening on` line, curl's SSE stream its first `:`
/// comment after a second).
fn start_background(run: &Run, b: &Block, n: usize, until: Option<&str>) -> Background {
    let b = &substituted(run, b);
    let out = run.dir.path().join(format!("background-{n}.out"));
    let err = run.dir.path().join(format!("background-{n}.err"));
    let (o, e) = (
        std::fs::File::create(&out).expect("output file"),
        std::fs::File::create(err).expect("error file"),
    );
    let mut child = run.bash(b, Stdio::from(o), Stdio::from(e));
    let deadline = Instant::now() + BACKGROUND_WAIT;
    let ready = || {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        match until {
            Some(u) => text.contains(u),
            None => !text.is_empty(),
        }
    };
    while !ready() {
        if let Some(st) = child.try_wait().expect("wait") {
            panic!(
                "{}: background block ended ({st}) before printing anything\n{}",
                b.at(),
                b.text
            );
        }
        assert!(
            Instant::now() < deadline,
            "{}: background block printed nothing within {BACKGROUND_WAIT:?}\n{}",
            b.at(),
            b.text
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
    let mut run = Run::start(mqtt);
    let mut background = Vec::new();
    for b in docs::blocks(&docs::root().join(file)) {
        let runs = is_shell(&b.lang) || b.lang == "toml";
        match b.marker.as_deref() {
            _ if !runs => {}
            Some(m) if m.starts_with("skip") => {
                println!("SKIPPED: {}: {}", b.at(), m["skip".len()..].trim());
            }
            Some("systemd") => {} // tests/ops/ops_systemd_boot.rs
            Some(m) if m.starts_with("background") => {
                let until = m.strip_prefix("background until ").map(str::trim);
                let n = background.len();
                background.push(start_background(&run, &b, n, until));
            }
            Some("config") if b.lang == "toml" => {
                check_toml(&run, &b);
                run.reconfigure(&b);
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
            let known = m.starts_with("skip ")
                || m == "background"
                || m.starts_with("background until ")
                || m == "systemd"
                || m == "config";
            assert!(known, "{}: unknown marker '{m}'", b.at());
        }
    }
}

/// Every relative link of README.md and docs/*.md, and every path in backquotes that starts with
/// `../`, names a file of the repository (nothing outside a clone, like the `../shared/spec/`
/// the README once pointed to).
#[test]
fn every_relative_link_resolves() {
    let root = docs::root().canonicalize().expect("root");
    let mut dead = Vec::new();
    for f in docs::files() {
        let text = std::fs::read_to_string(&f).expect("read");
        let base = f.parent().expect("dir");
        for (n, line) in text.lines().enumerate() {
            let links = line.split("](").skip(1).filter_map(|p| p.split(')').next());
            let quoted = line
                .split('`')
                .skip(1)
                .step_by(2)
                .filter(|p| p.starts_with("../"));
            for target in links.chain(quoted) {
                let path = target.split('#').next().unwrap_or_default();
                if path.is_empty() || path.contains("://") || path.starts_with("mailto:") {
                    continue;
                }
                let inside = base
                    .join(path)
                    .canonicalize()
                    .is_ok_and(|p| p.starts_with(&root));
                if !inside {
                    dead.push(format!("{}:{}: {target}", f.display(), n + 1));
                }
            }
        }
    }
    assert!(dead.is_empty(), "dead links: {dead:#?}");
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
    assert!(
        missing(&b, "{\"a\":1,\"b\":2}done").is_empty(),
        "outputs share a line"
    );
    assert_eq!(
        missing(&b, "{\"a\":1\n,\"b\":2}\ndone"),
        vec!["{\"a\":1,...}"]
    );
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
fn docs_backup() {
    file("docs/backup.md");
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
fn docs_explorer() {
    file("docs/explorer.md");
}

#[test]
fn docs_history() {
    file("docs/history.md");
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
fn docs_uplink() {
    file("docs/uplink.md");
}

#[test]
fn docs_websocket() {
    file("docs/websocket.md");
}
