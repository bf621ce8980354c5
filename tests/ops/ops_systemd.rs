//! The systemd unit and installer, checked offline (no running systemd needed): the unit passes
//! `systemd-analyze verify` without a single warning, its `systemd-analyze security` exposure
//! stays below 2.0 (the score is printed), and install.sh lays out, keeps and purges files.
//! scripts/test.sh installs systemd-analyze (Debian package `systemd`) if it is missing.

use std::path::Path;
use std::process::{Command, Output};

const UNIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/edgetwin.service");
const INSTALL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/install.sh");

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("{cmd:?}: {e} (scripts/test.sh installs the `systemd` package)")
    });
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A root with the installed binary and unit plus systemd's own units (for sysinit.target...).
fn unit_root(dir: &Path) {
    std::fs::create_dir_all(dir.join("usr/local/bin")).unwrap();
    std::fs::create_dir_all(dir.join("etc/systemd/system")).unwrap();
    std::fs::copy(
        env!("CARGO_BIN_EXE_edgetwin"),
        dir.join("usr/local/bin/edgetwin"),
    )
    .unwrap();
    std::fs::copy(UNIT, dir.join("etc/systemd/system/edgetwin.service")).unwrap();
    for src in ["/usr/lib/systemd/system", "/lib/systemd/system"] {
        if Path::new(src).is_dir() {
            std::fs::create_dir_all(dir.join("usr/lib/systemd")).unwrap();
            let ok = Command::new("cp")
                .args(["-r", src])
                .arg(dir.join("usr/lib/systemd/"))
                .status()
                .unwrap();
            assert!(ok.success());
            break;
        }
    }
}

#[test]
fn unit_verifies_without_warnings() {
    let tmp = tempfile::tempdir().unwrap();
    unit_root(tmp.path());
    let out = run(Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", tmp.path().display()))
        .arg("edgetwin.service"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr).trim(), "", "verify warnings");
}

#[test]
fn unit_security_exposure_is_below_2() {
    let out = run(Command::new("systemd-analyze").args([
        "security",
        "--offline=true",
        "--no-pager",
        UNIT,
    ]));
    let report = text(&out.stdout);
    let line = report
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no score in: {report}{}", text(&out.stderr)));
    let score: f64 = line
        .split(": ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("unparsable: {line}"));
    println!("systemd-analyze security: {line}");
    assert!(score < 2.0, "{report}");
    // The hardening the brief names is really there (and not just scored).
    let unit = std::fs::read_to_string(UNIT).unwrap();
    for want in [
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "DynamicUser=yes",
        "StateDirectory=edgetwin",
        "ConfigurationDirectory=edgetwin",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service",
        "MemoryMax=",
        "\nCapabilityBoundingSet=\n",
    ] {
        assert!(unit.contains(want), "unit lacks {want:?}");
    }
}

fn install(args: &[&str]) -> Output {
    let out = run(Command::new("bash").arg(INSTALL).args(args));
    assert!(
        out.status.success(),
        "install.sh {args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

#[test]
fn install_keeps_config_and_data_until_purged() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let r = root.to_str().unwrap();
    let bin = env!("CARGO_BIN_EXE_edgetwin");
    install(&["--root", r, "--bin", bin]);
    let conf = root.join("etc/edgetwin/edgetwin.toml");
    assert!(root.join("usr/local/bin/edgetwin").is_file());
    assert!(root.join("etc/systemd/system/edgetwin.service").is_file());
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        include_str!("../../systemd/edgetwin.toml")
    );
    let wants = root.join("etc/systemd/system/multi-user.target.wants/edgetwin.service");
    if Command::new("systemctl").arg("--version").output().is_ok() {
        assert!(wants.symlink_metadata().is_ok(), "enabled (offline)");
    }
    // An upgrade keeps a changed config and puts the new example beside it.
    std::fs::write(&conf, "listen = \"127.0.0.1:9999\"\n").unwrap();
    install(&["install", "--root", r, "--bin", bin]);
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        "listen = \"127.0.0.1:9999\"\n"
    );
    assert!(root.join("etc/edgetwin/edgetwin.toml.example").is_file());
    // Data written by the service (DynamicUser keeps it below /var/lib/private).
    let data = root.join("var/lib/private/edgetwin");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("db"), "twins").unwrap();

    install(&["uninstall", "--root", r]);
    assert!(!root.join("usr/local/bin/edgetwin").exists());
    assert!(!root.join("etc/systemd/system/edgetwin.service").exists());
    assert!(wants.symlink_metadata().is_err(), "disabled");
    assert!(conf.is_file(), "config kept");
    assert!(data.join("db").is_file(), "data kept");

    install(&["uninstall", "--purge", "--root", r]);
    assert!(!conf.exists() && !data.exists(), "purged");
}

#[test]
fn install_refuses_a_config_with_problems() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    std::fs::create_dir_all(root.join("etc/edgetwin")).unwrap();
    std::fs::write(root.join("etc/edgetwin/edgetwin.toml"), "bogus = 1\n").unwrap();
    let out = run(Command::new("bash").arg(INSTALL).args([
        "--root",
        root.to_str().unwrap(),
        "--bin",
        env!("CARGO_BIN_EXE_edgetwin"),
    ]));
    assert!(!out.status.success());
    assert!(
        text(&out.stdout).contains("edgetwin.toml:1: bogus:"),
        "{out:?}"
    );
    assert!(
        !root.join("usr/local/bin/edgetwin").exists(),
        "nothing installed"
    );
    assert!(
        root.join("etc/systemd/system/multi-user.target.wants")
            .read_dir()
            .map_or(true, |mut d| d.next().is_none()),
        "not enabled"
    );
}
