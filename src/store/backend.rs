//! The storage backend contract: logical key spaces (`Tree`), a write (`Op`), the `Backend` trait
//! that sled and redb implement (atomic + fsync'd `commit`, ordered prefix `scan`, a point-in-time
//! `View` where the engine has one), the shared
//! `StoreError`, and `BackendKind` (which engine a data directory uses).

use std::fmt;
use std::str::FromStr;

/// Which storage engine backs a [`super::Store`]. Parses from `"sled"` / `"redb"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    Sled,
    Redb,
}

impl BackendKind {
    /// Both kinds, for tests and diagnostics that loop over every backend.
    pub const ALL: [BackendKind; 2] = [BackendKind::Sled, BackendKind::Redb];

    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Sled => "sled",
            BackendKind::Redb => "redb",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BackendKind {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sled" => Ok(BackendKind::Sled),
            "redb" => Ok(BackendKind::Redb),
            other => Err(StoreError(format!(
                "unknown store backend {other:?} (expected \"sled\" or \"redb\")"
            ))),
        }
    }
}

/// Logical key spaces. Each backend keeps them apart (sled: 1-byte key prefix, redb: one table each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tree {
    Things,
    Policies,
    Index,
    History,
    Meta,
}

impl Tree {
    pub const ALL: [Tree; 5] = [
        Tree::Things,
        Tree::Policies,
        Tree::Index,
        Tree::History,
        Tree::Meta,
    ];

    /// Dense index 0..5 (array slots, sled key prefix byte). Never reorder: it is on disk.
    pub fn index(self) -> usize {
        match self {
            Tree::Things => 0,
            Tree::Policies => 1,
            Tree::Index => 2,
            Tree::History => 3,
            Tree::Meta => 4,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Tree::Things => "things",
            Tree::Policies => "policies",
            Tree::Index => "index",
            Tree::History => "history",
            Tree::Meta => "meta",
        }
    }
}

/// Key/value pairs in key order, as scans return them.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// One write: `value: None` deletes `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    pub tree: Tree,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
    /// a put of a key the store does not hold now (`Op::create`): when it is deleted again
    /// before it was logged, the store forgets both instead of logging and checkpointing a
    /// delete (a hint for the overlay only; never logged)
    pub fresh: bool,
}

impl Op {
    pub fn put(tree: Tree, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Op {
        Op {
            tree,
            key: key.into(),
            value: Some(value.into()),
            fresh: false,
        }
    }

    /// A put of a key that the caller knows the store does not hold now (e.g. a search index
    /// entry of a value the thing did not have: the index holds exactly its thing's entries).
    pub fn create(tree: Tree, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Op {
        Op {
            fresh: true,
            ..Op::put(tree, key, value)
        }
    }

    pub fn delete(tree: Tree, key: impl Into<Vec<u8>>) -> Op {
        Op {
            tree,
            key: key.into(),
            value: None,
            fresh: false,
        }
    }

    pub fn as_ref(&self) -> OpRef<'_> {
        OpRef {
            tree: self.tree,
            key: &self.key,
            value: self.value.as_deref(),
        }
    }
}

/// An op borrowed from where it is kept: a checkpoint writes the overlay's entries without
/// copying their keys and values (`Backend::commit_refs`).
#[derive(Clone, Copy)]
pub struct OpRef<'a> {
    pub tree: Tree,
    pub key: &'a [u8],
    pub value: Option<&'a [u8]>,
}

/// A storage engine. Implementations are internally synchronised; `commit` is only ever called
/// from the store's single writer thread, reads from anywhere.
pub trait Backend: Send + Sync + 'static {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// keys with `prefix`, ascending, strictly after `after` if given, at most `limit`
    fn scan(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Entries, StoreError>;
    /// apply all ops atomically (all or none after a crash) and make them durable (fsync) before
    /// returning (the store calls it for checkpoints only: rarely, with many ops)
    fn commit(&self, ops: &[Op]) -> Result<(), StoreError>;
    /// `commit` of ops that are all in the write-ahead log of the current epoch (and end with
    /// the next epoch's key): a crash part-way is repaired by replaying the log, so the engine
    /// may apply them in parts. sled does (one huge batch holds ~2 KiB of memory per op).
    fn commit_covered(&self, ops: &[Op]) -> Result<(), StoreError> {
        self.commit(ops)
    }
    /// `commit_covered` if `covered`, else `commit`, of borrowed ops (the backends write them
    /// without a copy; this default copies them).
    fn commit_refs(&self, ops: &[OpRef<'_>], covered: bool) -> Result<(), StoreError> {
        let ops: Vec<Op> = ops
            .iter()
            .map(|o| Op {
                tree: o.tree,
                key: o.key.to_vec(),
                value: o.value.map(<[u8]>::to_vec),
                fresh: false,
            })
            .collect();
        match covered {
            true => self.commit_covered(&ops),
            false => self.commit(&ops),
        }
    }
    /// `commit_refs` of a covered checkpoint that calls `part(n)` after each part of `n` ops it
    /// applied (visible to reads); the writer's progress, which paces producers (`gate`).
    /// Backends that apply a commit at once report `None`: they do not call `part`.
    fn commit_parts(
        &self,
        ops: &[OpRef<'_>],
        _part: &mut dyn FnMut(usize),
    ) -> Option<Result<(), StoreError>> {
        let _ = ops;
        None
    }
    /// True if `commit_covered` is worth logging everything before a checkpoint for (sled).
    fn prefers_covered(&self) -> bool {
        false
    }
    fn name(&self) -> &'static str;
    /// Called once by `Store::close` after the last commit (not after a failed one): records
    /// whatever makes the next open cheap. The process may exit without dropping the backend.
    fn shut_down(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// True while the backend was opened read-only (a full disk at start): `commit` fails.
    fn read_only(&self) -> bool {
        false
    }
    /// After a commit failed for lack of space: reopen read-write from what is on disk, if the
    /// engine needs that to go on (redb refuses all I/O after a failed write).
    fn reopen(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// A point-in-time view that later commits do not change (redb: an MVCC read
    /// transaction), or `None` if the engine has none (sled): the store then holds its
    /// checkpoints while a snapshot is read.
    fn view(&self) -> Result<Option<Box<dyn View>>, StoreError> {
        Ok(None)
    }
}

/// A consistent read-only view of a backend (see `Backend::view`). Values are as stored (the
/// store's codec decodes them). Held for one backup ([`super::Snapshot`]) or one query
/// ([`super::Reader`]): redb opens each table once per view, not once per read.
pub trait View: Send {
    /// Calls `f` with each entry of `tree` with `prefix`, ascending, strictly after `after` if
    /// given, at most `limit`, borrowed from the engine (no copy); `f` returns false to stop.
    fn each(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreError>;

    /// Like `Backend::get`, of the state when the view was taken.
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Like `Backend::scan`, of the state when the view was taken.
    fn scan(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Entries, StoreError> {
        let mut out = Vec::new();
        self.each(tree, prefix, after, limit, &mut |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            true
        })?;
        Ok(out)
    }
}

/// Where a scan starts: at `prefix`, or just after `after` when that lies at/after `prefix`.
/// Returns the start key and whether it is exclusive.
pub(crate) fn scan_start<'a>(prefix: &'a [u8], after: Option<&'a [u8]>) -> (&'a [u8], bool) {
    match after {
        Some(a) if a >= prefix => (a, true),
        _ => (prefix, false),
    }
}

/// fsyncs a directory so entries created in it (database files) survive a power cut.
pub(crate) fn sync_dir(dir: &std::path::Path) -> Result<(), StoreError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError(format!("fsync of directory {}: {e}", dir.display())))
}

/// The store's error: a message (backend errors are flattened to text; callers only log/report them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl StoreError {
    pub fn new(msg: impl Into<String>) -> StoreError {
        StoreError(msg.into())
    }

    /// `what: error` for an I/O error.
    pub fn from_io(what: &str, e: std::io::Error) -> StoreError {
        StoreError(format!("{what}: {e}"))
    }

    /// True if the error says the disk (or the user's quota) is full: ENOSPC / EDQUOT as both
    /// engines and std word them. The store then waits for space instead of failing for good.
    pub fn is_no_space(&self) -> bool {
        let m = self.0.as_str();
        m.contains("os error 28")
            || m.contains("os error 122")
            || m.contains("No space left")
            || m.contains("Disk quota exceeded")
            || m.contains("StorageFull")
            || m.contains("storage full")
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "store: {}", self.0)
    }
}

impl std::error::Error for StoreError {}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError(format!("io: {e}"))
    }
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError(format!("sled: {e}"))
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError(format!("redb: {e}"))
            }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
