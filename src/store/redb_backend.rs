//! redb 4.x backend: one file `<dir>/edgetwin.redb`, one table per `Tree` (`&[u8] -> &[u8]`), one
//! write transaction with `Durability::Immediate` per checkpoint (atomic, fsynced), reads through
//! a fresh MVCC read transaction each call (one held for a `View`, its tables opened once).
//! Opens read-only on a full disk; reopens after a failed write (redb refuses all I/O after one).

use std::cell::OnceCell;
use std::ops::Bound;
use std::path::Path;

use std::sync::{Mutex, RwLock};

use redb::{
    Database, Durability, ReadOnlyDatabase, ReadableDatabase, ReadableTable, TableDefinition,
};

use super::backend::{scan_start, sync_dir, Backend, Entries, Op, OpRef, StoreError, Tree, View};
use super::compact::{self, Compacted};

/// File name of the database inside the data directory.
pub const REDB_FILE: &str = "edgetwin.redb";

const THINGS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("things");
const POLICIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("policies");
const INDEX: TableDefinition<&[u8], &[u8]> = TableDefinition::new("index");
const HISTORY: TableDefinition<&[u8], &[u8]> = TableDefinition::new("history");
const META: TableDefinition<&[u8], &[u8]> = TableDefinition::new("meta");
const TABLES: [TableDefinition<&[u8], &[u8]>; 5] = [THINGS, POLICIES, INDEX, HISTORY, META];

fn table(tree: Tree) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
    match tree {
        Tree::Things => THINGS,
        Tree::Policies => POLICIES,
        Tree::Index => INDEX,
        Tree::History => HISTORY,
        Tree::Meta => META,
    }
}

pub struct RedbBackend {
    path: std::path::PathBuf,
    cache: usize,
    /// `[store] compact_growth_percent` (0: never compact)
    growth_percent: u64,
    /// what the compaction at shutdown did, if one ran
    compacted: Mutex<Option<Compacted>>,
    /// `None` only between a failed reopen and the next one (reads fail then)
    db: RwLock<Option<Db>>,
}

enum Db {
    Rw(Database),
    /// opened on a full disk: reads only, until `reopen` succeeds
    Ro(ReadOnlyDatabase),
}

impl Db {
    fn begin_read(&self) -> Result<redb::ReadTransaction, StoreError> {
        Ok(match self {
            Db::Rw(d) => d.begin_read()?,
            Db::Ro(d) => d.begin_read()?,
        })
    }
}

/// Opens `path` read-write (creating it and its tables), or read-only if that fails for lack
/// of space and the file exists and was left in a consistent state (every checkpoint records
/// redb's allocator state, so that holds after a crash too).
fn open_db(path: &Path, cache: usize) -> Result<Db, StoreError> {
    let rw = Database::builder()
        .set_cache_size(cache)
        .create(path)
        .map_err(StoreError::from)
        .and_then(|db| {
            ensure_tables(&db)?;
            Ok(db)
        });
    match rw {
        Ok(db) => Ok(Db::Rw(db)),
        Err(e) if e.is_no_space() && path.exists() => {
            let ro = Database::builder()
                .set_cache_size(cache)
                .open_read_only(path)
                .map_err(|ro| StoreError(format!("{e}; read-only: redb: {ro}")))?;
            tracing::warn!(error = %e, "redb opened read-only: the disk is full");
            Ok(Db::Ro(ro))
        }
        Err(e) => Err(e),
    }
}

/// Creates the tables that do not exist yet (a commit only then), so reads never see "table
/// does not exist".
fn ensure_tables(db: &Database) -> Result<(), StoreError> {
    let missing = {
        let txn = db.begin_read()?;
        Tree::ALL
            .into_iter()
            .any(|t| txn.open_table(table(t)).is_err())
    };
    if missing {
        let txn = db.begin_write()?;
        for tree in Tree::ALL {
            txn.open_table(table(tree))?;
        }
        txn.commit()?;
    }
    Ok(())
}

impl RedbBackend {
    /// Opens (or creates) `<dir>/edgetwin.redb`; read-only on a full disk (see `open_db`).
    /// redb repairs an uncleanly closed file here (quickly: checkpoints record its allocator).
    /// Never compacts (tools, tests); the store opens with [`RedbBackend::open_compacting`].
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<RedbBackend, StoreError> {
        Self::open_compacting(dir, cache_bytes, 0)
    }

    /// [`RedbBackend::open`], and at the clean shutdown the file is compacted if it grew by
    /// more than `growth_percent` (0: never) since its last compaction (`store::compact`).
    pub fn open_compacting(
        dir: &Path,
        cache_bytes: u64,
        growth_percent: u64,
    ) -> Result<RedbBackend, StoreError> {
        let cache = usize::try_from(cache_bytes).unwrap_or(usize::MAX);
        let path = dir.join(REDB_FILE);
        let db = open_db(&path, cache)?;
        if matches!(db, Db::Rw(_)) {
            sync_dir(dir)?;
        }
        Ok(RedbBackend {
            path,
            cache,
            growth_percent,
            compacted: Mutex::new(None),
            db: RwLock::new(Some(db)),
        })
    }

    /// What the compaction at shutdown did, if one ran.
    pub fn compacted(&self) -> Option<Compacted> {
        *self.compacted.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn db(&self) -> std::sync::RwLockReadGuard<'_, Option<Db>> {
        self.db.read().unwrap_or_else(|e| e.into_inner())
    }

    fn read_txn(&self) -> Result<redb::ReadTransaction, StoreError> {
        match &*self.db() {
            Some(db) => db.begin_read(),
            None => Err(StoreError::new(
                "redb: not open (reopen after a full disk failed)",
            )),
        }
    }

    /// One durable write transaction of `ops` (nothing if there are none).
    fn write<'a>(&self, ops: impl Iterator<Item = OpRef<'a>>) -> Result<(), StoreError> {
        let mut ops = ops.peekable();
        if ops.peek().is_none() {
            return Ok(());
        }
        let guard = self.db();
        let Some(Db::Rw(db)) = &*guard else {
            return Err(StoreError::new("redb: read-only (opened on a full disk)"));
        };
        let mut txn = db.begin_write()?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| StoreError(format!("redb: {e}")))?;
        // records the allocator state: the next open after a crash needs no full repair (which
        // reads every page) and can fall back to read-only on a full disk
        txn.set_quick_repair(true);
        {
            // Open each touched table once; ops stay in order within a table, and tables are
            // disjoint, so per-table application equals sequential application.
            let mut tables: [Option<redb::Table<&[u8], &[u8]>>; 5] = Default::default();
            for op in ops {
                let slot = &mut tables[op.tree.index()];
                if slot.is_none() {
                    *slot = Some(txn.open_table(table(op.tree))?);
                }
                if let Some(t) = slot.as_mut() {
                    match op.value {
                        Some(v) => {
                            t.insert(op.key, v)?;
                        }
                        None => {
                            t.remove(op.key)?;
                        }
                    }
                }
            }
        }
        txn.commit()?;
        Ok(())
    }
}

/// The entries of a table with `prefix` after `after`, at most `limit`, to `f` (borrowed).
fn each_in<T: ReadableTable<&'static [u8], &'static [u8]>>(
    t: &T,
    prefix: &[u8],
    after: Option<&[u8]>,
    limit: usize,
    f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
) -> Result<(), StoreError> {
    let (start, exclusive) = scan_start(prefix, after);
    let lower = if exclusive {
        Bound::Excluded(start)
    } else {
        Bound::Included(start)
    };
    for (n, item) in t.range::<&[u8]>((lower, Bound::Unbounded))?.enumerate() {
        let (k, v) = item?;
        let k = k.value();
        if !k.starts_with(prefix) || n >= limit {
            break;
        }
        if !f(k, v.value()) {
            break;
        }
    }
    Ok(())
}

type ReadTable = redb::ReadOnlyTable<&'static [u8], &'static [u8]>;

/// A point-in-time view: one read transaction, each table opened once (on first use).
struct RedbView {
    txn: redb::ReadTransaction,
    tables: [OnceCell<ReadTable>; 5],
}

impl RedbView {
    fn table(&self, tree: Tree) -> Result<&ReadTable, StoreError> {
        let cell = &self.tables[tree.index()];
        if let Some(t) = cell.get() {
            return Ok(t);
        }
        let t = self.txn.open_table(table(tree))?;
        Ok(cell.get_or_init(move || t))
    }
}

impl View for RedbView {
    fn each(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        each_in(self.table(tree)?, prefix, after, limit, f)
    }

    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.table(tree)?.get(key)?.map(|v| v.value().to_vec()))
    }
}

impl Backend for RedbBackend {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.read_txn()?;
        let t = txn.open_table(table(tree))?;
        Ok(t.get(key)?.map(|v| v.value().to_vec()))
    }

    fn scan(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Entries, StoreError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let txn = self.read_txn()?;
        each_in(
            &txn.open_table(table(tree))?,
            prefix,
            after,
            limit,
            &mut |k, v| {
                out.push((k.to_vec(), v.to_vec()));
                true
            },
        )?;
        Ok(out)
    }

    /// A read transaction: redb keeps what it sees until it is dropped (MVCC).
    fn view(&self) -> Result<Option<Box<dyn View>>, StoreError> {
        Ok(Some(Box::new(RedbView {
            txn: self.read_txn()?,
            tables: Default::default(),
        })))
    }

    fn commit(&self, ops: &[Op]) -> Result<(), StoreError> {
        self.write(ops.iter().map(Op::as_ref))
    }

    fn commit_refs(&self, ops: &[OpRef<'_>], _covered: bool) -> Result<(), StoreError> {
        self.write(ops.iter().copied())
    }

    /// Compacts the file if it is due (`store::compact`: here, as the process ends, the pages
    /// a compaction reads and moves cost no memory the gateway keeps; readers still running
    /// make it skip this time), then an empty commit with quick-repair on records redb's
    /// allocator state, so the next open loads it instead of a full repair (which reads and
    /// checksums every page, filling the page cache: +8 MiB idle RSS at 10k twins). redb
    /// records it itself when the `Database` is dropped, but edgetwin's process may end
    /// without dropping it.
    fn shut_down(&self) -> Result<(), StoreError> {
        let mut slot = self.db.write().unwrap_or_else(|e| e.into_inner());
        if let Some(Db::Rw(db)) = slot.as_mut() {
            match compact::if_due(db, &self.path, self.growth_percent, &TABLES) {
                Ok(done) => *self.compacted.lock().unwrap_or_else(|e| e.into_inner()) = done,
                Err(e) => tracing::warn!(error = %e, "redb compaction skipped"),
            }
            let mut txn = db.begin_write()?;
            txn.set_quick_repair(true);
            txn.commit()?;
        }
        Ok(())
    }

    fn read_only(&self) -> bool {
        !matches!(&*self.db(), Some(Db::Rw(_)))
    }

    /// Drops the database (redb latches every I/O error: all later calls fail) and opens it
    /// again from what is on disk: read-write if the disk has room, else read-only.
    fn reopen(&self) -> Result<(), StoreError> {
        let mut slot = self.db.write().unwrap_or_else(|e| e.into_inner());
        drop(slot.take());
        let db = open_db(&self.path, self.cache)?;
        *slot = Some(db);
        Ok(())
    }

    fn name(&self) -> &'static str {
        "redb"
    }
}
