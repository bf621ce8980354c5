//! The stored form of values (codec.rs) through the whole store: documents are compressed on
//! disk and read back as written, data directories written before the codec open unchanged,
//! and a data directory of a newer store format is refused.

use super::*;

const TWIN: &str = r#"{"t":{"thingId":"ns:t1","policyId":"ns:t1","attributes":{"a0":"xxxxxxxxxxxxxxxx"},"features":{"f":{"properties":{"p0":"xxxxxxxxxxxxxxxx"}}}},"r":1,"c":1796594120282,"m":1796594120282}"#;

pub(super) fn t_documents_are_compressed_on_disk(kind: BackendKind) {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = open(kind, &dir);
    let q = s.submit(vec![
        put(Tree::Things, "ns:t1", TWIN),
        put(Tree::Index, "i", TWIN),
    ]);
    block_on(s.durable(q)).expect("durable");
    // read back as written: from the overlay, after a checkpoint, after a reopen
    assert_eq!(get_s(&s, Tree::Things, "ns:t1").as_deref(), Some(TWIN));
    block_on(s.checkpoint()).expect("checkpoint");
    assert_eq!(get_s(&s, Tree::Things, "ns:t1").as_deref(), Some(TWIN));
    let scanned = s.scan(Tree::Things, b"ns:", None, 10).expect("scan");
    assert_eq!(scanned, vec![(b"ns:t1".to_vec(), TWIN.as_bytes().to_vec())]);
    s.close().expect("close");
    drop(s);
    let b = raw_backend(kind, dir.path());
    let stored = b.get(Tree::Things, b"ns:t1").expect("get").expect("stored");
    assert!(
        stored.len() < TWIN.len() / 2,
        "{kind}: {} B on disk for {} B",
        stored.len(),
        TWIN.len()
    );
    let index = b.get(Tree::Index, b"i").expect("get");
    assert_eq!(
        index.as_deref(),
        Some(TWIN.as_bytes()),
        "{kind}: index as is"
    );
    let format = b.get(Tree::Meta, codec::FORMAT_KEY).expect("get");
    assert_eq!(format, Some(vec![codec::FORMAT]), "{kind}: format recorded");
}

pub(super) fn t_data_written_before_the_codec_opens_unchanged(kind: BackendKind) {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        // what the previous version left: plain JSON, no format key
        let b = raw_backend(kind, dir.path());
        b.commit(&[
            put(Tree::Things, "old", TWIN),
            put(
                Tree::Policies,
                "old",
                r#"{"policyId":"ns:old","entries":{}}"#,
            ),
        ])
        .expect("commit");
        b.shut_down().expect("shut down");
        // and a record in its write-ahead log not yet checkpointed (epoch 0: no epoch key)
        let (mut wal, records) =
            super::super::wal::Wal::open(dir.path(), opts(NEVER).wal_bytes, 0).expect("wal");
        assert!(records.is_empty());
        let mut payload = Vec::new();
        super::super::wal::encode_ops(&[put(Tree::Things, "logged", TWIN)], &mut payload);
        wal.append(1, &payload).expect("append");
    }
    let s = open(kind, &dir);
    assert_eq!(get_s(&s, Tree::Things, "old").as_deref(), Some(TWIN));
    assert_eq!(get_s(&s, Tree::Things, "logged").as_deref(), Some(TWIN));
    let p = get_s(&s, Tree::Policies, "old");
    assert_eq!(p.as_deref(), Some(r#"{"policyId":"ns:old","entries":{}}"#));
    let q = s.submit(vec![put(Tree::Things, "new", TWIN)]);
    block_on(s.durable(q)).expect("durable");
    s.close().expect("close");
    drop(s);
    let s = open(kind, &dir);
    let all = s.scan(Tree::Things, b"", None, 10).expect("scan");
    assert_eq!(keys(&all), ["logged", "new", "old"]);
    assert!(all.iter().all(|(_, v)| v == TWIN.as_bytes()), "{kind}");
    assert_eq!(
        s.get(Tree::Meta, codec::FORMAT_KEY).expect("get"),
        Some(vec![codec::FORMAT])
    );
}

pub(super) fn t_newer_format_is_refused(kind: BackendKind) {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let b = raw_backend(kind, dir.path());
        b.commit(&[Op::put(Tree::Meta, codec::FORMAT_KEY, [codec::FORMAT + 1])])
            .expect("commit");
        b.shut_down().expect("shut down");
    }
    let e = Store::open_with(kind, dir.path(), &opts(NEVER)).expect_err("newer format");
    assert!(e.0.contains("newer edgetwin"), "{kind}: {e}");
}
