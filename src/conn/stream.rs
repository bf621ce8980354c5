//! The stream of an admitted connection: a TCP socket that holds its `Slot`, and whose writes
//! fail with `TimedOut` once they made no progress for `limits.send_timeout_secs` (a client that
//! stopped reading: its WS session, SSE stream or HTTP response ends and the socket is freed).
//! `finish` ends a socket politely: FIN, then read what the peer still sends, bounded.

use super::Slot;
use futures_lite::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use smol::net::{Shutdown, TcpStream};
use smol::Timer;
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// An admitted connection (HTTP, then possibly a WebSocket).
#[derive(Debug)]
pub struct Conn {
    tcp: TcpStream,
    slot: Slot,
    send_timeout: Duration,
    /// armed when a write found the socket full; cleared by any write that makes progress
    /// (boxed: allocated only while stalled, and it keeps `Conn` small)
    stall: Option<Box<Timer>>,
}

impl Conn {
    /// Wraps an accepted socket with its slot.
    pub fn new(tcp: TcpStream, slot: Slot, send_timeout: Duration) -> Conn {
        Conn {
            tcp,
            slot,
            send_timeout,
            stall: None,
        }
    }

    /// The socket (a clone shares it: for `finish` after the protocol is done with it).
    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// The connection's slot (its tracker counts timeouts).
    pub fn slot(&self) -> &Slot {
        &self.slot
    }

    /// Passes a ready write through (progress: disarms the stall timer); on `Pending` arms the
    /// timer and fails the write once it fired.
    fn watch<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if r.is_ready() {
            self.stall = None;
            return r;
        }
        let timer = self
            .stall
            .get_or_insert_with(|| Box::new(Timer::after(self.send_timeout)));
        match Pin::new(timer.as_mut()).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(_) => {
                self.stall = None;
                self.slot.tracker().count_send_timeout();
                tracing::info!(
                    secs = self.send_timeout.as_secs(),
                    peer = ?self.tcp.peer_addr().ok(),
                    "dropping a connection whose client stopped reading (limits.send_timeout_secs)"
                );
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no write progress within limits.send_timeout_secs",
                )))
            }
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.tcp).poll_write(cx, buf);
        self.watch(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        self.watch(cx, r)
    }

    /// A TCP socket has nothing to flush (always ready): not a sign of progress, so the stall
    /// timer is left alone.
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_close(cx)
    }
}

/// Ends a socket whose last bytes were written: sends FIN, then reads and drops whatever the
/// peer still sends (e.g. its Close frame reply, the rest of a request) until it closes its
/// side or `within` passed. Closing with unread bytes would send a TCP reset, and a reset can
/// destroy our last frame before the peer read it (it would see 1006 instead of our code).
pub async fn finish(tcp: &TcpStream, within: Duration) {
    let _ = tcp.shutdown(Shutdown::Write);
    let drain = async {
        let mut buf = [0u8; 4096];
        let mut r = tcp.clone();
        while let Ok(n) = r.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    };
    futures_lite::future::or(drain, async {
        Timer::after(within).await;
    })
    .await;
}
