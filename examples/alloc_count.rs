//! Allocations per twin command, counted in process: a hub over a real store in a temp dir (as
//! `edgetwin run` has it: redb, history on), 100 twins, then `modify` of one attribute per
//! twin through the protocol door (`Hub::handle_protocol`, the WS path without the socket) and
//! its answer made into the text a binding sends. Prints allocations and bytes per command.
//! Usage: cargo run --release --example alloc_count [-- COMMANDS]   (issue 21)
//! `ALLOC_SITES=1 cargo run --example alloc_count -- 200` (a dev build: line tables) also prints
//! where the counted allocations come from: each one's backtrace, grouped by its first frames in
//! edgetwin, most frequent first (`ALLOC_SITES=N`: N frames per group, default 1).

#[path = "support/inproc.rs"]
mod inproc;

use edgetwin::store::BackendKind;
use std::alloc::{GlobalAlloc, Layout, System};
use std::backtrace::Backtrace;
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// The system allocator, counting allocations (and reallocations) and bytes.
struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
/// While set (ALLOC_SITES, counting), every allocation's backtrace is kept in SITES.
static TRACE: AtomicBool = AtomicBool::new(false);
static SITES: Mutex<Vec<Backtrace>> = Mutex::new(Vec::new());
thread_local! {
    /// This thread is inside `trace` (its own allocations are not traced).
    static TRACING: Cell<bool> = const { Cell::new(false) };
}

fn trace() {
    if !TRACE.load(Relaxed) || TRACING.with(|t| t.replace(true)) {
        return;
    }
    let bt = Backtrace::force_capture();
    SITES.lock().unwrap_or_else(|e| e.into_inner()).push(bt);
    TRACING.with(|t| t.set(false));
}

/// The kept backtraces grouped by their first `depth` frames in edgetwin, most frequent first.
fn print_sites(depth: usize, commands: usize) {
    let sites = std::mem::take(&mut *SITES.lock().unwrap_or_else(|e| e.into_inner()));
    let mut groups: HashMap<String, usize> = HashMap::new();
    for bt in &sites {
        let text = bt.to_string();
        let mut frames = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("at "))
            .map(|l| l.split_once(": ").map_or(l, |(_, f)| f).trim().to_owned())
            .skip_while(|f| !f.starts_with("edgetwin::") && !f.starts_with("<edgetwin::"))
            .take(depth)
            .collect::<Vec<_>>();
        if frames.is_empty() {
            frames.push(text.lines().nth(8).unwrap_or("?").trim().to_owned());
        }
        *groups.entry(frames.join(" <- ")).or_default() += 1;
    }
    let mut groups: Vec<_> = groups.into_iter().collect();
    groups.sort_by_key(|g| std::cmp::Reverse(g.1));
    for (site, n) in groups {
        println!("SITE {:6.2} per cmd  {site}", n as f64 / commands as f64);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(l.size() as u64, Relaxed);
        trace();
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(new as u64, Relaxed);
        trace();
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
    let sites = std::env::var("ALLOC_SITES")
        .ok()
        .map(|d| d.parse().unwrap_or(1));
    let (a0, b0) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
    TRACE.store(sites.is_some(), Relaxed);
    for t in texts {
        send(t)?;
    }
    TRACE.store(false, Relaxed);
    let (a, b) = (ALLOCS.load(Relaxed) - a0, BYTES.load(Relaxed) - b0);
    if let Some(depth) = sites {
        print_sites(depth, n);
    }
    println!(
        "RESULT commands={n} allocs_per_cmd={:.1} bytes_per_cmd={:.0} (all threads: the store's writer included)",
        a as f64 / n as f64,
        b as f64 / n as f64
    );
    g.store.close().map_err(|e| e.to_string())?;
    Ok(())
}
