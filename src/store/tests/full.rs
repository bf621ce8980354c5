//! A full disk, for real: the store on a small tmpfs (needs root to mount; otherwise the test
//! prints SKIPPED and returns) filled by a file that is then deleted. Below the reserve writes
//! are refused while reads go on and accepted writes still become durable; when even the
//! reserve is gone a checkpoint stalls instead of failing and succeeds once space is back.

use super::*;
use std::io::Write;
use std::process::Command;
use std::time::Instant;

/// A tmpfs of `mib` MiB mounted on a temp dir; unmounted on drop.
pub(crate) struct Tmpfs {
    pub dir: TempDir,
}

impl Tmpfs {
    pub(crate) fn mount(mib: u64) -> Result<Tmpfs, String> {
        let dir = TempDir::new().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "cannot mount a tmpfs (needs root): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs { dir })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Writes `path` until the file system has less than `leave` bytes free (or is full).
pub(crate) fn fill(path: &Path, leave: u64) {
    let dir = path.parent().unwrap();
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0xa5u8; 256 * 1024];
    while free_bytes(dir).unwrap() > leave {
        let n = (free_bytes(dir).unwrap() - leave).min(chunk.len() as u64) as usize;
        if f.write_all(&chunk[..n.max(4096)]).is_err() {
            break;
        }
    }
    let _ = f.sync_all();
}

fn eventually(what: &str, f: impl Fn() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(10), "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(super) fn t_reserve(kind: BackendKind) {
    let fs = match Tmpfs::mount(48) {
        Ok(fs) => fs,
        Err(why) => return eprintln!("SKIPPED: {why}"),
    };
    let data = fs.dir.path().join("data");
    let o = Options {
        min_free_bytes: 8 << 20,
        wal_bytes: 1 << 20,
        ..opts(NEVER)
    };
    let s = Store::open_with(kind, &data, &o).unwrap();
    let q = s.submit(vec![put(Tree::Things, "before", "1")]);
    block_on(s.durable(q)).unwrap();
    s.writable().unwrap();
    // below the reserve: writes refused, reads go on, health says why
    let filler = fs.dir.path().join("filler");
    fill(&filler, 4 << 20);
    eventually("full", || s.writable().is_err());
    let h = s.health();
    assert!(
        !h.writable && h.reason.as_deref().unwrap_or("").contains("disk full"),
        "{h:?}"
    );
    assert!(!s.is_failed());
    assert_eq!(get_s(&s, Tree::Things, "before").as_deref(), Some("1"));
    // a write accepted just before still becomes durable (the log never grows)
    let late = s.submit(vec![put(Tree::Things, "late", "1")]);
    block_on(s.durable(late)).unwrap();
    // space freed: writes resume by themselves
    std::fs::remove_file(&filler).unwrap();
    eventually("writable again", || s.writable().is_ok());
    assert!(s.health().writable);
    let after = s.submit(vec![put(Tree::Things, "after", "1")]);
    block_on(s.durable(after)).unwrap();
    block_on(s.checkpoint()).unwrap();
    drop(s);

    // no reserve left at all: the checkpoint meets ENOSPC, stalls, and works once space is back
    let o = Options {
        min_free_bytes: 0,
        ..o
    };
    let s = Store::open_with(kind, &data, &o).unwrap();
    let mut last = 0;
    for i in 0..200 {
        last = s.submit(vec![put(
            Tree::Things,
            &format!("n{i:03}"),
            // incompressible: the store compresses documents
            &(0..2000)
                .map(|_| fastrand::alphanumeric())
                .collect::<String>(),
        )]);
    }
    block_on(s.durable(last)).unwrap(); // in the pre-allocated log
    fill(&filler, 0);
    let e = block_on(s.checkpoint()).expect_err("no space for the checkpoint");
    assert!(e.is_no_space() || e.0.contains("read-only"), "{e}");
    assert!(!s.is_failed(), "a full disk is no failure");
    assert!(!s.health().writable);
    assert_eq!(get_s(&s, Tree::Things, "n199").map(|v| v.len()), Some(2000));
    assert_eq!(get_s(&s, Tree::Things, "before").as_deref(), Some("1"));
    std::fs::remove_file(&filler).unwrap();
    block_on(s.checkpoint()).expect("checkpoint once space is back");
    assert!(s.health().writable);
    assert_eq!(s.stats().pending_ops, 0);
    drop(s);
    let s = open_at(kind, &data);
    for k in ["before", "late", "after", "n000", "n199"] {
        assert!(get_s(&s, Tree::Things, k).is_some(), "{kind}: {k} lost");
    }
}

fn open_at(kind: BackendKind, dir: &Path) -> Store {
    Store::open_with(kind, dir, &opts(NEVER)).unwrap()
}
