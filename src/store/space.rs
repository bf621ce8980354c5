//! The free-space reserve: while the data directory's file system has less than `min_free`
//! bytes available the store is *full*: it refuses new writes (the engines never get to see
//! ENOSPC, and what was accepted can still be committed from the reserve) and skips optional
//! checkpoints. It is measured again at most every `MAX_AGE`, so writes resume by themselves
//! once space is freed (with a margin, so the state does not flap).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How old a measurement may be before the next check measures again.
pub const MAX_AGE: Duration = Duration::from_millis(250);

pub struct Space {
    dir: PathBuf,
    min_free: u64,
    /// free bytes at the last measurement (`u64::MAX` if unknown)
    free: AtomicU64,
    /// ms since `start` of the last measurement, `u64::MAX` = never
    checked_at: AtomicU64,
    full: AtomicBool,
    start: Instant,
}

/// Bytes available to this (unprivileged) process on the file system holding `dir`.
pub fn free_bytes(dir: &std::path::Path) -> std::io::Result<u64> {
    let s = rustix::fs::statvfs(dir)?;
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}

impl Space {
    /// `min_free` 0 turns the reserve off.
    pub fn new(dir: PathBuf, min_free: u64) -> Space {
        let s = Space {
            dir,
            min_free,
            free: AtomicU64::new(u64::MAX),
            checked_at: AtomicU64::new(u64::MAX),
            full: AtomicBool::new(false),
            start: Instant::now(),
        };
        s.measure();
        s
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Measures now. Full below `min_free`; not full again from `min_free` + a quarter of it
    /// (at least 1 MiB). A file system that cannot be asked counts as not full.
    pub fn measure(&self) -> bool {
        self.checked_at.store(self.now_ms(), Ordering::Release);
        if self.min_free == 0 {
            return true;
        }
        let free = free_bytes(&self.dir).unwrap_or(u64::MAX);
        self.free.store(free, Ordering::Release);
        let was_full = self.full.load(Ordering::Acquire);
        let margin = (self.min_free / 4).max(1 << 20);
        let full = if was_full {
            free < self.min_free.saturating_add(margin)
        } else {
            free < self.min_free
        };
        if full != was_full {
            self.full.store(full, Ordering::Release);
            let mib = |b: u64| b / (1 << 20);
            if full {
                tracing::error!(
                    dir = %self.dir.display(),
                    free_mib = mib(free),
                    min_free_mib = mib(self.min_free),
                    "disk full: the store refuses writes until space is freed (reads go on)"
                );
            } else {
                tracing::warn!(
                    free_mib = mib(free),
                    "disk space is back: the store accepts writes again"
                );
            }
        }
        !full
    }

    /// True unless the disk is full; measures again if the last measurement is older than
    /// `MAX_AGE` (one statvfs call: cheap enough for every write).
    pub fn ok(&self) -> bool {
        let at = self.checked_at.load(Ordering::Acquire);
        let now = self.now_ms();
        if at == u64::MAX || now.saturating_sub(at) >= MAX_AGE.as_millis() as u64 {
            // one caller measures, the others use the last result
            if self
                .checked_at
                .compare_exchange(at, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return self.measure();
            }
        }
        !self.full.load(Ordering::Acquire)
    }

    /// True if the last measurement found the disk full.
    pub fn is_full(&self) -> bool {
        self.full.load(Ordering::Acquire)
    }

    /// Free bytes at the last measurement (`None` if unknown or the reserve is off).
    pub fn free(&self) -> Option<u64> {
        Some(self.free.load(Ordering::Acquire)).filter(|f| *f != u64::MAX)
    }

    pub fn min_free(&self) -> u64 {
        self.min_free
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reserve_above_the_free_space_is_full_and_zero_is_off() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(dir.path()).unwrap();
        assert!(free > 0);
        let s = Space::new(dir.path().to_path_buf(), free.saturating_mul(2));
        assert!(!s.ok() && s.is_full());
        assert!(s.free().is_some());
        let s = Space::new(dir.path().to_path_buf(), 1);
        assert!(s.ok() && !s.is_full());
        let s = Space::new(dir.path().to_path_buf(), 0);
        assert!(s.ok() && s.free().is_none());
    }
}
