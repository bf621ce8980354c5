//! `GET /devops/backup` (DevOps users only, see `devops.rs`): streams a consistent backup of
//! the running store (format: `store::backup`) while the gateway goes on serving. One backup
//! at a time; a thread reads the snapshot and hands ~64 KiB frames to the response through a
//! small bounded channel, so memory stays bounded whatever the store's size.

use crate::error::DittoError;
use crate::http::body::Body;
use crate::store::{backup, Store};
use bytes::Bytes;
use futures_lite::future;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use hyper::Response;
use std::convert::Infallible;
use std::io::{Error, ErrorKind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Frames buffered between the backup thread and the connection (~64 KiB each).
const BODY_FRAMES: usize = 4;
/// A client that takes nothing for this long loses its backup (it holds a snapshot).
const SEND_STALL: Duration = Duration::from_secs(60);
/// Media type of a backup.
pub const MEDIA_TYPE: &str = "application/vnd.edgetwin.backup";

/// Set while a backup is being sent.
static RUNNING: AtomicBool = AtomicBool::new(false);

/// Clears `RUNNING` when dropped.
struct Running;

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.store(false, Ordering::Release);
    }
}

type Tx = async_channel::Sender<Result<Frame<Bytes>, Infallible>>;

/// What the backup writes into: the response body.
struct ToBody(Tx);

impl std::io::Write for ToBody {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let frame = Frame::data(Bytes::copy_from_slice(buf));
        let sent = async {
            (self.0.send(Ok(frame)).await)
                .map_err(|_| Error::new(ErrorKind::BrokenPipe, "the client went away"))
        };
        let stalled = async {
            smol::Timer::after(SEND_STALL).await;
            Err(Error::new(
                ErrorKind::TimedOut,
                "the client took nothing for 60 s",
            ))
        };
        smol::block_on(future::or(sent, stalled)).map(|()| buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts a backup of `store` and answers with its stream (the error if none can start).
pub async fn stream(store: &Store) -> Result<Response<Body>, DittoError> {
    if RUNNING.swap(true, Ordering::AcqRel) {
        return Err(DittoError::new(
            503,
            "gateway:backup.running",
            "Another backup is being made.",
        )
        .describe("Try again once it is done.")
        .retry_after(10));
    }
    let running = Running;
    let unavailable = |e: crate::store::StoreError| {
        DittoError::new(503, "gateway:backup.unavailable", format!("No backup: {e}"))
    };
    let s = store.clone();
    let snap = smol::unblock(move || s.snapshot())
        .await
        .map_err(unavailable)?;
    let (tx, rx) = async_channel::bounded(BODY_FRAMES);
    let created = crate::clock::now_millis().max(0) as u64;
    std::thread::Builder::new()
        .name("edgetwin-backup".into())
        .spawn(move || {
            let _running = running;
            match backup::write(&snap, created, &mut ToBody(tx)) {
                Ok(c) => tracing::info!(
                    entries = c.total(),
                    things = c.of(crate::store::Tree::Things),
                    seq = c.seq,
                    "backup sent"
                ),
                Err(e) => tracing::warn!(error = %e, "backup ended incomplete"),
            }
        })
        .map_err(|e| unavailable(crate::store::StoreError::from_io("backup thread", e)))?;
    let mut r = Response::new(StreamBody::new(rx).boxed());
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"edgetwin-{created}.backup\""
    )) {
        h.insert(CONTENT_DISPOSITION, v);
    }
    Ok(r)
}
