//! The service under a REAL systemd: boots systemd as PID 1 of a throwaway container (pid,
//! mount, cgroup, uts, ipc namespaces; an overlay of / whose writes land in tmpfs; its own
//! cgroup subtree), installs with install.sh exactly as on a Pi, and checks: Type=notify reaches
//! "active (running)" with our status text under the full hardening and DynamicUser; a twin
//! written over /ws/2 logs THING/CORRELATION_ID/SUBJECT to the journal; a frozen process
//! (SIGSTOP: no more watchdog pings) is killed by the watchdog and restarted with its data;
//! `systemctl stop` ends with exit 0. Needs root and systemd; skipped, saying why, otherwise.
//! The only change to the shipped unit is a drop-in `WatchdogSec=3s`, to keep the test short.
//! The README's "serve the network" recipe (the block marked `<!-- test: systemd -->`) runs in
//! such a container too: install.sh --tls, a user, the listen address, check-config, restart,
//! and HTTPS with curl.

use crate::common;
use common::docs;
use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Runs outside the namespaces: own cgroup, then the container.
const OUTER: &str = r#"
set -eu
mkdir "$CG"
echo $$ > "$CG/cgroup.procs"
exec unshare --pid --fork --mount --cgroup --uts --ipc --propagation private bash -c "$INNER"
"#;

/// Runs as the container's future PID 1: overlay root, /dev (own /dev/shm), install, boot.
const INNER: &str = r#"
set -eu
mount -t tmpfs tmpfs "$R"
mkdir -p "$R/up" "$R/work" "$R/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$R/up,workdir=$R/work" "$R/root"
N="$R/root"
mount -t proc proc "$N/proc"
mount -t sysfs sysfs "$N/sys"
mount -t cgroup2 cgroup2 "$N/sys/fs/cgroup"
mount --rbind /dev "$N/dev"
mount -t tmpfs tmpfs "$N/dev/shm"
mount -t tmpfs tmpfs "$N/run"
mount -t tmpfs tmpfs "$N/tmp"
# a checkout or target dir below /tmp (a CI clone) is hidden by that tmpfs: bind it back
for p in "$(dirname "$(dirname "$INSTALL")")" "$(dirname "$BIN")"; do
  case "$p" in /tmp/*) mkdir -p "$N$p"; mount --bind "$p" "$N$p";; esac
done
mkdir -p "$N/etc/edgetwin"
printf '%s' "$CONFIG" > "$N/etc/edgetwin/edgetwin.toml"
bash "$INSTALL" --root "$N" --bin "$BIN" >/dev/null
mkdir -p "$N/etc/systemd/system/edgetwin.service.d"
printf '[Service]\nWatchdogSec=3s\n' > "$N/etc/systemd/system/edgetwin.service.d/test.conf"
# boots straight to edgetwin.service (+ sysinit.target: journald), not to multi-user.target;
# of sysinit, nothing that would touch the shared kernel, clock or hardware
for u in systemd-sysctl.service systemd-modules-load.service systemd-timesyncd.service \
  systemd-udevd.service systemd-udev-trigger.service systemd-random-seed.service \
  systemd-binfmt.service proc-sys-fs-binfmt_misc.automount sys-kernel-debug.mount \
  sys-kernel-tracing.mount sys-kernel-config.mount sys-fs-fuse-connections.mount \
  dev-hugepages.mount systemd-pstore.service systemd-networkd.service; do
  ln -sf /dev/null "$N/etc/systemd/system/$u"
done
echo edgetwin-boot > "$N/etc/hostname"
mkdir -p "$N/oldroot"
cd "$N"
pivot_root . oldroot
umount -l /oldroot
export container=edgetwin-test
# chroot . after pivot_root keeps root == the mount namespace's root (DynamicUser/PrivateUsers
# need user namespaces, which refuse chrooted callers)
exec chroot . /lib/systemd/systemd --system --unit=edgetwin.service --log-target=journal \
  --log-level=info </dev/null >/dev/null 2>&1
"#;

fn unified_cgroup() -> Option<PathBuf> {
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.join("cgroup.controllers").exists())
}

fn skip_reason() -> Option<String> {
    if !Path::new("/lib/systemd/systemd").exists() {
        return Some("systemd is not installed".into());
    }
    if unified_cgroup().is_none() {
        return Some("no cgroup2 hierarchy".into());
    }
    // DynamicUser and PrivateUsers need user namespaces; the kernel refuses them to chrooted
    // processes, for one
    let userns = Command::new("unshare")
        .args(["--user", "true"])
        .stderr(Stdio::null())
        .status();
    if !userns.is_ok_and(|s| s.success()) {
        return Some("no user namespaces here (in a chroot, for one)".into());
    }
    for tool in ["unshare", "nsenter"] {
        if Command::new(tool).arg("--version").output().is_err() {
            return Some(format!("{tool} is not installed"));
        }
    }
    let ok = Command::new("unshare")
        .args(["--pid", "--fork", "--mount", "--cgroup", "true"])
        .stderr(Stdio::null())
        .status();
    if !ok.is_ok_and(|s| s.success()) {
        return Some("no permission to create namespaces (needs root)".into());
    }
    None
}

/// A number unique in this process (one cgroup per container when tests run in parallel).
fn next_id() -> u64 {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// The booted container; dropping it kills its PID 1 (and with it everything inside) and
/// removes its cgroup subtree.
struct Container {
    outer: Child,
    _dir: tempfile::TempDir,
    pid1: u32,
    cgroup: PathBuf,
}

impl Container {
    fn boot(config: &str) -> Container {
        let cgroup = unified_cgroup().expect("cgroup2").join(format!(
            "edgetwin-boot-{}-{}",
            std::process::id(),
            next_id()
        ));
        let dir = tempfile::tempdir().expect("tempdir");
        let mut outer = Command::new("bash")
            .args(["-c", OUTER])
            .env("R", dir.path())
            .env("CG", &cgroup)
            .env("INNER", INNER)
            .env("CONFIG", config)
            .env(
                "INSTALL",
                concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/install.sh"),
            )
            .env("BIN", env!("CARGO_BIN_EXE_edgetwin"))
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn container");
        // PID 1 of the new namespace: the child of `unshare` whose NSpid ends in 1 (reading
        // just "the first child" races with the short-lived commands before the exec).
        let children = format!("/proc/{0}/task/{0}/children", outer.id());
        let deadline = Instant::now() + WAIT;
        let pid1 = loop {
            let kids = std::fs::read_to_string(&children).unwrap_or_default();
            let init = kids.split_whitespace().find(|p| {
                std::fs::read_to_string(format!("/proc/{p}/status"))
                    .unwrap_or_default()
                    .lines()
                    .find(|l| l.starts_with("NSpid:"))
                    .is_some_and(|l| {
                        let ids: Vec<&str> = l.split_whitespace().skip(1).collect();
                        ids.len() >= 2 && ids.last() == Some(&"1")
                    })
            });
            if let Some(p) = init.and_then(|p| p.parse().ok()) {
                break p;
            }
            if let Ok(Some(st)) = outer.try_wait() {
                panic!("container setup failed: {st:?}");
            }
            assert!(Instant::now() < deadline, "container did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        let c = Container {
            outer,
            _dir: dir,
            pid1,
            cgroup,
        };
        c.wait_for("system up", Duration::from_secs(60), |c| {
            let s = c.run(&["systemctl", "is-system-running"]);
            s == "running" || s == "degraded"
        });
        c
    }

    /// Runs `bash -euo pipefail -c script` inside the container with `input` on stdin; the
    /// exit status, stdout and stderr.
    fn script(&self, script: &str, input: &str) -> (Option<i32>, String, String) {
        use std::io::Write;
        let mut child = Command::new("nsenter")
            .args([
                "-t",
                &self.pid1.to_string(),
                "-m",
                "-u",
                "-p",
                "-i",
                "-C",
                "-r",
                "-w",
            ])
            .args(["bash", "-euo", "pipefail", "-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nsenter");
        let mut stdin = child.stdin.take().expect("stdin");
        let _ = stdin.write_all(input.as_bytes());
        drop(stdin);
        let out = child.wait_with_output().expect("wait");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs a command inside the container; stdout, trimmed.
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("nsenter")
            .args([
                "-t",
                &self.pid1.to_string(),
                "-m",
                "-u",
                "-p",
                "-i",
                "-C",
                "-r",
                "-w",
            ])
            .args(args)
            .output()
            .expect("nsenter");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn prop(&self, name: &str) -> String {
        self.run(&["systemctl", "show", "edgetwin", "-p", name, "--value"])
    }

    /// The unit's journal (`journalctl -u edgetwin` + `args`), read again until `ok` holds or
    /// 30 s pass; the last read is returned either way for the caller's assertion.
    fn journal_until(&self, args: &[&str], ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut cmd = vec!["journalctl", "-u", "edgetwin", "--no-pager"];
        cmd.extend_from_slice(args);
        loop {
            let out = self.run(&cmd);
            if ok(&out) || Instant::now() > deadline {
                return out;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn wait_for(&self, what: &str, limit: Duration, ok: impl Fn(&Container) -> bool) {
        let deadline = Instant::now() + limit;
        while !ok(self) {
            assert!(
                Instant::now() < deadline,
                "{what}: not reached; {}\n{}",
                self.run(&["systemctl", "status", "edgetwin", "--no-pager"]),
                self.run(&[
                    "journalctl",
                    "--no-pager",
                    "-o",
                    "cat",
                    "-n",
                    "40",
                    "_COMM=(edgetwin)"
                ])
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.pid1.to_string()])
            .status();
        let _ = self.outer.wait();
        // depth first: the container's systemd made slices and scopes below our cgroup
        let _ = Command::new("find")
            .arg(&self.cgroup)
            .args(["-depth", "-type", "d", "-exec", "rmdir", "{}", ";"])
            .status();
    }
}

#[test]
fn runs_under_systemd_with_notify_watchdog_journal_and_clean_stop() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED runs_under_systemd_with_notify_watchdog_journal_and_clean_stop: {why}");
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let config = format!(
        "listen = \"{addr}\"\ndata_dir = \"/var/lib/edgetwin\"\nlog_level = \"info,edgetwin::hub=debug\"\n"
    );
    let c = Container::boot(&config);
    c.wait_for("edgetwin active", Duration::from_secs(30), |c| {
        c.prop("ActiveState") == "active"
    });
    assert_eq!(c.prop("StatusText"), format!("listening on {addr}"));
    assert_eq!(c.prop("Type"), "notify");
    assert_eq!(c.prop("User"), "edgetwin");
    let pid = c.prop("MainPID");
    let user = c.run(&["ps", "-o", "user=", "-p", &pid]);
    assert_eq!(user, "edgetwin", "runs as the dynamic user");

    let retrieve = || {
        block_on(async {
            let mut ws = Ws::connect(addr, Some(("ditto", "ditto"))).await.unwrap();
            let mut g = command("boot:lamp-1", "retrieve", "/", None);
            g["fields"] = json!("attributes");
            ws.request(g).await
        })
    };
    block_on(async {
        let mut ws = Ws::connect(addr, Some(("ditto", "ditto"))).await.unwrap();
        let mut c = command(
            "boot:lamp-1",
            "create",
            "/",
            Some(json!({"attributes": {"on": true}})),
        );
        c["headers"]["correlation-id"] = "boot-1".into();
        assert_eq!(ws.request(c).await["status"], 201);
    });
    // journald stores what it was sent a moment later: read until the entry is there
    let find = |journal: &str| {
        journal
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|e| e["MESSAGE"] == "twin command")
    };
    let journal = c.journal_until(&["-o", "json"], |j| find(j).is_some());
    let entry = find(&journal)
        .unwrap_or_else(|| panic!("no 'twin command' entry in the journal: {journal}"));
    assert_eq!(entry["THING"], "boot:lamp-1");
    assert_eq!(entry["CORRELATION_ID"], "boot-1");
    assert_eq!(entry["SUBJECT"], "nginx:ditto");

    // A frozen process sends no watchdog pings: systemd kills and restarts it.
    c.run(&["systemctl", "kill", "-s", "SIGSTOP", "edgetwin"]);
    c.wait_for("watchdog restart", Duration::from_secs(60), |c| {
        c.prop("NRestarts") == "1" && c.prop("ActiveState") == "active"
    });
    assert_ne!(c.prop("MainPID"), pid, "a new process");
    let log = c.journal_until(&["-o", "cat"], |l| {
        l.contains("Failed with result 'watchdog'")
    });
    assert!(log.contains("Failed with result 'watchdog'"), "{log}");
    let r = retrieve();
    assert_eq!(r["value"], json!({"attributes": {"on": true}}), "{r}");

    c.run(&["systemctl", "stop", "edgetwin"]);
    assert_eq!(c.prop("ActiveState"), "inactive");
    assert_eq!(c.prop("Result"), "success");
    assert_eq!(c.prop("ExecMainStatus"), "0", "exit 0 on SIGTERM");
}

/// The README block marked `<!-- test: systemd -->`, run as printed inside a booted container
/// with these changes only: `sudo ` is dropped (the test runs as root), `./systemd/install.sh`
/// gets `--bin` the tested binary, as does `./target/release/edgetwin` (the container's working
/// directory is /), port 8080 becomes a free port (the container shares the host's network), and
/// curl's `-u alice` (which prompts) gets the password; hash-password reads it from stdin (it
/// prompts on a terminal).
#[test]
fn serve_the_network_recipe_runs_as_printed_under_systemd() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED serve_the_network_recipe_runs_as_printed_under_systemd: {why}");
        return;
    }
    let recipe: Vec<docs::Block> = docs::all_blocks()
        .into_iter()
        .filter(|b| b.marker.as_deref() == Some("systemd"))
        .collect();
    assert_eq!(recipe.len(), 1, "one block marked systemd: {recipe:#?}");
    let recipe = &recipe[0];
    assert!(
        recipe
            .text
            .lines()
            .filter(|l| !l.starts_with("#> "))
            .count()
            <= 10,
        "the recipe stays within ten lines"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = Container::boot("listen = \"127.0.0.1:0\"\ndata_dir = \"/var/lib/edgetwin\"\n");
    c.wait_for("edgetwin active", Duration::from_secs(30), |c| {
        c.prop("ActiveState") == "active"
    });
    let install = format!(
        "bash {} --bin {}",
        concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/install.sh"),
        env!("CARGO_BIN_EXE_edgetwin")
    );
    let script = recipe
        .text
        .replace("sudo ", "")
        .replace("./systemd/install.sh", &install)
        .replace("./target/release/edgetwin", env!("CARGO_BIN_EXE_edgetwin"))
        .replace(":8080", &format!(":{port}"))
        .replace("-u alice ", "-u alice:s3cret ");
    let (code, out, err) = c.script(&script, "s3cret\n");
    assert_eq!(
        code,
        Some(0),
        "{}: {script}\nstdout: {out}\nstderr: {err}\n{}",
        recipe.at(),
        c.run(&[
            "journalctl",
            "--no-pager",
            "-o",
            "cat",
            "-n",
            "30",
            "-u",
            "edgetwin"
        ])
    );
    for line in recipe.expected() {
        assert!(
            out.contains(&line),
            "{}: expected {line}\n{out}",
            recipe.at()
        );
    }
    // the key stays root-only; the service reads systemd's credential copy
    let mode = c.run(&["stat", "-c", "%a %U", "/etc/edgetwin/tls/key.pem"]);
    assert_eq!(mode, "600 root");
    assert_eq!(c.prop("User"), "edgetwin");
    // the development user is gone once a user exists, and plain HTTP gets no answer
    let (code, _, _) = c.script(
        &format!("curl -sf --cacert /etc/edgetwin/tls/cert.pem -u ditto:ditto https://localhost:{port}/api/2/whoami"),
        "",
    );
    assert_eq!(code, Some(22), "ditto/ditto refused (HTTP 401)");
    let (code, _, _) = c.script(&format!("curl -s http://localhost:{port}/health"), "");
    assert_ne!(code, Some(0), "no plain HTTP on the TLS port");
}
