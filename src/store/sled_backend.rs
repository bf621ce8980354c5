//! sled 0.34 backend: one `sled::Db` in `<dir>/sled`, all logical trees in ONE sled tree with a
//! 1-byte `Tree` prefix, so a commit is one atomic `apply_batch` + `flush()` + our own fdatasync
//! (a checkpoint the log covers: batches of 256, see `commit_covered`).
//! (Measured against a transaction over 5 sled trees: same speed, the fsync dominates; the batch
//! needs no retry closure.) Background flushing is off: durability comes only from `commit`.
//! After a failed write (full disk) the database is reopened from what is on disk.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::io::ErrorKind;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use super::backend::{scan_start, sync_dir, Backend, Entries, Op, OpRef, StoreError, Tree};

/// Why the extra syncs: on Linux sled 0.34's `flush()` only calls `sync_file_range` on its log
/// file, which neither flushes the disk's write cache nor the file size, and it never fsyncs
/// the files in `blobs/` (log items over ~128 KiB, e.g. a leaf of 16 values of 8 KiB). That
/// survives kill -9 but not a power cut, so `commit` also fdatasyncs `db` and new blob files.
pub struct SledBackend {
    dir: PathBuf,
    cache_bytes: u64,
    /// `None` only between a failed reopen and the next one (reads fail then)
    open: RwLock<Option<Open>>,
    blobs_dir: PathBuf,
    /// Blob files already fsync'd (commit runs on one thread; the mutex is for `Sync`).
    synced_blobs: Mutex<HashSet<OsString>>,
}

/// An open database.
struct Open {
    db: sled::Db,
    tree: sled::Tree,
    /// Our own handle on sled's log file `<dir>/sled/db`; fdatasync acts on the file, not the fd.
    log_file: File,
}

impl Drop for Open {
    fn drop(&mut self) {
        if let Err(e) = self.db.flush() {
            tracing::error!(error = %e, "sled: final flush failed");
        }
    }
}

/// Name of the single sled tree holding every logical tree.
const DATA_TREE: &[u8] = b"edgetwin";

fn full_key(tree: Tree, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(tree.index() as u8);
    k.extend_from_slice(key);
    k
}

/// Space kept free for sled in `<dir>/sled.reserve`: sled 0.34 writes when it opens (segments,
/// a snapshot), so on a full disk it could not start at all. The file is given up to open it
/// then, and made again when a later open finds room.
pub const SLED_RESERVE_FILE: &str = "sled.reserve";
const SLED_RESERVE_BYTES: u64 = 16 << 20;

/// Opens sled; on a full disk gives up the reserve file and tries once more. Makes the reserve
/// file when there is room for it (four times its size free).
fn open_with_reserve(dir: &Path, cache_bytes: u64) -> Result<Open, StoreError> {
    let reserve = dir.join(SLED_RESERVE_FILE);
    let open = match open_db(dir, cache_bytes) {
        Err(e) if e.is_no_space() && reserve.exists() => {
            tracing::warn!(error = %e, "sled: disk full at open; giving up the reserve file");
            std::fs::remove_file(&reserve)?;
            open_db(dir, cache_bytes)?
        }
        other => other?,
    };
    let room = super::space::free_bytes(dir).unwrap_or(0) > 4 * SLED_RESERVE_BYTES;
    if !reserve.exists() && room {
        let made = File::create(&reserve).and_then(|f| {
            f.set_len(0)?;
            let zeros = vec![0u8; 1 << 20];
            for _ in 0..SLED_RESERVE_BYTES >> 20 {
                std::io::Write::write_all(&mut &f, &zeros)?;
            }
            f.sync_all()
        });
        if let Err(e) = made {
            let _ = std::fs::remove_file(&reserve);
            tracing::warn!(error = %e, "sled: reserve file not made");
        }
    }
    Ok(open)
}

/// sled's file lock can outlive a dropped `Db` for a moment (its background threads still hold
/// it), so "could not acquire lock" is retried for up to ~3 s before giving up.
fn open_db(dir: &Path, cache_bytes: u64) -> Result<Open, StoreError> {
    let config = sled::Config::new()
        .path(dir.join("sled"))
        .cache_capacity(cache_bytes)
        .mode(sled::Mode::LowSpace)
        .flush_every_ms(None);
    let mut attempt = 0;
    let db = loop {
        match config.open() {
            Ok(db) => break db,
            Err(sled::Error::Io(e))
                if attempt < 30 && e.to_string().contains("could not acquire lock") =>
            {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(e) => return Err(e.into()),
        }
    };
    let tree = db.open_tree(DATA_TREE)?;
    let sled_dir = dir.join("sled");
    let log_file = File::open(sled_dir.join("db"))?;
    sync_dir(&sled_dir)?;
    sync_dir(dir)?;
    Ok(Open { db, tree, log_file })
}

impl SledBackend {
    /// Opens (or creates) the sled database in `<dir>/sled`.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<SledBackend, StoreError> {
        let open = open_with_reserve(dir, cache_bytes)?;
        Ok(SledBackend {
            dir: dir.to_path_buf(),
            cache_bytes,
            open: RwLock::new(Some(open)),
            blobs_dir: dir.join("sled").join("blobs"),
            synced_blobs: Mutex::new(HashSet::new()),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&Open) -> Result<T, StoreError>) -> Result<T, StoreError> {
        match &*self.open.read().unwrap_or_else(|e| e.into_inner()) {
            Some(o) => f(o),
            None => Err(StoreError::new(
                "sled: not open (reopen after a full disk failed)",
            )),
        }
    }

    /// fsyncs blob files not synced before (and then the directory). Names of blobs sled has
    /// garbage-collected are forgotten.
    fn sync_new_blobs(&self) -> Result<(), StoreError> {
        let entries = match std::fs::read_dir(&self.blobs_dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let mut synced = self.synced_blobs.lock().unwrap_or_else(|e| e.into_inner());
        let mut present = HashSet::with_capacity(synced.len());
        let mut any_new = false;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            if !synced.contains(&name) {
                match File::open(entry.path()).and_then(|f| f.sync_all()) {
                    Ok(()) => any_new = true,
                    Err(e) if e.kind() == ErrorKind::NotFound => continue, // collected meanwhile
                    Err(e) => return Err(e.into()),
                }
            }
            present.insert(name);
        }
        *synced = present;
        if any_new {
            sync_dir(&self.blobs_dir)?;
        }
        Ok(())
    }
}

/// Ops per sled batch of a checkpoint the log covers (`commit_covered`).
const COVERED_BATCH: usize = 256;

impl SledBackend {
    /// Applies `ops` in batches of at most `per_batch` (atomic only within one), calling
    /// `part(n)` after each batch of `n` (the gate's progress), then makes them durable.
    fn apply(
        &self,
        ops: &[OpRef<'_>],
        per_batch: usize,
        part: &mut dyn FnMut(usize),
    ) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        self.with(|o| {
            // one key buffer: sled copies a key into its own `IVec` anyway
            let mut k = Vec::new();
            for chunk in ops.chunks(per_batch) {
                let mut batch = sled::Batch::default();
                for op in chunk {
                    k.clear();
                    k.push(op.tree.index() as u8);
                    k.extend_from_slice(op.key);
                    match op.value {
                        Some(v) => batch.insert(k.as_slice(), v),
                        None => batch.remove(k.as_slice()),
                    }
                }
                o.tree.apply_batch(batch)?;
                part(chunk.len());
            }
            o.db.flush()?;
            self.sync_new_blobs()?;
            o.log_file.sync_data()?;
            Ok(())
        })
    }
}

impl Backend for SledBackend {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(|o| Ok(o.tree.get(full_key(tree, key))?.map(|v| v.to_vec())))
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
        let full_prefix = full_key(tree, prefix);
        let (start, exclusive) = scan_start(prefix, after);
        let start = full_key(tree, start);
        let lower = if exclusive {
            Bound::Excluded(start)
        } else {
            Bound::Included(start)
        };
        self.with(|o| {
            for item in o.tree.range::<Vec<u8>, _>((lower, Bound::Unbounded)) {
                let (k, v) = item?;
                if !k.starts_with(&full_prefix) {
                    break;
                }
                out.push((k[1..].to_vec(), v.to_vec()));
                if out.len() >= limit {
                    break;
                }
            }
            Ok(out)
        })
    }

    fn commit(&self, ops: &[Op]) -> Result<(), StoreError> {
        self.commit_refs(&ops.iter().map(Op::as_ref).collect::<Vec<_>>(), false)
    }

    /// In batches of `COVERED_BATCH`: sled keeps what a batch replaces until the batch ends, so
    /// one checkpoint of 4,096 keys as one batch left ~230 MiB RSS after 100k keys (256: 36 MiB).
    fn commit_covered(&self, ops: &[Op]) -> Result<(), StoreError> {
        self.commit_refs(&ops.iter().map(Op::as_ref).collect::<Vec<_>>(), true)
    }

    fn commit_refs(&self, ops: &[OpRef<'_>], covered: bool) -> Result<(), StoreError> {
        self.apply(
            ops,
            if covered { COVERED_BATCH } else { usize::MAX },
            &mut |_| {},
        )
    }

    fn commit_parts(
        &self,
        ops: &[OpRef<'_>],
        part: &mut dyn FnMut(usize),
    ) -> Option<Result<(), StoreError>> {
        Some(self.apply(ops, COVERED_BATCH, part))
    }

    fn prefers_covered(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "sled"
    }

    /// sled keeps failing after a write error: drop it and open it again from its log.
    fn reopen(&self) -> Result<(), StoreError> {
        let mut slot = self.open.write().unwrap_or_else(|e| e.into_inner());
        drop(slot.take());
        *slot = Some(open_with_reserve(&self.dir, self.cache_bytes)?);
        Ok(())
    }
}
