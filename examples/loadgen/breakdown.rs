//! `loadgen footprint --breakdown true`: what a data directory holds, per tree and per kind of
//! history key (count, key bytes, value bytes as stored), and the store's overhead per entry
//! (allocated file bytes minus key and value bytes, over all entries); for redb also its own
//! page statistics per table (pages, bytes stored, room left in leaves) and the free pages.

use edgetwin::store::{Backend, RedbBackend, SledBackend, Tree};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Default)]
struct Sum {
    n: u64,
    key: u64,
    value: u64,
}

/// The label of a key of `tree` (history: its tag and kind bytes).
fn label(tree: Tree, k: &[u8]) -> String {
    match tree {
        Tree::History => {
            let what = match k.first() {
                Some(b'e') => "event",
                Some(b's') => "snapshot",
                Some(b't') => "time index",
                Some(b'c') => "counts",
                Some(b'h') => "deferred headers",
                _ => "other",
            };
            let kind = match (k.first(), k.get(1), k.get(9)) {
                (Some(b't'), _, Some(b't')) | (Some(b'e' | b's' | b'h'), Some(b't'), _) => " thing",
                (Some(b't'), _, Some(b'p')) | (Some(b'e' | b's' | b'h'), Some(b'p'), _) => {
                    " policy"
                }
                _ => "",
            };
            format!("history {what}{kind}")
        }
        t => format!("{t:?}"),
    }
}

/// Prints the breakdown of the redb or sled store in `data`, per twin (`twins`).
pub fn print(data: &Path, store: &str, twins: u32, alloc: u64) -> Result<(), String> {
    // the backend itself: keys and values exactly as stored
    let s: Box<dyn Backend> = match store {
        "sled" => Box::new(SledBackend::open(data, 1 << 20).map_err(|e| e.0)?),
        _ => Box::new(RedbBackend::open(data, 1 << 20).map_err(|e| e.0)?),
    };
    let mut sums: BTreeMap<String, Sum> = BTreeMap::new();
    for tree in Tree::ALL {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = s.scan(tree, b"", after.as_deref(), 4096).map_err(|e| e.0)?;
            let full = page.len() == 4096;
            for (k, v) in &page {
                let stored = v.len();
                let e = sums.entry(label(tree, k)).or_default();
                e.n += 1;
                e.key += k.len() as u64;
                e.value += stored as u64;
            }
            match page.into_iter().last() {
                Some((k, _)) if full => after = Some(k),
                _ => break,
            }
        }
    }
    drop(s);
    let per = |x: u64| x as f64 / twins.max(1) as f64;
    let (mut n, mut bytes) = (0, 0);
    println!("  breakdown per twin (entries, key B, value B as stored):");
    for (l, e) in &sums {
        println!(
            "    {l:<28} {:>8} entries {:>6.2}/twin  key {:>6.1} B/twin  value {:>6.1} B/twin  (avg key {:.1}, value {:.1})",
            e.n,
            per(e.n),
            per(e.key),
            per(e.value),
            e.key as f64 / e.n.max(1) as f64,
            e.value as f64 / e.n.max(1) as f64
        );
        n += e.n;
        bytes += e.key + e.value;
    }
    if store != "sled" {
        redb_pages(data, twins)?;
    }
    let overhead = alloc.saturating_sub(bytes);
    println!(
        "    total {n} entries, {:.1} B/twin of keys+values; allocated {:.1} B/twin; overhead {:.1} B per entry",
        per(bytes),
        per(alloc),
        overhead as f64 / n.max(1) as f64
    );
    Ok(())
}

/// redb's own view of the file, per twin: per table its leaf and branch pages, bytes stored in
/// leaves and the room left in them; the file's allocated and free pages (freed by checkpoints'
/// copy-on-write, not yet reused).
fn redb_pages(data: &Path, twins: u32) -> Result<(), String> {
    use redb::{ReadableDatabase, ReadableTableMetadata, TableDefinition};
    let per = |x: u64| x as f64 / twins.max(1) as f64;
    let path = data.join(edgetwin::store::REDB_FILE);
    let db = redb::Database::open(&path).map_err(|e| e.to_string())?;
    let txn = db.begin_read().map_err(|e| e.to_string())?;
    let mut table_pages = 0;
    for name in ["things", "policies", "index", "history", "meta"] {
        let def: TableDefinition<&[u8], &[u8]> = TableDefinition::new(name);
        let Ok(t) = txn.open_table(def) else { continue };
        let s = t.stats().map_err(|e| e.to_string())?;
        table_pages += s.leaf_pages() + s.branch_pages();
        println!(
            "    redb {name:<9} leaf pages {:>6} branch pages {:>5}  {:>6.1} B/twin of pages: stored {:>6.1}, metadata {:>5.1}, room {:>6.1}",
            s.leaf_pages(),
            s.branch_pages(),
            per((s.leaf_pages() + s.branch_pages()) * 4096),
            per(s.stored_bytes()),
            per(s.metadata_bytes()),
            per(s.fragmented_bytes()),
        );
    }
    drop(txn);
    let w = db.begin_write().map_err(|e| e.to_string())?;
    let s = w.stats().map_err(|e| e.to_string())?;
    let page = s.page_size() as u64;
    println!(
        "    redb file: {} pages allocated ({:.1} B/twin), {} in tables, page {page} B; fragmented incl. free pages {:.1} B/twin",
        s.allocated_pages(),
        per(s.allocated_pages() * page),
        table_pages,
        per(s.fragmented_bytes()),
    );
    w.abort().map_err(|e| e.to_string())?;
    Ok(())
}
