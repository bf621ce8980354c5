//! The codec's LZ4 block writer: values compressed against `codec::DICT_1` with a table of the
//! dictionary's 4-byte sequences built once per process (lz4_flex hashes the whole dictionary
//! into a fresh table for every value, which cost more than compressing a twin). Greedy
//! matching over the stream `dictionary ++ value`; any LZ4 block decoder with the dictionary reads it.

use std::cell::RefCell;
use std::sync::OnceLock;

use super::codec::DICT_1;

/// Slots of the sequence table (12-bit hash of 4 bytes).
const SLOTS: usize = 1 << 12;
/// Shortest match the block format has.
const MIN_MATCH: usize = 4;
/// The format's end rules: the last 5 bytes are literals, and no match starts within the last 12.
const TAIL_LITERALS: usize = 5;
const LAST_MATCH_START: usize = 12;

/// True if `compress` takes a value of this length: stream positions fit the table's `u16`s
/// and every offset fits the format's 16 bits.
pub fn fits(len: usize) -> bool {
    DICT_1.len() + len < u16::MAX as usize
}

fn read4(buf: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    u32::from_le_bytes(b)
}

fn slot(seq: u32) -> usize {
    // Knuth's multiplicative hash; the top 12 bits pick the slot
    (seq.wrapping_mul(2_654_435_761) >> 20) as usize
}

/// Stream position (into `dictionary ++ value`) last seen per slot, plus the slots one value
/// wrote (restored from the dictionary's table after it, cheaper than copying all 8 KiB).
struct Table {
    pos: Box<[u16; SLOTS]>,
    written: Vec<u16>,
}

impl Table {
    fn of_dictionary() -> Table {
        let mut pos = Box::new([0u16; SLOTS]);
        for at in (0..=DICT_1.len() - 8).step_by(3) {
            pos[slot(read4(DICT_1, at))] = at as u16;
        }
        Table {
            pos,
            written: Vec::new(),
        }
    }

    /// The previous position with `seq`'s slot, and `at` recorded in its place.
    fn swap(&mut self, seq: u32, at: usize) -> usize {
        let s = slot(seq);
        self.written.push(s as u16);
        std::mem::replace(&mut self.pos[s], at as u16) as usize
    }

    fn restore(&mut self, dictionary: &Table) {
        for s in self.written.drain(..) {
            self.pos[s as usize] = dictionary.pos[s as usize];
        }
        if self.written.capacity() > SLOTS {
            self.written = Vec::new();
        }
    }
}

/// A length in the format's continuation bytes (after a nibble of 15).
fn push_length(out: &mut Vec<u8>, mut rest: usize) {
    while rest >= 255 {
        out.push(255);
        rest -= 255;
    }
    out.push(rest as u8);
}

/// One sequence: `literals`, then (unless it is the block's last) a match of `len` at `offset`.
fn push_sequence(out: &mut Vec<u8>, literals: &[u8], m: Option<(u16, usize)>) {
    let lit_nibble = literals.len().min(15) as u8;
    let match_nibble = m.map_or(0, |(_, len)| (len - MIN_MATCH).min(15) as u8);
    out.push(lit_nibble << 4 | match_nibble);
    if literals.len() >= 15 {
        push_length(out, literals.len() - 15);
    }
    out.extend_from_slice(literals);
    if let Some((offset, len)) = m {
        out.extend_from_slice(&offset.to_le_bytes());
        if len - MIN_MATCH >= 15 {
            push_length(out, len - MIN_MATCH - 15);
        }
    }
}

/// Appends the LZ4 block of `value` against `DICT_1` to `out` (`fits(value.len())` must hold).
pub fn compress(value: &[u8], out: &mut Vec<u8>) {
    static DICTIONARY: OnceLock<Table> = OnceLock::new();
    thread_local! {
        static TABLE: RefCell<Option<Table>> = const { RefCell::new(None) };
    }
    debug_assert!(fits(value.len()));
    let dictionary = DICTIONARY.get_or_init(Table::of_dictionary);
    let fresh = || Table {
        pos: dictionary.pos.clone(),
        written: Vec::new(),
    };
    TABLE.with(|t| match t.try_borrow_mut() {
        Ok(mut t) => {
            let t = t.get_or_insert_with(fresh);
            write_block(value, t, out);
            t.restore(dictionary);
        }
        Err(_) => write_block(value, &mut fresh(), out),
    })
}

/// Bytes equal from `a[i..end]` and `b[j..]`.
fn common(a: &[u8], i: usize, end: usize, b: &[u8], j: usize) -> usize {
    a[i..end]
        .iter()
        .zip(&b[j..])
        .take_while(|(x, y)| x == y)
        .count()
}

fn write_block(value: &[u8], table: &mut Table, out: &mut Vec<u8>) {
    let base = DICT_1.len();
    let mut pending = 0; // first literal not yet written
    if value.len() > LAST_MATCH_START {
        let last_start = value.len() - LAST_MATCH_START;
        let match_end = value.len() - TAIL_LITERALS;
        let mut at = 0;
        let mut misses = 0usize;
        while at <= last_start {
            let seq = read4(value, at);
            let cand = table.swap(seq, base + at);
            // the candidate's bytes: in the dictionary, or earlier in the value
            let in_value = cand >= base;
            let (src, from) = match in_value {
                true => (value, cand - base),
                false => (DICT_1, cand),
            };
            if from + MIN_MATCH > src.len() || read4(src, from) != seq || (in_value && from >= at) {
                misses += 1;
                at += 1 + (misses >> 6);
                continue;
            }
            misses = 0;
            let mut len =
                MIN_MATCH + common(value, at + MIN_MATCH, match_end, src, from + MIN_MATCH);
            // take literals before it that match too
            let (mut start, mut from) = (at, from);
            while start > pending && from > 0 && value[start - 1] == src[from - 1] {
                start -= 1;
                from -= 1;
                len += 1;
            }
            let offset = base + start - if in_value { base + from } else { from };
            push_sequence(out, &value[pending..start], Some((offset as u16, len)));
            pending = start + len;
            // the match's end goes into the table (the dictionary keeps the rest: its longer
            // strings match better later than the value's own covered positions)
            if pending - 2 <= last_start {
                table.swap(read4(value, pending - 2), base + pending - 2);
            }
            at = pending;
        }
    }
    push_sequence(out, &value[pending..], None);
}
