//! redb's file compacted by itself at a clean shutdown, bounded. B-tree leaves filled by inserts
//! in random key order (thing IDs, the search index) are 53-63 % full, how full varying with the
//! order concurrent writes arrived in; checkpoints' copy-on-write leaves freed pages behind.
//! When the file grew by more than `[store] compact_growth_percent` (at least `MIN_GROWTH`)
//! since the last compaction, whose size the file records in a table of its own, each table is
//! rewritten in key order (packed leaves) and redb's compaction moves the pages down and cuts
//! the file's end (docs/storage.md "Compaction").

use std::ops::Bound;
use std::path::Path;
use std::time::Instant;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, TableHandle};

use super::backend::StoreError;

/// The file's own record: allocated bytes right after the last compaction.
const MARK: TableDefinition<&str, u64> = TableDefinition::new("edgetwin_compaction");
const MARK_KEY: &str = "allocated_after";

/// Growth below this never compacts (a small store is cheap to keep as it is).
pub const MIN_GROWTH: u64 = 4 << 20;

/// Default of `[store] compact_growth_percent`.
pub const DEFAULT_GROWTH_PERCENT: u64 = 25;

/// What a compaction did (logged; returned for tests and benchmarks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compacted {
    /// allocated bytes of the file before and after
    pub before: u64,
    /// allocated bytes after
    pub after: u64,
    /// bytes this process wrote meanwhile (`/proc/self/io` `write_bytes`; `None` elsewhere)
    pub written: Option<u64>,
}

/// Bytes of `path` allocated on the disk (blocks; redb's file is sparse).
pub fn allocated(path: &Path) -> u64 {
    match std::fs::metadata(path) {
        #[cfg(unix)]
        Ok(m) => std::os::unix::fs::MetadataExt::blocks(&m) * 512,
        #[cfg(not(unix))]
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

/// This process's bytes written to storage so far (Linux), for the log line.
fn written_so_far() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .and_then(|v| v.trim().parse().ok())
}

/// Allocated bytes recorded after the last compaction (0 if never: a file written before this
/// record existed is compacted once if it is big enough).
fn mark(db: &Database) -> Result<u64, StoreError> {
    let txn = db.begin_read()?;
    let Ok(t) = txn.open_table(MARK) else {
        return Ok(0);
    };
    Ok(t.get(MARK_KEY)?.map(|v| v.value()).unwrap_or(0))
}

fn set_mark(db: &Database, bytes: u64) -> Result<(), StoreError> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)
        .map_err(|e| StoreError(format!("redb: {e}")))?;
    // records the allocator state, as every checkpoint does (no full repair after a crash)
    txn.set_quick_repair(true);
    txn.open_table(MARK)?.insert(MARK_KEY, bytes)?;
    txn.commit()?;
    Ok(())
}

/// Whether a file of `allocated` bytes, `last` after the last compaction, is compacted.
pub fn due(allocated: u64, last: u64, percent: u64) -> bool {
    percent > 0 && allocated > last + (last.saturating_mul(percent) / 100).max(MIN_GROWTH)
}

/// Entries copied per write transaction while repacking (bounds its memory: ~1 MiB of pages).
const REPACK_CHUNK: usize = 16_384;

type Table = TableDefinition<'static, &'static [u8], &'static [u8]>;

/// Rewrites `table` in key order into a new table and swaps it in: redb starts a new leaf when
/// an insert lands after every key, so the copy's leaves are packed. One commit per
/// `REPACK_CHUNK` entries; a crash part-way leaves the copy beside the table (never read), and
/// the next repack drops it first. The swap is one commit.
fn repack(db: &Database, table: Table) -> Result<(), StoreError> {
    let name = format!("{}.repack", table.name());
    let copy: TableDefinition<&[u8], &[u8]> = TableDefinition::new(&name);
    let txn = db.begin_write()?;
    txn.delete_table(copy)?;
    txn.commit()?;
    let mut after: Option<Vec<u8>> = None;
    loop {
        let txn = db.begin_write()?;
        let mut last = None;
        {
            let src = txn.open_table(table)?;
            let mut dst = txn.open_table(copy)?;
            let lower = match &after {
                Some(a) => Bound::Excluded(a.as_slice()),
                None => Bound::Unbounded,
            };
            let mut n = 0;
            for item in src.range::<&[u8]>((lower, Bound::Unbounded))? {
                let (k, v) = item?;
                dst.insert(k.value(), v.value())?;
                n += 1;
                if n == REPACK_CHUNK {
                    last = Some(k.value().to_vec());
                    break;
                }
            }
        }
        txn.commit()?;
        after = last;
        if after.is_none() {
            break;
        }
    }
    let txn = db.begin_write()?;
    txn.delete_table(table)?;
    txn.rename_table(copy, table)?;
    txn.commit()?;
    Ok(())
}

/// Compacts `db` (file `path`, tables `tables`) if it is due. Fails while a read transaction is
/// open (nothing changed then); any other error leaves the file as redb's last commit left it
/// (each step is a commit; a table is swapped for its copy in one).
pub fn if_due(
    db: &mut Database,
    path: &Path,
    percent: u64,
    tables: &[Table],
) -> Result<Option<Compacted>, StoreError> {
    let before = allocated(path);
    let last = mark(db)?;
    if !due(before, last, percent) {
        return Ok(None);
    }
    let (t, w0) = (Instant::now(), written_so_far());
    for table in tables {
        repack(db, *table)?;
    }
    db.compact()
        .map_err(|e| StoreError(format!("redb: compaction: {e}")))?;
    let after = allocated(path);
    set_mark(db, after)?;
    let written = w0.and_then(|w0| Some(written_so_far()?.saturating_sub(w0)));
    let done = Compacted {
        before,
        after,
        written,
    };
    tracing::info!(
        before_mib = before >> 20,
        after_mib = after >> 20,
        last_mib = last >> 20,
        written_mib = written.map(|w| w >> 20),
        ms = t.elapsed().as_millis() as u64,
        "redb file compacted (it grew by more than compact_growth_percent since the last one)"
    );
    Ok(Some(done))
}
