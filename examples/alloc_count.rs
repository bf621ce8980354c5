//! Allocations per twin command, counted in process: a hub over a real store in a temp dir (as
//! `edgetwin run` has it: redb, history on), 100 twins, then `modify` of one attribute per
//! twin through the protocol door (`Hub::handle_protocol`, the WS path without the socket) and
//! its answer made into the text a binding sends. Prints allocations and bytes per command.
//! Usage: cargo run --release --example alloc_count [-- COMMANDS]   (issue 21)

#[path = "support/inproc.rs"]
mod inproc;

use edgetwin::store::BackendKind;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The system allocator, counting allocations (and reallocations) and bytes.
struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(l.size() as u64, Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(new as u64, Relaxed);
        System.realloc(p, l, new)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const TWINS: usize = 100;

fn main() -> Result<(), String> {
    let n: usize = match std::env::args().nth(1) {
        Some(a) => a.parse().map_err(|e| format!("COMMANDS: {e}"))?,
        None => 20_000,
    };
    let g = inproc::InProc::open(BackendKind::Redb, None)?;
    let send = |text: String| g.send(&text);
    for t in 0..TWINS {
        send(format!(
            r#"{{"topic":"bench/t{t}/things/twin/commands/create","headers":{{"correlation-id":"c{t}","requested-acks":[]}},"path":"/","value":{{"attributes":{{"a0":"{}","a1":1,"a2":true,"loc":{{"x":1,"y":2}}}},"features":{{"f":{{"properties":{{"v":0,"w":"z"}}}}}}}}}}"#,
            "x".repeat(16)
        ))?;
    }
    let text = |i: usize| {
        format!(
            r#"{{"topic":"bench/t{}/things/twin/commands/modify","headers":{{"correlation-id":"m{i}","requested-acks":[]}},"path":"/attributes/a1","value":{i}}}"#,
            i % TWINS
        )
    };
    // warm the caches, then count (the texts are made before counting starts)
    for i in 0..TWINS * 10 {
        send(text(i))?;
    }
    let texts: Vec<String> = (0..n).map(|i| text(TWINS * 10 + i)).collect();
    let (a0, b0) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
    for t in texts {
        send(t)?;
    }
    let (a, b) = (ALLOCS.load(Relaxed) - a0, BYTES.load(Relaxed) - b0);
    println!(
        "RESULT commands={n} allocs_per_cmd={:.1} bytes_per_cmd={:.0} (all threads: the store's writer included)",
        a as f64 / n as f64,
        b as f64 / n as f64
    );
    g.store.close().map_err(|e| e.to_string())?;
    Ok(())
}
