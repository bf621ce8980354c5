//! `Store::reader`: one backend view per query, yet every read sees what `Store::get` would:
//! writes submitted after the view was taken, and writes a checkpoint moved out of the overlay
//! into the backend after it (the view is replaced then), while writers and checkpoints go on.

use super::*;
use std::time::Instant;

/// The entries with `prefix`, by `scan` or by `each`.
fn entries(r: &Reader, tree: Tree, prefix: &str, each: bool) -> Vec<(String, String)> {
    let s = |b: &[u8]| String::from_utf8(b.to_vec()).expect("utf8");
    if !each {
        let found = r.scan(tree, prefix.as_bytes(), None, 100).expect("scan");
        return found.iter().map(|(k, v)| (s(k), s(v))).collect();
    }
    let mut visited = Vec::new();
    r.each(tree, prefix.as_bytes(), None, 100, &mut |k, v| {
        visited.push((s(k), s(v)));
        true
    })
    .expect("each");
    visited
}

/// The entries with `prefix` (no writes meanwhile: `scan` and `each` agree).
fn all(r: &Reader, tree: Tree, prefix: &str) -> Vec<(String, String)> {
    let scanned = entries(r, tree, prefix, false);
    assert_eq!(
        scanned,
        entries(r, tree, prefix, true),
        "scan and each agree"
    );
    scanned
}

fn get(r: &Reader, tree: Tree, k: &str) -> Option<String> {
    r.get(tree, k.as_bytes())
        .expect("get")
        .map(|v| String::from_utf8(v).expect("utf8"))
}

pub(super) fn t_reader_sees_what_a_checkpoint_moved(kind: BackendKind) {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = open(kind, &dir);
    block_on(s.durable(s.submit(vec![put(Tree::Index, "a", "1")]))).expect("durable");
    eprintln!("cp at {}", line!());
    block_on(s.checkpoint()).expect("checkpoint");
    let r = s.reader();
    assert_eq!(get(&r, Tree::Index, "a").as_deref(), Some("1"), "{kind}");
    // pending: in the overlay only
    s.submit(vec![put(Tree::Index, "a", "3"), put(Tree::Index, "b", "2")]);
    s.submit(vec![put(Tree::Things, "t", "{\"x\":1}")]);
    let want = vec![("a".into(), "3".into()), ("b".into(), "2".into())];
    assert_eq!(all(&r, Tree::Index, ""), want, "{kind}: pending writes");
    // moved into the backend after the reader's view was taken, gone from the overlay
    eprintln!("cp at {}", line!());
    block_on(s.checkpoint()).expect("checkpoint");
    assert_eq!(get(&r, Tree::Index, "b").as_deref(), Some("2"), "{kind}");
    assert_eq!(
        all(&r, Tree::Index, ""),
        want,
        "{kind}: checkpointed writes"
    );
    assert_eq!(get(&r, Tree::Things, "t").as_deref(), Some("{\"x\":1}"));
    assert_eq!(all(&r, Tree::Things, "").len(), 1, "{kind}: decoded");
    s.submit(vec![del(Tree::Index, "a")]);
    assert_eq!(get(&r, Tree::Index, "a"), None, "{kind}: pending delete");
    eprintln!("cp at {}", line!());
    block_on(s.checkpoint()).expect("checkpoint");
    assert_eq!(
        get(&r, Tree::Index, "a"),
        None,
        "{kind}: checkpointed delete"
    );
    assert_eq!(all(&r, Tree::Index, "").len(), 1, "{kind}");
    drop(r);
    s.close().expect("close");
}

/// One writer rewrites KEYS keys in turn (unit i writes `n/k{i % KEYS}` = i) with a checkpoint
/// every few units; one reader, held throughout, never misses a unit submitted before its read
/// began, never sees a key go back, and never fails.
pub(super) fn t_reader_under_writes_and_checkpoints(kind: BackendKind) {
    const KEYS: u64 = 64;
    let dir = tempfile::tempdir().expect("tempdir");
    let o = Options {
        max_pending_ops: 32, // a checkpoint every ~16 units: keys leave the overlay
        ..opts(NEVER)
    };
    let s = Store::open_with(kind, dir.path(), &o).expect("open");
    let writer = Writer::spawn(&s, |i| {
        vec![put(
            Tree::Index,
            &format!("n/k{:02}", i % KEYS),
            &i.to_string(),
        )]
    });
    let r = s.reader();
    let checkpoints = s.stats().checkpoints;
    let mut seen = [0u64; KEYS as usize];
    let (t, mut reads) = (Instant::now(), 0);
    while reads < 300 || s.stats().checkpoints < checkpoints + 10 {
        assert!(t.elapsed() < Duration::from_secs(60), "{kind}: too slow");
        let before = writer.written();
        let vals: Vec<(usize, u64)> = match reads % 3 {
            0 | 1 => entries(&r, Tree::Index, "n/", reads % 3 == 1)
                .into_iter()
                .map(|(k, v)| (k[3..].parse().expect("k"), v.parse().expect("v")))
                .collect(),
            _ => (0..KEYS as usize)
                .filter_map(|j| {
                    get(&r, Tree::Index, &format!("n/k{j:02}")).map(|v| (j, v.parse().expect("v")))
                })
                .collect(),
        };
        for (j, v) in vals {
            assert!(
                v >= seen[j],
                "{kind}: key {j} went back from {} to {v}",
                seen[j]
            );
            seen[j] = v;
        }
        for (j, &v) in seen.iter().enumerate() {
            // the last unit submitted before this read that wrote key j
            let last = (0..before).rev().find(|i| i % KEYS == j as u64);
            assert!(
                last.is_none_or(|l| v >= l),
                "{kind} read {reads}: key {j} is {v}, unit {last:?} was submitted before the read"
            );
        }
        reads += 1;
    }
    writer.stop();
    drop(r);
    s.close().expect("close");
}
