//! Harnesses of the store's parsers: backup files (`store::backup::Reader`: a damaged backup is
//! refused with an error, only the intact one is accepted) and stored values (`store::codec`:
//! every value round trips; damaged ones and arbitrary LZ4 blocks decode within the codec's
//! bound or are refused).

use super::{Checked, Verdict};
use crate::store::backup;
use crate::store::codec;
use crate::store::Tree;
use std::sync::OnceLock;

/// A small intact backup: entries in every tree, two frames.
fn intact() -> &'static [u8] {
    static B: OnceLock<Vec<u8>> = OnceLock::new();
    B.get_or_init(|| {
        let entries = |tree: Tree| -> Vec<(Vec<u8>, Vec<u8>)> {
            (0..4u8)
                .map(|i| {
                    let k = format!("{}:{i}", tree.name()).into_bytes();
                    let v = vec![b'a' + i; 40_000 * usize::from(i == 3 && tree == Tree::Things)];
                    (k, v)
                })
                .collect()
        };
        let mut out = Vec::new();
        let scan = |tree: Tree, after: Option<&[u8]>| {
            let all = entries(tree);
            Ok(all
                .into_iter()
                .filter(|(k, _)| after.is_none_or(|a| k.as_slice() > a))
                .collect())
        };
        let _ = backup::write_from(scan, 7, 1, &mut out);
        out
    })
}

/// Input = edits of an intact backup: byte 0 picks the kind (0: change bytes, `off_lo off_hi
/// xor` triples; 1: cut at `off_lo off_hi`; 2: append the rest); empty = the intact file.
/// Only the intact file may be accepted (an edit may undo another: then it is intact).
pub fn backup_file(b: &[u8]) -> Checked {
    let base = intact();
    let mut data = base.to_vec();
    if let Some((&kind, rest)) = b.split_first() {
        let at = |lo: u8, hi: u8| usize::from(u16::from_le_bytes([lo, hi])) % base.len();
        match kind % 3 {
            0 => {
                for t in rest.chunks_exact(3) {
                    data[at(t[0], t[1])] ^= t[2].max(1);
                }
            }
            1 => data.truncate(at(*rest.first().unwrap_or(&0), *rest.get(1).unwrap_or(&0))),
            _ => data.extend_from_slice(rest),
        }
    }
    match backup::check(data.as_slice()) {
        Ok(counts) => {
            Verdict::ensure(data == base, || "a changed backup was accepted".into())?;
            Verdict::ensure(counts.total() == 20 && counts.seq == 7, || {
                format!("wrong counts {counts:?}")
            })?;
            Ok(Verdict::Accepted)
        }
        Err(_) => Ok(Verdict::Rejected),
    }
}

/// Any bytes as a written value: stored and read back unchanged; its stored form cut or with
/// a byte changed: decoded or refused; and the bytes as the LZ4 part of a stored value (length,
/// block): decoded within the codec's bound or refused. The verdict is the last one's.
pub fn stored_value(b: &[u8]) -> Checked {
    let stored = codec::encode(b.to_vec());
    let back = codec::decode(stored.clone());
    Verdict::ensure(back.as_deref() == Ok(b), || {
        "a value did not round trip".into()
    })?;
    let bounded = |v: &[u8], what: &str| -> Result<bool, Verdict> {
        match codec::decode(v.to_vec()) {
            Ok(out) => {
                Verdict::ensure(out.len() <= codec::MAX_VALUE, || {
                    format!("{what}: {} B decoded", out.len())
                })?;
                Ok(true)
            }
            Err(_) => Ok(false),
        }
    };
    bounded(&stored[..stored.len() / 2], "cut")?;
    if stored.len() > 1 {
        let mut changed = stored.clone();
        let sum = b
            .iter()
            .fold(0usize, |a, &x| a.wrapping_mul(31).wrapping_add(x.into()));
        changed[1 + sum % (stored.len() - 1)] ^= 0x5a;
        bounded(&changed, "changed")?;
    }
    let block = [&[1u8][..], b].concat();
    Ok(if bounded(&block, "block")? {
        Verdict::Accepted
    } else {
        Verdict::Rejected
    })
}
