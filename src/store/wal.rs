//! The store's write-ahead log: one pre-allocated file `<dir>/edgetwin.wal` of fixed size,
//! overwritten in place (no file growth, so no metadata journaling per sync and no ENOSPC).
//! A record is every write since the previous record, padded to whole 4 KiB pages so that an
//! append never rewrites a page holding an acknowledged record; it carries the checkpoint epoch
//! it belongs to, and recovery replays the valid (CRC-checked) prefix of the current epoch.
//! Appends use O_DIRECT where the file system has it: the page cache may hold the file in large
//! folios (64 KiB and more on recent kernels), and dirtying 4 KiB of one writes all of it.

use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::backend::{sync_dir, Op, StoreError, Tree};

/// File name of the log inside the data directory.
pub const WAL_FILE: &str = "edgetwin.wal";
/// Default log size: 4 MiB (1,024 single-page records between two checkpoints).
pub const DEFAULT_WAL_BYTES: u64 = 4 << 20;
/// Records start at page boundaries (the unit a disk or SD card rewrites).
pub const PAGE: u64 = 4096;
const MAGIC: [u8; 4] = *b"ETWL";
const VERSION: u32 = 1;
/// magic 4, version 4, epoch 8, seq 8, payload length 4, crc32 4
const HEADER: usize = 32;

/// One recovered record: the writes up to and including store sequence `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    pub ops: Vec<Op>,
}

/// One page in memory, aligned as O_DIRECT needs.
#[repr(C, align(4096))]
struct Page([u8; PAGE as usize]);

/// The open log. Only the store's writer thread appends.
pub struct Wal {
    file: File,
    /// `file` was opened with O_DIRECT
    direct: bool,
    path: PathBuf,
    size: u64,
    /// where the next record goes
    offset: u64,
    /// the checkpoint epoch the records being written belong to
    epoch: u64,
}

fn io(path: &Path, what: &str, e: std::io::Error) -> StoreError {
    StoreError::from_io(&format!("{what} {}", path.display()), e)
}

/// Serialized ops: per op `tree u8, put u8, key len u32, key, [value len u32, value]`.
pub fn encode_ops(ops: &[Op], out: &mut Vec<u8>) {
    for op in ops {
        out.push(op.tree.index() as u8);
        out.push(op.value.is_some() as u8);
        out.extend_from_slice(&(op.key.len() as u32).to_le_bytes());
        out.extend_from_slice(&op.key);
        if let Some(v) = &op.value {
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
            out.extend_from_slice(v);
        }
    }
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if buf.len() < n {
        return None;
    }
    let (a, b) = buf.split_at(n);
    *buf = b;
    Some(a)
}

fn take_u32(buf: &mut &[u8]) -> Option<usize> {
    let b = take(buf, 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

/// The ops of a payload (`None` if it is malformed).
pub fn decode_ops(mut buf: &[u8]) -> Option<Vec<Op>> {
    let mut ops = Vec::new();
    while !buf.is_empty() {
        let head = take(&mut buf, 2)?;
        let tree = *Tree::ALL.get(head[0] as usize)?;
        let klen = take_u32(&mut buf)?;
        let key = take(&mut buf, klen)?.to_vec();
        let value = match head[1] {
            0 => None,
            1 => {
                let vlen = take_u32(&mut buf)?;
                Some(take(&mut buf, vlen)?.to_vec())
            }
            _ => return None,
        };
        ops.push(Op {
            tree,
            key,
            value,
            fresh: false,
        });
    }
    Some(ops)
}

fn checksum(epoch: u64, seq: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&epoch.to_le_bytes());
    h.update(&seq.to_le_bytes());
    h.update(&(payload.len() as u32).to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// Bytes a record with `payload_len` bytes of ops occupies in the log.
pub fn record_len(payload_len: usize) -> u64 {
    (HEADER as u64 + payload_len as u64).div_ceil(PAGE) * PAGE
}

impl Wal {
    /// Opens `<dir>/edgetwin.wal`, creating it filled with zeros (`size` bytes, rounded to pages)
    /// if missing; an existing log keeps its size. Then reads the records of `epoch` (those
    /// written since the backend's last checkpoint): the next append goes after them.
    pub fn open(dir: &Path, size: u64, epoch: u64) -> Result<(Wal, Vec<Record>), StoreError> {
        let path = dir.join(WAL_FILE);
        if !path.exists() {
            create_zeroed(dir, &path, size.max(4 * PAGE).div_ceil(PAGE) * PAGE)?;
        }
        // recovery reads through the page cache, then the cached pages are dropped
        let reader = File::open(&path).map_err(|e| io(&path, "open", e))?;
        let size = reader.metadata().map_err(|e| io(&path, "stat", e))?.len() / PAGE * PAGE;
        // never truncated or extended
        let (file, direct) = open_for_writes(&path)?;
        let mut wal = Wal {
            file: reader,
            direct: false,
            path,
            size,
            offset: 0,
            epoch,
        };
        let records = wal.recover()?;
        let _ = rustix::fs::fadvise(&wal.file, 0, None, rustix::fs::Advice::DontNeed);
        (wal.file, wal.direct) = (file, direct);
        Ok((wal, records))
    }

    /// Reads the valid prefix of this epoch's records and sets the append offset after it.
    fn recover(&mut self) -> Result<Vec<Record>, StoreError> {
        let mut records = Vec::new();
        let mut offset = 0;
        let mut head = [0u8; HEADER];
        while offset + PAGE <= self.size {
            match self.file.read_exact_at(&mut head, offset) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(io(&self.path, "read", e)),
            }
            let u64_at = |i: usize| {
                let mut b = [0u8; 8];
                b.copy_from_slice(&head[i..i + 8]);
                u64::from_le_bytes(b)
            };
            let u32_at = |i: usize| {
                let mut b = [0u8; 4];
                b.copy_from_slice(&head[i..i + 4]);
                u32::from_le_bytes(b)
            };
            let (epoch, seq, len, crc) = (u64_at(8), u64_at(16), u32_at(24) as usize, u32_at(28));
            if head[..4] != MAGIC || u32_at(4) != VERSION || epoch != self.epoch {
                break;
            }
            let total = record_len(len);
            if offset + total > self.size {
                break;
            }
            let mut payload = vec![0u8; len];
            match self
                .file
                .read_exact_at(&mut payload, offset + HEADER as u64)
            {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(io(&self.path, "read", e)),
            }
            if checksum(epoch, seq, &payload) != crc {
                break; // torn: never acknowledged
            }
            let Some(ops) = decode_ops(&payload) else {
                break;
            };
            records.push(Record { seq, ops });
            offset += total;
        }
        self.offset = offset;
        Ok(records)
    }

    /// True if a record of `payload_len` bytes fits behind the records of this epoch.
    pub fn fits(&self, payload_len: usize) -> bool {
        self.offset + record_len(payload_len) <= self.size
    }

    /// Appends one record (ops serialized by `encode_ops`) and syncs it (`fdatasync`: the file
    /// keeps its size, so no metadata is written). The caller checked `fits`.
    pub fn append(&mut self, seq: u64, payload: &[u8]) -> Result<u64, StoreError> {
        let total = record_len(payload.len());
        if self.offset + total > self.size {
            return Err(StoreError::new("write-ahead log full (checkpoint first)"));
        }
        let mut head = Vec::with_capacity(HEADER);
        head.extend_from_slice(&MAGIC);
        head.extend_from_slice(&VERSION.to_le_bytes());
        head.extend_from_slice(&self.epoch.to_le_bytes());
        head.extend_from_slice(&seq.to_le_bytes());
        head.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        head.extend_from_slice(&checksum(self.epoch, seq, payload).to_le_bytes());
        head.resize(HEADER, 0);
        // whole pages: nothing of an older page is merged in, no page is read first
        let mut pages: Vec<Page> = (0..total / PAGE)
            .map(|_| Page([0; PAGE as usize]))
            .collect();
        let mut bytes = head.iter().chain(payload.iter());
        for page in &mut pages {
            for (slot, b) in page.0.iter_mut().zip(&mut bytes) {
                *slot = *b;
            }
        }
        let mut result = self.write_pages(&pages);
        if self.direct && matches!(&result, Err(e) if e.raw_os_error() == Some(22)) {
            // EINVAL: the file system took O_DIRECT at open but not for writes
            let buffered = std::fs::OpenOptions::new().write(true).open(&self.path);
            if let Ok(f) = buffered {
                (self.file, self.direct) = (f, false);
                result = self.write_pages(&pages);
            }
        }
        result
            .and_then(|()| self.file.sync_data())
            .map_err(|e| io(&self.path, "write", e))?;
        self.offset += total;
        Ok(total)
    }

    /// Writes `pages` at the append offset: one `pwritev` of page-aligned buffers.
    fn write_pages(&self, pages: &[Page]) -> std::io::Result<()> {
        let mut done = 0;
        while done < pages.len() {
            let slices: Vec<std::io::IoSlice<'_>> = pages[done..]
                .iter()
                .take(512)
                .map(|p| std::io::IoSlice::new(&p.0))
                .collect();
            let at = self.offset + done as u64 * PAGE;
            let n = rustix::io::pwritev(&self.file, &slices, at)?;
            if n == 0 || n % PAGE as usize != 0 {
                // a partial page: write the rest of the record page by page
                let from = done + n / PAGE as usize;
                for (i, p) in pages[from..].iter().enumerate() {
                    self.file
                        .write_all_at(&p.0, at + (n as u64 / PAGE + i as u64) * PAGE)?;
                }
                return Ok(());
            }
            done += n / PAGE as usize;
        }
        Ok(())
    }

    /// After a checkpoint that recorded `epoch` in the backend: later records belong to it and
    /// start again at the beginning (older records are ignored by their epoch).
    pub fn reset(&mut self, epoch: u64) {
        self.epoch = epoch;
        self.offset = 0;
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Bytes of the log in use by this epoch's records.
    pub fn used(&self) -> u64 {
        self.offset
    }

    #[cfg(test)]
    pub fn size(&self) -> u64 {
        self.size
    }
}

/// Opens the log for appends: O_DIRECT where the file system supports it.
fn open_for_writes(path: &Path) -> Result<(File, bool), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let direct = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32)
        .open(path);
    match direct {
        Ok(f) => Ok((f, true)),
        Err(_) => std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map(|f| (f, false))
            .map_err(|e| io(path, "open", e)),
    }
}

/// Writes a zero-filled log under a temporary name, syncs it and renames it into place, so a
/// crash never leaves a short log behind.
fn create_zeroed(dir: &Path, path: &Path, size: u64) -> Result<(), StoreError> {
    let tmp = dir.join(format!("{WAL_FILE}.tmp"));
    let result = (|| {
        let f = File::create(&tmp)?;
        let zeros = vec![0u8; 64 * 1024];
        let mut at = 0;
        while at < size {
            let n = (size - at).min(zeros.len() as u64) as usize;
            f.write_all_at(&zeros[..n], at)?;
            at += n as u64;
        }
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(path, "create", e));
    }
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(n: usize, tag: &str) -> Vec<Op> {
        (0..n)
            .map(|i| {
                if i % 3 == 2 {
                    Op::delete(Tree::Index, format!("{tag}/{i}"))
                } else {
                    Op::put(Tree::ALL[i % 5], format!("{tag}/{i}"), vec![i as u8; i * 7])
                }
            })
            .collect()
    }

    fn payload(o: &[Op]) -> Vec<u8> {
        let mut p = Vec::new();
        encode_ops(o, &mut p);
        p
    }

    #[test]
    fn ops_round_trip_and_malformed_payloads_are_refused() {
        let o = ops(20, "a");
        let p = payload(&o);
        assert_eq!(decode_ops(&p), Some(o));
        assert_eq!(decode_ops(&[]), Some(vec![]));
        assert_eq!(decode_ops(&p[..p.len() - 1]), None);
        assert_eq!(decode_ops(&[9, 1, 0, 0, 0, 0]), None, "unknown tree");
    }

    #[test]
    fn records_are_replayed_in_order_and_only_of_the_current_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, rec) = Wal::open(dir.path(), 64 * 1024, 7).unwrap();
        assert!(rec.is_empty());
        assert_eq!(w.size(), 64 * 1024);
        assert_eq!(w.append(3, &payload(&ops(4, "x"))).unwrap(), PAGE);
        let big = ops(60, "y"); // several pages
        let used = w.append(9, &payload(&big)).unwrap();
        assert!(used > PAGE && used % PAGE == 0);
        drop(w);
        let (mut w, rec) = Wal::open(dir.path(), 1, 7).unwrap();
        assert_eq!(w.size(), 64 * 1024, "an existing log keeps its size");
        assert_eq!(rec.len(), 2);
        assert_eq!((rec[0].seq, rec[1].seq), (3, 9));
        assert_eq!(rec[1].ops, big);
        assert_eq!(w.used(), PAGE + used);
        // a checkpoint moves to epoch 8: the old records no longer count
        w.reset(8);
        w.append(10, &payload(&ops(2, "z"))).unwrap();
        drop(w);
        let (_, rec) = Wal::open(dir.path(), 1, 8).unwrap();
        assert_eq!(rec.len(), 1, "the epoch-7 record behind it is stale");
        assert_eq!(rec[0].seq, 10);
    }

    #[test]
    fn a_torn_record_ends_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, _) = Wal::open(dir.path(), 64 * 1024, 1).unwrap();
        w.append(1, &payload(&ops(3, "a"))).unwrap();
        w.append(2, &payload(&ops(3, "b"))).unwrap();
        w.append(3, &payload(&ops(3, "c"))).unwrap();
        drop(w);
        // flip a payload byte of the second record
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join(WAL_FILE))
            .unwrap();
        f.write_all_at(&[0xff], PAGE + HEADER as u64 + 3).unwrap();
        let (w, rec) = Wal::open(dir.path(), 1, 1).unwrap();
        assert_eq!(rec.iter().map(|r| r.seq).collect::<Vec<_>>(), [1]);
        assert_eq!(w.used(), PAGE, "the next append overwrites the torn record");
    }

    #[test]
    fn full_log_refuses_until_reset() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, _) = Wal::open(dir.path(), 4 * PAGE, 1).unwrap();
        let p = payload(&ops(2, "a"));
        for i in 0..4 {
            assert!(w.fits(p.len()));
            w.append(i, &p).unwrap();
        }
        assert!(!w.fits(p.len()));
        assert!(w.append(9, &p).is_err());
        w.reset(2);
        assert!(w.fits(p.len()));
    }
}
