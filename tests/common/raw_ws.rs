//! A hand-made WebSocket client over a blocking std socket: the upgrade, then raw frames the
//! libraries would refuse to send (bad UTF-8, giant or partial frames), and frame reading that
//! shows exactly what the server put on the wire (its Close frame and code, or none).
//! Self-contained (no other test module), so `examples/soak` includes it too.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Read timeout of a raw session.
const WAIT: Duration = Duration::from_secs(10);

/// Upgrades a fresh connection to `/ws/2` as the dev user; panics unless answered 101.
pub fn raw_session(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        s,
        // ZGl0dG86ZGl0dG8= is ditto:ditto, the development user
        "GET /ws/2 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Basic ZGl0dG86ZGl0dG8=\r\n\r\n",
    )
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    assert!(
        String::from_utf8_lossy(&head).starts_with("HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    s
}

/// The bytes of one masked client frame.
pub fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x80 | opcode];
    let len = payload.len();
    if len < 126 {
        f.push(0x80 | len as u8);
    } else if len < 65536 {
        f.push(0x80 | 126);
        f.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        f.push(0x80 | 127);
        f.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let mask = [1u8, 2, 3, 4];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// Writes one masked frame (errors ignored: the server may close first).
pub fn send_frame(s: &mut TcpStream, opcode: u8, payload: &[u8]) {
    let _ = s.write_all(&frame(opcode, payload));
}

/// Sends a Close frame with `code` and `reason`.
pub fn send_close(s: &mut TcpStream, code: u16, reason: &str) {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    send_frame(s, 0x8, &p);
}

/// Reads one server frame: (opcode, payload); `None` on EOF, reset or read timeout.
pub fn read_frame(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).ok()?;
    let mut len = (h[1] & 0x7f) as usize;
    if len == 126 {
        let mut l = [0u8; 2];
        s.read_exact(&mut l).ok()?;
        len = u16::from_be_bytes(l) as usize;
    } else if len == 127 {
        let mut l = [0u8; 8];
        s.read_exact(&mut l).ok()?;
        len = u64::from_be_bytes(l) as usize;
    }
    let mut p = vec![0u8; len];
    s.read_exact(&mut p).ok()?;
    Some((h[0] & 0x0f, p))
}

/// Reads frames until a Close frame; returns its code (`None`: the connection ended without
/// one, what a browser reports as 1006).
pub fn close_code(s: &mut TcpStream) -> Option<u16> {
    close_code_within(s, std::time::Duration::from_secs(3600))
}

/// [`close_code`], giving up (`None`) once `wait` passed (pings keep a connection busy).
pub fn close_code_within(s: &mut TcpStream, wait: std::time::Duration) -> Option<u16> {
    let deadline = std::time::Instant::now() + wait;
    while std::time::Instant::now() < deadline {
        let (op, p) = read_frame(s)?;
        if op == 0x8 {
            return p.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
        }
    }
    None
}

/// True if the connection ends with a clean EOF (the server's FIN) before the read timeout;
/// false on a reset (which makes clients report 1006 and can destroy unread frames) or timeout.
pub fn ends_cleanly(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
}

/// True if the server closed the connection (EOF or reset) before the read timeout.
pub fn ends(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) => {
                return !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                )
            }
        }
    }
}
