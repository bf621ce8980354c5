//! `edgetwin check-config FILE` as a user runs it: every problem on its own line with the
//! file's line number, exit status 1; the shipped example config passes and documents every
//! option the binary knows (found by asking the binary itself, so new options must be added).

use std::collections::BTreeSet;
use std::process::{Command, Output};

fn check_config(text: &str) -> Output {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("edgetwin.toml");
    std::fs::write(&path, text).unwrap();
    Command::new(env!("CARGO_BIN_EXE_edgetwin"))
        .arg("check-config")
        .arg(&path)
        .output()
        .unwrap()
}

/// `(line, message)` of each reported problem.
fn problems(out: &Output) -> Vec<(usize, String)> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let rest = l.split_once(".toml:").expect("FILE:LINE: message").1;
            let (n, msg) = rest.split_once(": ").expect("LINE: message");
            (n.parse().expect("line number"), msg.to_owned())
        })
        .collect()
}

#[test]
fn reports_every_problem_with_its_line_and_fails() {
    let out = check_config(
        "\
listen = \"0.0.0.0:8080\"
store = \"rocks\"
threads = \"many\"
colour = \"blue\"
log_level = \"chatty\"

[limits]
max_message_kib = 0
queue = 5
",
    );
    assert_eq!(out.status.code(), Some(1));
    let p = problems(&out);
    let lines: Vec<usize> = p.iter().map(|x| x.0).collect();
    assert_eq!(lines, vec![1, 2, 3, 4, 5, 7, 9], "{p:#?}");
    let text = |i: usize| p[i].1.as_str();
    assert!(text(0).contains("users must be configured"), "{p:?}");
    assert!(text(1).contains("unknown backend 'rocks'"), "{p:?}");
    assert!(text(2).starts_with("threads: invalid type"), "{p:?}");
    assert!(text(3).contains("unknown field `colour`"), "{p:?}");
    assert!(text(4).starts_with("log_level:"), "{p:?}");
    assert!(text(5).contains("must be positive"), "{p:?}");
    assert!(text(6).contains("unknown field `queue`"), "{p:?}");
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(summary.contains("7 problems"), "{summary}");
}

#[test]
fn a_clean_file_passes_and_a_missing_one_fails() {
    let out = check_config("listen = \"127.0.0.1:9000\"\n[limits]\noutbound_queue = 64\n");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).ends_with(": ok\n"));
    let out = Command::new(env!("CARGO_BIN_EXE_edgetwin"))
        .args(["check-config", "/nonexistent/edgetwin.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = Command::new(env!("CARGO_BIN_EXE_edgetwin"))
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "usage error without FILE");
}

#[test]
fn run_refuses_a_bad_config_listing_every_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("edgetwin.toml");
    std::fs::write(&path, "store = \"rocks\"\nbogus = 1\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_edgetwin"))
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("edgetwin.toml:1: store:"), "{err}");
    assert!(err.contains("edgetwin.toml:2: bogus:"), "{err}");
}

const EXAMPLE: &str = include_str!("../../systemd/edgetwin.toml");

/// The option names the binary accepts in a table, from its "unknown field ..., expected one of
/// `a`, `b`" message for a probe key; `None` if `header` does not open a table of options.
fn known_fields(header: &str) -> Option<Vec<String>> {
    let out = check_config(&format!("{header}\nzz_probe = 1\n"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.contains("unknown field `zz_probe`"))?;
    let list = line.split_once("expected").map(|x| x.1)?;
    Some(
        list.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect(),
    )
}

/// `(section, key)` of every option line in the example, commented out or not.
fn documented() -> BTreeSet<(String, String)> {
    let mut section = String::new();
    let mut set = BTreeSet::new();
    for raw in EXAMPLE.lines() {
        let l = raw.trim_start_matches('#').trim();
        if let Some(h) = l.strip_prefix('[') {
            section = h.trim_matches(|c| c == '[' || c == ']').to_owned();
        } else if let Some((k, _)) = l.split_once(" = ") {
            if k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                set.insert((section.clone(), k.to_owned()));
            }
        }
    }
    set
}

#[test]
fn example_config_is_valid_and_documents_every_option() {
    let out = check_config(EXAMPLE);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let doc = documented();
    let top = known_fields("").expect("top-level fields");
    assert!(top.contains(&"listen".to_owned()), "{top:?}");
    let mut missing = Vec::new();
    for key in &top {
        if !doc.contains(&(String::new(), key.clone())) {
            // a table or array of tables: its options must be documented under its header
            let fields =
                known_fields(&format!("[{key}]")).or_else(|| known_fields(&format!("[[{key}]]")));
            match fields {
                Some(fs) => missing.extend(
                    fs.into_iter()
                        .filter(|f| !doc.contains(&(key.clone(), f.clone())))
                        .map(|f| format!("{key}.{f}")),
                ),
                None => missing.push(key.clone()),
            }
        }
    }
    assert!(
        missing.is_empty(),
        "options missing from systemd/edgetwin.toml: {missing:?}"
    );
}
