//! The baseline: a raw WebSocket echo server on edgetwin's own stack (smol executor on the same
//! number of threads, async-tungstenite, TCP_NODELAY). It answers every text frame with itself,
//! batching the answers to all frames already read into one flush: the best this stack does
//! with no protocol work at all.

use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use async_tungstenite::tungstenite::Message;
use futures_lite::{future, StreamExt};
use futures_util::SinkExt;
use smol::net::{TcpListener, TcpStream};
use smol::Executor;
use std::io::Write;
use std::sync::Arc;

async fn session(tcp: TcpStream) -> Result<(), String> {
    let _ = tcp.set_nodelay(true);
    // The same frame limits edgetwin configures (4 x 256 KiB).
    let mut cfg = WebSocketConfig::default();
    cfg.max_message_size = Some(1024 * 1024);
    cfg.max_frame_size = Some(1024 * 1024);
    let mut ws = async_tungstenite::accept_async_with_config(tcp, Some(cfg))
        .await
        .map_err(|e| e.to_string())?;
    while let Some(msg) = ws.next().await {
        let mut msg = msg.map_err(|e| e.to_string())?;
        loop {
            match msg {
                Message::Text(_) | Message::Binary(_) => {
                    ws.feed(msg).await.map_err(|e| e.to_string())?
                }
                Message::Close(_) => return Ok(()),
                _ => {}
            }
            // Everything already readable goes into the same flush.
            match future::poll_once(ws.next()).await {
                Some(Some(m)) => msg = m.map_err(|e| e.to_string())?,
                Some(None) => return Ok(()),
                None => break,
            }
        }
        ws.flush().await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Runs the echo server until killed; prints `echo listening on ADDR` first.
pub fn run(threads: usize) -> Result<(), String> {
    let ex = Arc::new(Executor::new());
    for _ in 1..threads.max(1) {
        let ex = ex.clone();
        std::thread::spawn(move || smol::block_on(ex.run(future::pending::<()>())));
    }
    smol::block_on(ex.run(async {
        let l = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        println!(
            "echo listening on {}",
            l.local_addr().map_err(|e| e.to_string())?
        );
        let _ = std::io::stdout().flush();
        loop {
            let (tcp, _) = l.accept().await.map_err(|e| e.to_string())?;
            ex.spawn(async move {
                let _ = session(tcp).await;
            })
            .detach();
        }
    }))
}
