//! Backups: a snapshot of the whole store written as one stream, read back and checked, and
//! restored into an empty data directory. The file holds every entry of every tree as the
//! gateway reads it (values decoded, so any later edgetwin and either backend can restore
//! it), in frames with their own checksums. Layout (integers little-endian):
//!
//! ```text
//! header  "EDGETWIN-BACKUP\n" (16 B) | version u32 = 2 | created (unix ms) u64 | crc32 u32
//!         (of the 28 bytes before it)
//! frame   kind u8 | number u32 (0, 1, 2, ...) | length u32 | crc32 u32 | payload (length B)
//!         crc32 of number, kind, length and payload
//!   kind 1, entries: per entry  tree u8 | 1 u8 | key length u32 | key | value length u32 | value
//!                    (the write-ahead log's encoding of puts, `wal::encode_ops`)
//!   kind 2, end:     entries u64 | entries per tree (things, policies, index, history, meta)
//!                    5 x u64 | the store seq of the snapshot u64; nothing may follow
//! ```
//! The store's own bookkeeping (`Tree::Meta` keys starting with `store.`: the log epoch, the
//! value format) is not in a backup: the restored store writes its own.

use std::io::{Read, Write};
use std::path::Path;

use super::backend::{sync_dir, Op, StoreError, Tree};
use super::snapshot::Snapshot;
use super::wal::{decode_ops, encode_ops};
use super::{BackendKind, Options, Store};

/// First bytes of a backup file.
pub const MAGIC: &[u8; 16] = b"EDGETWIN-BACKUP\n";
/// The format version written. Version 1 (read too) held history events and snapshots in the
/// store's codec (the history log compressed them itself then); they are decoded when read.
pub const VERSION: u32 = 2;
/// File in a data directory while a restore into it runs: the store refuses to open it.
pub const RESTORE_MARKER: &str = "restore.incomplete";
const HEADER: usize = 32;
const FRAME_HEAD: usize = 13;
const ENTRIES: u8 = 1;
const END: u8 = 2;
/// A frame is closed once its payload reaches this (a single larger entry gets its own).
const FRAME_BYTES: usize = 64 << 10;
/// Largest frame payload a reader accepts (a corrupt length never allocates more).
const MAX_FRAME: usize = 80 << 20;
/// Entries read from the snapshot at a time.
const SCAN: usize = 256;
/// `Tree::Meta` keys of the store itself, not backed up.
const STORE_META: &[u8] = b"store.";

/// What a backup holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// entries per tree, in `Tree::ALL` order
    pub per_tree: [u64; 5],
    /// the store seq the backup is the state after (0 if unknown)
    pub seq: u64,
    /// unix ms the backup was started (from its header)
    pub created_ms: u64,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.per_tree.iter().sum()
    }

    /// Entries of `tree`.
    pub fn of(&self, tree: Tree) -> u64 {
        self.per_tree[tree.index()]
    }
}

fn frame_crc(number: u32, kind: u8, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&number.to_le_bytes());
    h.update(&[kind]);
    h.update(&(payload.len() as u32).to_le_bytes());
    h.update(payload);
    h.finalize()
}

fn io(what: &str) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |e| StoreError::from_io(what, e)
}

/// Writes frames to `out`.
struct FrameWriter<'a, W: Write> {
    out: &'a mut W,
    number: u32,
}

impl<W: Write> FrameWriter<'_, W> {
    fn frame(&mut self, kind: u8, payload: &[u8]) -> Result<(), StoreError> {
        let mut buf = Vec::with_capacity(FRAME_HEAD + payload.len());
        buf.push(kind);
        buf.extend_from_slice(&self.number.to_le_bytes());
        buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        buf.extend_from_slice(&frame_crc(self.number, kind, payload).to_le_bytes());
        buf.extend_from_slice(payload);
        self.out.write_all(&buf).map_err(io("backup write"))?;
        self.number += 1;
        Ok(())
    }
}

/// Writes a backup of `snap` to `out`, in frames of ~64 KiB (each written with one
/// `write_all`); memory stays within one frame and one scan batch.
pub fn write(snap: &Snapshot, created_ms: u64, out: &mut impl Write) -> Result<Counts, StoreError> {
    let scan = |tree: Tree, after: Option<&[u8]>| snap.scan(tree, after, SCAN);
    write_from(scan, snap.seq(), created_ms, out)
}

/// `write` of what `scan(tree, after)` returns: ascending batches of the entries of `tree`
/// after `after`, a short (or empty) batch at the end; `seq` is the state they are of.
pub fn write_from(
    mut scan: impl FnMut(Tree, Option<&[u8]>) -> Result<super::Entries, StoreError>,
    seq: u64,
    created_ms: u64,
    out: &mut impl Write,
) -> Result<Counts, StoreError> {
    let mut head = Vec::with_capacity(HEADER);
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&VERSION.to_le_bytes());
    head.extend_from_slice(&created_ms.to_le_bytes());
    head.extend_from_slice(&crc32fast::hash(&head).to_le_bytes());
    out.write_all(&head).map_err(io("backup write"))?;
    let mut counts = Counts {
        seq,
        created_ms,
        ..Counts::default()
    };
    let mut frames = FrameWriter { out, number: 0 };
    let mut payload = Vec::with_capacity(FRAME_BYTES + 1024);
    for tree in Tree::ALL {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let batch = scan(tree, after.as_deref())?;
            let Some((last, _)) = batch.last() else {
                break;
            };
            after = Some(last.clone());
            let last_batch = batch.len() < SCAN;
            for (key, value) in batch {
                if tree == Tree::Meta && key.starts_with(STORE_META) {
                    continue;
                }
                counts.per_tree[tree.index()] += 1;
                encode_ops(&[Op::put(tree, key, value)], &mut payload);
                if payload.len() >= FRAME_BYTES {
                    frames.frame(ENTRIES, &payload)?;
                    payload.clear();
                }
            }
            if last_batch {
                break;
            }
        }
    }
    if !payload.is_empty() {
        frames.frame(ENTRIES, &payload)?;
    }
    let mut end = Vec::with_capacity(56);
    end.extend_from_slice(&counts.total().to_le_bytes());
    for n in counts.per_tree {
        end.extend_from_slice(&n.to_le_bytes());
    }
    end.extend_from_slice(&counts.seq.to_le_bytes());
    frames.frame(END, &end)?;
    frames.out.flush().map_err(io("backup write"))?;
    Ok(counts)
}

/// Reads and checks a backup, frame by frame.
pub struct Reader<R: Read> {
    input: R,
    number: u32,
    counts: Counts,
    done: bool,
    version: u32,
}

impl<R: Read> Reader<R> {
    /// Checks the header.
    pub fn new(mut input: R) -> Result<Reader<R>, StoreError> {
        let mut head = [0u8; HEADER];
        input
            .read_exact(&mut head)
            .map_err(|e| StoreError(format!("not an edgetwin backup (too short: {e})")))?;
        if &head[..16] != MAGIC {
            return Err(StoreError::new("not an edgetwin backup (no header)"));
        }
        let u32_at =
            |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
        if crc32fast::hash(&head[..28]) != u32_at(28) {
            return Err(StoreError::new("backup header checksum mismatch"));
        }
        let version = u32_at(16);
        if !(1..=VERSION).contains(&version) {
            return Err(StoreError(format!(
                "backup format version {version}: this edgetwin reads version {VERSION}"
            )));
        }
        let mut created = [0u8; 8];
        created.copy_from_slice(&head[20..28]);
        Ok(Reader {
            input,
            number: 0,
            counts: Counts {
                created_ms: u64::from_le_bytes(created),
                ..Counts::default()
            },
            done: false,
            version,
        })
    }

    /// The next frame's entries (puts), or `None` after the end frame, which checks the counts
    /// and that nothing follows. An error for a damaged, truncated or reordered backup.
    pub fn next_entries(&mut self) -> Result<Option<Vec<Op>>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let truncated = |e: std::io::Error| {
            StoreError(format!(
                "backup incomplete (ends inside or before its end frame: {e})"
            ))
        };
        let mut head = [0u8; FRAME_HEAD];
        self.input.read_exact(&mut head).map_err(truncated)?;
        let kind = head[0];
        let number = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
        let len = u32::from_le_bytes([head[5], head[6], head[7], head[8]]) as usize;
        let crc = u32::from_le_bytes([head[9], head[10], head[11], head[12]]);
        if number != self.number || len > MAX_FRAME || !matches!(kind, ENTRIES | END) {
            return Err(StoreError(format!(
                "backup damaged at frame {}",
                self.number
            )));
        }
        // grows with what is there: a damaged length allocates no more than the file holds
        let mut payload = Vec::new();
        (&mut self.input)
            .take(len as u64)
            .read_to_end(&mut payload)
            .map_err(truncated)?;
        if payload.len() != len {
            return Err(truncated(std::io::ErrorKind::UnexpectedEof.into()));
        }
        if frame_crc(number, kind, &payload) != crc {
            return Err(StoreError(format!(
                "backup frame {number}: checksum mismatch"
            )));
        }
        self.number += 1;
        if kind == END {
            return self.end(&payload).map(|()| None);
        }
        let ops = decode_ops(&payload)
            .filter(|ops| ops.iter().all(|op| op.value.is_some()))
            .ok_or_else(|| StoreError(format!("backup frame {number}: malformed entries")))?;
        for op in &ops {
            self.counts.per_tree[op.tree.index()] += 1;
        }
        if self.version == 1 {
            let history_as_written = |op: Op| match op.tree {
                Tree::History => super::codec::decode_ops(vec![op]),
                _ => Ok(vec![op]),
            };
            let ops = ops.into_iter().map(history_as_written);
            let ops: Result<Vec<Vec<Op>>, _> = ops.collect();
            return ops.map(|o| Some(o.into_iter().flatten().collect()));
        }
        Ok(Some(ops))
    }

    fn end(&mut self, payload: &[u8]) -> Result<(), StoreError> {
        let u64s: Vec<u64> = payload
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect();
        if payload.len() != 56
            || u64s[0] != self.counts.total()
            || u64s[1..6] != self.counts.per_tree
        {
            return Err(StoreError::new(
                "backup damaged: its end frame does not match its entries",
            ));
        }
        self.counts.seq = u64s[6];
        let mut extra = [0u8; 1];
        match self.input.read(&mut extra) {
            Ok(0) => {}
            Ok(_) => return Err(StoreError::new("backup damaged: data after its end frame")),
            Err(e) => return Err(StoreError::from_io("backup read", e)),
        }
        self.done = true;
        Ok(())
    }

    /// What was read so far (all of it once `next_entries` returned `None`).
    pub fn counts(&self) -> Counts {
        self.counts
    }
}

/// Reads a whole backup and checks it; its counts.
pub fn check(input: impl Read) -> Result<Counts, StoreError> {
    let mut r = Reader::new(input)?;
    while r.next_entries()?.is_some() {}
    Ok(r.counts())
}

/// Loads a backup into `dir`, which must be empty or missing, with a `kind` store. While it
/// runs the directory holds `RESTORE_MARKER` (the gateway refuses to start on it); on any
/// error what was written is removed again.
pub fn restore(
    input: impl Read,
    dir: &Path,
    kind: BackendKind,
    opts: &Options,
) -> Result<Counts, StoreError> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(StoreError(format!(
                    "{} is not empty: restore only into an empty or new data directory",
                    dir.display()
                )));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(io("create data dir"))?;
        }
        Err(e) => return Err(StoreError::from_io(&dir.display().to_string(), e)),
    }
    let marker = dir.join(RESTORE_MARKER);
    std::fs::File::create(&marker).map_err(io("create restore marker"))?;
    sync_dir(dir)?;
    let loaded = load(input, dir, kind, opts);
    let finished = loaded.and_then(|counts| {
        std::fs::remove_file(&marker).map_err(io("remove restore marker"))?;
        sync_dir(dir)?;
        Ok(counts)
    });
    if finished.is_err() {
        // the directory was empty: nothing of a failed restore may look like a data directory
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let p = e.path();
                let _ = if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
            }
        }
    }
    finished
}

fn load(
    input: impl Read,
    dir: &Path,
    kind: BackendKind,
    opts: &Options,
) -> Result<Counts, StoreError> {
    // nothing is waited for: the checkpoint at the end writes it all (the marker covers a crash)
    let opts = Options {
        flush_interval: std::time::Duration::from_secs(3600),
        ..opts.clone()
    };
    let store = Store::open_unchecked(kind, dir, &opts)?;
    let mut reader = Reader::new(input)?;
    let result = (|| {
        while let Some(ops) = reader.next_entries()? {
            let ops: Vec<Op> = ops
                .into_iter()
                .filter(|op| !(op.tree == Tree::Meta && op.key.starts_with(STORE_META)))
                .collect();
            smol::block_on(store.ready());
            store.submit(ops);
        }
        smol::block_on(store.checkpoint())
    })();
    let closed = store.close();
    result.and(closed).map(|()| reader.counts())
}
