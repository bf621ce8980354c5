//! The processes a run measures: the edgetwin binary (started on a free port with its own data
//! directory, or an already running one given by address and pid) and the raw WebSocket echo
//! baseline (this program re-executed as `echo-server`). Both announce their address on stdout.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server under test.
pub struct Server {
    pub addr: SocketAddr,
    pub pid: u32,
    /// time from spawn to the "listening on" line
    pub startup: Duration,
    child: Option<Child>,
}

impl Server {
    /// A server started elsewhere (not stopped by us).
    pub fn external(addr: SocketAddr, pid: u32) -> Server {
        Server {
            addr,
            pid,
            startup: Duration::ZERO,
            child: None,
        }
    }

    /// Starts `cmd` and reads its address from the first stdout line after `prefix`.
    pub fn spawn(mut cmd: Command, prefix: &str) -> Result<Server, String> {
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        if std::env::var("RUST_LOG").is_err() {
            cmd.env("RUST_LOG", "error");
        }
        let t0 = Instant::now();
        let mut child = cmd.spawn().map_err(|e| format!("spawn {cmd:?}: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .map_err(|e| format!("read: {e}"))?;
        let startup = t0.elapsed();
        let addr = line
            .trim()
            .strip_prefix(prefix)
            .ok_or_else(|| format!("unexpected first line {line:?}"))?
            .parse()
            .map_err(|e| format!("address in {line:?}: {e}"))?;
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                sink.clear();
            }
        });
        Ok(Server {
            addr,
            pid: child.id(),
            startup,
            child: Some(child),
        })
    }

    /// Starts edgetwin on a free loopback port with data in `data` and backend `store`;
    /// `threads` > 0 pins the executor thread count (via a config file in `data`'s parent), with
    /// `extra` lines at the end of that file. All load comes from one address: the per-address
    /// connection cap is lifted.
    pub fn edgetwin_with(
        bin: &Path,
        data: &Path,
        store: &str,
        threads: usize,
        conns: usize,
        extra: &str,
    ) -> Result<Server, String> {
        let mut cmd = Command::new(bin);
        cmd.args(["run", "--listen", "127.0.0.1:0", "--store", store, "--data"])
            .arg(data);
        let cfg = data.with_extension("toml");
        // the connection caps only where the defaults (128 per address) would refuse some, so
        // that a binary from before those settings can be measured too (scripts/bench-ab.sh)
        let caps = if conns > 100 {
            "[limits]\nmax_connections = 4096\nmax_connections_per_address = 4096\n"
        } else {
            ""
        };
        std::fs::write(&cfg, format!("threads = {threads}\n{caps}{extra}\n"))
            .map_err(|e| format!("{}: {e}", cfg.display()))?;
        cmd.arg("--config").arg(cfg);
        Server::spawn(cmd, "edgetwin listening on ")
    }

    /// Starts the echo baseline with `threads` executor threads.
    pub fn echo(threads: usize) -> Result<Server, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(exe);
        cmd.args(["echo-server", "--threads", &threads.to_string()]);
        Server::spawn(cmd, "echo listening on ")
    }

    /// SIGTERM, then wait for the exit (edgetwin commits pending writes on SIGTERM).
    pub fn stop(&mut self) -> Result<(), String> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let st = child.wait().map_err(|e| e.to_string())?;
        if st.success() {
            Ok(())
        } else {
            Err(format!("server exited with {st}"))
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The edgetwin binary next to this example (`target/<profile>/edgetwin`).
pub fn default_edgetwin_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/examples/loadgen -> target/<profile>/edgetwin
    exe.parent()
        .and_then(Path::parent)
        .map(|d| d.join("edgetwin"))
        .unwrap_or_else(|| PathBuf::from("edgetwin"))
}

/// A fresh directory under the temp dir (or under `base`), removed by `TempDir`'s drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(base: Option<&Path>, tag: &str) -> Result<TempDir, String> {
        let base = base
            .map(Path::to_path_buf)
            .unwrap_or_else(std::env::temp_dir);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = base.join(format!(
            "edgetwin-bench-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Bytes under a directory (file lengths).
pub fn du(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => du(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Bytes the files under `dir` occupy on the disk (allocated blocks; a sparse file's holes
/// count nothing).
pub fn du_allocated(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => du_allocated(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}
