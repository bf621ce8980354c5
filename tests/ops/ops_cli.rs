//! The command line as a user meets it: `--version`, `--help` for every subcommand (never
//! running the command; `edgetwin ws` itself runs in docs_examples and ops_tls), and `hash-password` reading the password from stdin, never from the
//! command line; the printed hash logs the user in.

use crate::common;
use common::http::Http;
use common::{basic, block_on, edgetwin_command, Server};
use std::io::Write;
use std::process::{Output, Stdio};

fn edgetwin(args: &[&str], stdin: &str) -> Output {
    let mut child = edgetwin_command()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn edgetwin");
    let mut input = child.stdin.take().expect("stdin");
    // a command that does not read stdin may have exited already (broken pipe)
    let _ = input.write_all(stdin.as_bytes());
    drop(input);
    child.wait_with_output().expect("wait")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn version_prints_the_crate_version() {
    for flag in ["--version", "-V"] {
        let o = edgetwin(&[flag], "");
        assert!(o.status.success(), "{o:?}");
        assert_eq!(
            stdout(&o).trim(),
            format!("edgetwin {}", env!("CARGO_PKG_VERSION"))
        );
    }
}

#[test]
fn every_subcommand_has_help_and_help_runs_nothing() {
    for (args, usage) in [
        (&["--help"][..], "usage:\n  edgetwin [run]"),
        (&["run", "--help"][..], "usage: edgetwin [run]"),
        (
            &["check-config", "--help"][..],
            "usage: edgetwin check-config",
        ),
        (
            &["hash-password", "--help"][..],
            "usage: edgetwin hash-password",
        ),
        (
            &["help", "hash-password"][..],
            "usage: edgetwin hash-password",
        ),
        (&["ws", "--help"][..], "usage: edgetwin ws"),
        (
            &["hash-password", "-h"][..],
            "usage: edgetwin hash-password",
        ),
    ] {
        // stdin holds a password: help must not hash it either
        let o = edgetwin(args, "s3cret\n");
        let out = stdout(&o);
        assert!(o.status.success(), "{args:?}: {o:?}");
        assert!(out.contains(usage), "{args:?}: {out}");
        assert!(!out.contains("$argon2"), "{args:?} hashed something: {out}");
    }
}

#[test]
fn hash_password_refuses_a_password_on_the_command_line() {
    let o = edgetwin(&["hash-password", "s3cret"], "");
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(!stdout(&o).contains("$argon2"), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("takes no arguments"));
    let o = edgetwin(&["hash-password"], "\n");
    assert_eq!(
        o.status.code(),
        Some(1),
        "an empty password is refused: {o:?}"
    );
}

#[test]
fn hash_password_reads_stdin_and_the_hash_logs_the_user_in() {
    let o = edgetwin(&["hash-password"], "s3cret\n");
    assert!(o.status.success(), "{o:?}");
    let hash = stdout(&o).trim().to_owned();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("edgetwin.toml");
    std::fs::write(
        &conf,
        format!("[[users]]\nname = \"alice\"\npassword_hash = \"{hash}\"\n"),
    )
    .expect("config");
    let srv = Server::start_in(
        &dir.path().join("data"),
        &["--config", conf.to_str().expect("utf-8")],
    );
    block_on(async {
        let mut alice = Http::new(srv.addr);
        alice.auth = Some(basic("alice", "s3cret"));
        let r = alice.get("/api/2/whoami").await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["defaultSubject"], "nginx:alice");
        alice.auth = Some(basic("alice", "s3cret\n"));
        assert_eq!(alice.get("/api/2/whoami").await.status, 401);
    });
}
