//! Store tests, each on both backends (`backend_tests!`), real databases in temp dirs: helpers
//! and the gated backend here; cases in `cases.rs`, `classes.rs` (durability classes, log,
//! checkpoints), `crash.rs` (kill -9, commits/s benchmark), `full.rs` (full disk on a tmpfs),
//! `format.rs` (stored form of values), `backup.rs` (snapshots, backup and restore),
//! `reader.rs` (a query's reader: one view, yet read-your-writes across checkpoints), `paced.rs`
//! (producers paced by a checkpoint's parts), `schedule.rs` (when checkpoints start).

mod backup;
mod bound;
mod cases;
mod classes;
mod compact;
mod crash;
mod format;
mod full;
mod overlay_cases;
mod overlay_equiv;
mod overlay_hold;
mod overlay_old;
mod paced;
mod reader;
mod schedule;

use super::commit::last_write_per_key;
use super::*;
use futures_lite::future::block_on;
use std::time::Duration;
use tempfile::TempDir;

const CACHE: u64 = 4 << 20;
/// A flush interval no test waits for: only `durable`, `checkpoint` and `close` write.
pub(super) const NEVER: Duration = Duration::from_secs(600);

/// Test options: `interval`, no free-space reserve (`full.rs` tests it), small cache.
pub(super) fn opts(interval: Duration) -> Options {
    Options {
        cache_bytes: CACHE,
        flush_interval: interval,
        min_free_bytes: 0,
        ..Options::default()
    }
}

pub(super) fn open(kind: BackendKind, dir: &TempDir) -> Store {
    Store::open_with(kind, dir.path(), &opts(NEVER)).expect("open store")
}

pub(super) fn raw_backend(kind: BackendKind, dir: &Path) -> Box<dyn Backend> {
    match kind {
        BackendKind::Sled => Box::new(SledBackend::open(dir, CACHE).expect("sled")),
        BackendKind::Redb => Box::new(RedbBackend::open(dir, CACHE).expect("redb")),
    }
}

/// A thread that submits `unit(i)` for i = 0, 1, 2... (each once the store is `ready`) until
/// `stop`; `written()` is the number of units submitted so far.
pub(super) struct Writer {
    done: Arc<std::sync::atomic::AtomicBool>,
    written: Arc<std::sync::atomic::AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl Writer {
    pub(super) fn spawn(s: &Store, unit: impl Fn(u64) -> Vec<Op> + Send + 'static) -> Writer {
        use std::sync::atomic::Ordering::SeqCst;
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let written = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (s, d, w) = (s.clone(), done.clone(), written.clone());
        let thread = std::thread::spawn(move || {
            let mut i = 0;
            while !d.load(SeqCst) {
                block_on(s.ready());
                s.submit(unit(i));
                w.store(i + 1, SeqCst);
                i += 1;
            }
        });
        Writer {
            done,
            written,
            thread,
        }
    }

    pub(super) fn written(&self) -> u64 {
        self.written.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub(super) fn stop(self) {
        self.done.store(true, std::sync::atomic::Ordering::SeqCst);
        self.thread.join().expect("writer");
    }
}

pub(super) fn put(tree: Tree, k: &str, v: &str) -> Op {
    Op::put(tree, k.as_bytes(), v.as_bytes())
}

pub(super) fn del(tree: Tree, k: &str) -> Op {
    Op::delete(tree, k.as_bytes())
}

pub(super) fn get_s(s: &Store, tree: Tree, k: &str) -> Option<String> {
    s.get(tree, k.as_bytes())
        .expect("get")
        .map(|v| String::from_utf8(v).expect("utf8"))
}

pub(super) fn keys(v: &[(Vec<u8>, Vec<u8>)]) -> Vec<String> {
    v.iter()
        .map(|(k, _)| String::from_utf8(k.clone()).expect("utf8"))
        .collect()
}

/// Wraps a real backend: `commit` waits while the gate is closed and fails while `fail` is set.
pub(super) struct Gated {
    inner: Box<dyn Backend>,
    open: Mutex<bool>,
    cv: Condvar,
    fail: AtomicBool,
}

impl Gated {
    fn new(inner: Box<dyn Backend>) -> Arc<Gated> {
        Arc::new(Gated {
            inner,
            open: Mutex::new(true),
            cv: Condvar::new(),
            fail: AtomicBool::new(false),
        })
    }
    fn set_open(&self, open: bool) {
        *self.open.lock().unwrap() = open;
        self.cv.notify_all();
    }
}

pub(super) struct GatedRef(Arc<Gated>);

impl Backend for GatedRef {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.inner.get(tree, key)
    }
    fn scan(
        &self,
        tree: Tree,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Entries, StoreError> {
        self.0.inner.scan(tree, prefix, after, limit)
    }
    fn commit(&self, ops: &[Op]) -> Result<(), StoreError> {
        let mut open = self.0.open.lock().unwrap();
        while !*open {
            open = self.0.cv.wait(open).unwrap();
        }
        drop(open);
        if self.0.fail.load(Ordering::SeqCst) {
            return Err(StoreError::new("injected commit failure"));
        }
        self.0.inner.commit(ops)
    }
    fn name(&self) -> &'static str {
        self.0.inner.name()
    }
}

pub(super) fn gated_store(
    kind: BackendKind,
    dir: &TempDir,
    max_pending: usize,
) -> (Store, Arc<Gated>) {
    let gate = Gated::new(raw_backend(kind, dir.path()));
    let o = Options {
        max_pending_ops: max_pending,
        ..opts(NEVER)
    };
    let store =
        Store::with_backend(Box::new(GatedRef(gate.clone())), dir.path(), &o).expect("store");
    (store, gate)
}

#[test]
fn backend_kind_parse_display() {
    for k in BackendKind::ALL {
        assert_eq!(k.to_string().parse::<BackendKind>().unwrap(), k);
    }
    assert_eq!(" Redb ".parse::<BackendKind>().unwrap(), BackendKind::Redb);
    assert!("rocksdb".parse::<BackendKind>().is_err());
}

macro_rules! backend_tests {
    ($($module:ident => $kind:expr),*) => {$(
        mod $module {
            use super::*;
            const KIND: BackendKind = $kind;
            #[test] fn get_put_delete() { cases::t_get_put_delete(KIND) }
            #[test] fn read_your_writes_before_commit() { cases::t_read_your_writes_before_commit(KIND) }
            #[test] fn scan_prefix_after_limit() { cases::t_scan_prefix_after_limit(KIND) }
            #[test] fn scan_overlay_merge_model() { cases::t_scan_overlay_merge_model(KIND) }
            #[test] fn durability_ordering() { cases::t_durability_ordering(KIND) }
            #[test] fn concurrent_submitters_batch() { cases::t_concurrent_submitters_batch(KIND) }
            #[test] fn reopen_after_close() { cases::t_reopen_after_close(KIND) }
            #[test] fn large_values() { cases::t_large_values(KIND) }
            #[test] fn refuses_other_backend_dir() { cases::t_refuses_other_backend_dir(KIND) }
            #[test] fn commit_failure_is_fail_stop() { cases::t_commit_failure_is_fail_stop(KIND) }
            #[test] fn ready_backpressure() { cases::t_ready_backpressure(KIND) }
            #[test] fn unwaited_writes_are_logged_after_the_interval() { classes::t_interval(KIND) }
            #[test] fn waiters_share_one_log_record() { classes::t_group_commit(KIND) }
            #[test] fn a_full_log_is_checkpointed() { classes::t_full_log(KIND) }
            #[test] fn a_record_bigger_than_the_log_goes_to_the_backend() { classes::t_huge_record(KIND) }
            #[test] fn a_full_overlay_is_checkpointed() { classes::t_overlay_bound(KIND) }
            #[test] fn disk_full_refuses_writes_until_space_is_freed() { full::t_reserve(KIND) }
            #[test] fn documents_are_compressed_on_disk() { format::t_documents_are_compressed_on_disk(KIND) }
            #[test] fn data_written_before_the_codec_opens_unchanged() { format::t_data_written_before_the_codec_opens_unchanged(KIND) }
            #[test] fn newer_format_is_refused() { format::t_newer_format_is_refused(KIND) }
            #[test] fn snapshot_is_a_cut() { backup::t_snapshot_is_a_cut(KIND) }
            #[test] fn backup_restores_the_same_entries() { backup::t_backup_restores_the_same_entries(KIND) }
            #[test] fn damaged_backups_are_refused() { backup::t_damaged_backups_are_refused(KIND) }
            #[test] fn unfinished_restore_is_not_opened() { backup::t_unfinished_restore_is_not_opened(KIND) }
            #[test] fn a_checkpoint_applied_in_parts_recovers_from_the_log() { backup::t_a_checkpoint_applied_in_parts_recovers_from_the_log(KIND) }
            #[test] fn reader_sees_what_a_checkpoint_moved() { reader::t_reader_sees_what_a_checkpoint_moved(KIND) }
            #[test] fn reader_under_writes_and_checkpoints() { reader::t_reader_under_writes_and_checkpoints(KIND) }
            #[test] fn crash_kill9() {
                let path = module_path!();
                let name = format!("{}::crash_kill9", path.split_once("::").map_or(path, |p| p.1));
                crash::t_crash_kill9(KIND, &name)
            }
            #[test]
            #[ignore = "benchmark: cargo test --release -- --ignored --nocapture --test-threads=1 bench"]
            fn bench_durable_commits() { crash::bench_commits(KIND) }
        }
    )*};
}

backend_tests!(on_sled => BackendKind::Sled, on_redb => BackendKind::Redb);

#[test]
fn one_commit_keeps_only_the_last_write_of_each_key() {
    let ops = vec![
        put(Tree::Things, "a", "1"),
        put(Tree::Policies, "a", "p"),
        put(Tree::Things, "b", "1"),
        put(Tree::Things, "a", "2"),
        del(Tree::Things, "b"),
        put(Tree::Things, "c", "1"),
        put(Tree::Things, "a", "3"),
    ];
    assert_eq!(
        last_write_per_key(ops),
        vec![
            put(Tree::Policies, "a", "p"),
            del(Tree::Things, "b"),
            put(Tree::Things, "c", "1"),
            put(Tree::Things, "a", "3"),
        ]
    );
    let distinct = vec![put(Tree::Things, "x", "1"), put(Tree::Things, "y", "1")];
    assert_eq!(last_write_per_key(distinct.clone()), distinct);
}

#[test]
fn overwritten_keys_are_durable_with_their_last_value_on_both_backends() {
    for kind in BackendKind::ALL {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = open(kind, &dir);
        let mut last = 0;
        for i in 0..500 {
            last = s.submit(vec![put(
                Tree::Things,
                &format!("k{}", i % 7),
                &i.to_string(),
            )]);
        }
        block_on(s.durable(last)).expect("durable");
        let st = s.stats();
        assert_eq!(st.submitted_units, 500, "{kind}: every unit counted");
        assert_eq!(
            (st.wal_appends, st.wal_ops, st.pending_ops),
            (1, 7, 7),
            "{kind}: 500 writes of 7 keys cost one record of 7 ops"
        );
        block_on(s.checkpoint()).expect("checkpoint");
        assert_eq!(s.stats().pending_ops, 0, "{kind}");
        s.close().expect("close");
        drop(s);
        let s = open(kind, &dir);
        for k in 0..7 {
            let want = (0..500).filter(|i| i % 7 == k).max().map(|i| i.to_string());
            assert_eq!(get_s(&s, Tree::Things, &format!("k{k}")), want, "{kind}");
        }
    }
}
