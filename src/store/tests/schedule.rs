//! When the writer checkpoints under a steady stream of writes (sled, which logs a checkpoint
//! before applying it in parts): the writes pending when the overlay bound is reached are logged
//! once and checkpointed, so the log never fills between two checkpoints.

use super::*;

#[test]
fn checkpoints_under_steady_writes_never_find_the_log_full() {
    let dir = TempDir::new().unwrap();
    // a checkpoint from 128 keys on (hard bound 256); the smallest log: 4 pages, room for one
    // record of all 256 keys (2 pages) but not for a record per few keys written meanwhile
    let o = Options {
        max_pending_ops: 256,
        wal_bytes: 4 * crate::store::wal::PAGE,
        ..opts(NEVER)
    };
    let s = Store::open_with(BackendKind::Sled, dir.path(), &o).expect("store");
    let w = Writer::spawn(&s, |i| {
        vec![put(Tree::Things, &format!("k{}", i % 5000), "v")]
    });
    let t0 = std::time::Instant::now();
    while s.stats().checkpoints < 60 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no 60 checkpoints: {:?}",
            s.stats()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    w.stop();
    let st = s.stats();
    assert_eq!(
        st.full_log_checkpoints, 0,
        "a checkpoint found the log full (it chased the writes made while it logged): {st:?}"
    );
    // one record per checkpoint: the writes pending when it began (nobody waited for others)
    assert!(
        st.wal_appends <= st.checkpoints + 1,
        "more than one record per checkpoint: {st:?}"
    );
    s.close().unwrap();
}
