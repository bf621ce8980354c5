//! The abusive part of the soak load, one thread, one action every 2 s in turn: WS subscribers
//! that stop reading and SSE streams nobody reads (at most 6, each held 10 minutes, then
//! dropped; the gateway closes them first: WS after the idle timeout, as they send no pongs,
//! SSE once the socket buffers are full and the send timeout passed), reconnect churn (connect, one command, leave politely or abruptly),
//! and bad frames (bad UTF-8 -> 1007, a 2 MiB frame -> 1009, broken JSON, a partial frame).

use crate::load::{request, sse_open, ws_connect, Ctx};
use crate::raw_ws::{close_code_within, frame, raw_session, send_frame};
use serde_json::json;
use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most stalled clients held at once.
const MAX_STALLED: usize = 6;
const HOLD: Duration = Duration::from_secs(600);

fn stalled_ws(ctx: &Ctx) -> TcpStream {
    let mut s = raw_session(ctx.addr);
    send_frame(&mut s, 0x1, b"START-SEND-EVENTS?namespaces=soak");
    s
}

fn churn(ctx: &Ctx) {
    smol::block_on(async {
        for i in 0..10 {
            let Ok(mut ws) = ws_connect(ctx.addr).await else {
                Ctx::count(&ctx.n.errors);
                continue;
            };
            let cmd = json!({"topic": "soak/t1/things/twin/commands/retrieve",
                "headers": {"correlation-id": format!("churn-{i}")}, "path": "/"});
            if request(&mut ws, cmd).await.is_err() {
                Ctx::count(&ctx.n.errors);
            }
            if i % 2 == 0 {
                let _ = ws.close(None).await;
            } // else dropped without a Close frame
        }
    });
}

fn bad_frames(ctx: &Ctx) {
    let wait = Duration::from_secs(10);
    let mut s = raw_session(ctx.addr);
    send_frame(&mut s, 0x1, &[b'{', 0xff, 0xfe, b'}']);
    if close_code_within(&mut s, wait) != Some(1007) {
        Ctx::count(&ctx.n.errors);
    }
    let mut s = raw_session(ctx.addr);
    send_frame(&mut s, 0x1, &vec![b'x'; 2 << 20]);
    if close_code_within(&mut s, wait) != Some(1009) {
        Ctx::count(&ctx.n.errors);
    }
    let mut s = raw_session(ctx.addr);
    send_frame(&mut s, 0x1, b"{\"topic\": broken");
    let f = frame(0x1, &[b'x'; 100]);
    let _ = s.write_all(&f[..30]); // then dropped mid-frame
}

/// Runs the abuse rounds until `stop`.
pub fn run(ctx: Arc<Ctx>) {
    let mut held: Vec<(Instant, TcpStream)> = Vec::new();
    let mut round = 0u64;
    while ctx.running() {
        round += 1;
        held.retain(|(at, _)| at.elapsed() < HOLD);
        let action = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match round % 4 {
            0 if held.len() < MAX_STALLED => held.push((Instant::now(), stalled_ws(&ctx))),
            1 if held.len() < MAX_STALLED => {
                // with the twin's attributes, so that its socket buffers (several MB on
                // loopback) fill within minutes and the send timeout ends it
                let path = "/api/2/things?namespaces=soak&extraFields=attributes";
                match sse_open(ctx.addr, path) {
                    Some(s) => held.push((Instant::now(), s)),
                    None => Ctx::count(&ctx.n.errors),
                }
            }
            2 => churn(&ctx),
            3 => bad_frames(&ctx),
            _ => {}
        }));
        match action {
            Ok(()) => Ctx::count(&ctx.n.abuse),
            Err(_) => Ctx::count(&ctx.n.errors),
        }
        ctx.pause(Duration::from_secs(2));
    }
}
