//! The systemd notification protocol (`sd_notify`), written out: one datagram per state change
//! to the Unix socket named by `NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace).
//! Also reads the watchdog interval systemd asks for (`WATCHDOG_USEC`, `WATCHDOG_PID`).

use std::io;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Where systemd listens for our notifications; `None` when not started by systemd.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    target: String,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET`; `None` if unset or empty (not run as a `Type=notify` service).
    pub fn from_env() -> Option<Notifier> {
        let target = std::env::var("NOTIFY_SOCKET")
            .ok()
            .filter(|s| !s.is_empty())?;
        match UnixDatagram::unbound() {
            Ok(socket) => Some(Notifier { socket, target }),
            Err(e) => {
                tracing::warn!(error = %e, "NOTIFY_SOCKET is set but no socket could be created");
                None
            }
        }
    }

    /// Sends one notification, e.g. `READY=1`, `WATCHDOG=1`, `STOPPING=1`, `STATUS=...`
    /// (several may be joined with newlines). Never blocks: a full socket buffer is an error.
    pub fn notify(&self, state: &str) -> io::Result<()> {
        self.socket.set_nonblocking(true)?;
        let sent = match self.target.strip_prefix('@') {
            Some(name) => send_abstract(&self.socket, state.as_bytes(), name.as_bytes())?,
            None => self.socket.send_to(state.as_bytes(), &self.target)?,
        };
        if sent != state.len() {
            return Err(io::Error::other("short write to NOTIFY_SOCKET"));
        }
        Ok(())
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn send_abstract(socket: &UnixDatagram, buf: &[u8], name: &[u8]) -> io::Result<usize> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    socket.send_to_addr(buf, &addr)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn send_abstract(_: &UnixDatagram, _: &[u8], _: &[u8]) -> io::Result<usize> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract NOTIFY_SOCKET needs Linux",
    ))
}

/// The interval at which systemd expects `WATCHDOG=1` (`WATCHDOG_USEC`), if the watchdog is
/// enabled for this process: `WATCHDOG_PID`, when set, must be our pid (as `sd_watchdog_enabled`).
pub fn watchdog_timeout(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    if let Some(p) = pid {
        if p.trim().parse::<u32>().ok()? != own_pid {
            return None;
        }
    }
    Some(Duration::from_micros(usec))
}

/// `watchdog_timeout` from this process's environment.
pub fn watchdog_from_env() -> Option<Duration> {
    watchdog_timeout(
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::process::id(),
    )
}

/// How often to ping for a watchdog timeout: half of it, as sd_watchdog_enabled(3) advises,
/// but at least every 10 ms.
pub fn ping_interval(timeout: Duration) -> Duration {
    (timeout / 2).max(Duration::from_millis(10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_needs_positive_usec_and_matching_pid() {
        let t = Some(Duration::from_secs(20));
        assert_eq!(watchdog_timeout(Some("20000000"), None, 7), t);
        assert_eq!(watchdog_timeout(Some("20000000"), Some("7"), 7), t);
        assert_eq!(watchdog_timeout(Some("20000000"), Some("8"), 7), None);
        assert_eq!(watchdog_timeout(Some("20000000"), Some("x"), 7), None);
        assert_eq!(watchdog_timeout(Some("0"), None, 7), None);
        assert_eq!(watchdog_timeout(Some("soon"), None, 7), None);
        assert_eq!(watchdog_timeout(None, Some("7"), 7), None);
        assert_eq!(
            ping_interval(Duration::from_secs(20)),
            Duration::from_secs(10)
        );
        assert_eq!(
            ping_interval(Duration::from_micros(1)),
            Duration::from_millis(10)
        );
    }

    #[test]
    fn notify_reaches_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        let n = Notifier {
            socket: UnixDatagram::unbound().unwrap(),
            target: path.to_string_lossy().into_owned(),
        };
        n.notify("READY=1\nSTATUS=up").unwrap();
        let mut buf = [0u8; 64];
        let len = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=up");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn notify_reaches_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("edgetwin-test-{}-{}", std::process::id(), fastrand::u64(..));
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let rx = UnixDatagram::bind_addr(&addr).unwrap();
        let n = Notifier {
            socket: UnixDatagram::unbound().unwrap(),
            target: format!("@{name}"),
        };
        n.notify("WATCHDOG=1").unwrap();
        let mut buf = [0u8; 64];
        let len = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"WATCHDOG=1");
    }

    #[test]
    fn notify_to_a_missing_socket_is_an_error_not_a_panic() {
        let n = Notifier {
            socket: UnixDatagram::unbound().unwrap(),
            target: "/nonexistent/edgetwin/notify".into(),
        };
        assert!(n.notify("READY=1").is_err());
    }
}
