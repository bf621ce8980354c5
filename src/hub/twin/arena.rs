//! The twin cache's compact tier: twins in their stored form (LZ4), packed one after another
//! in a ring of fixed segments (a log), found through a table from a keyed 32-bit hash of the
//! ID to the record's place. No allocation per entry: ~120 B a twin of the bench's shape where
//! a map entry with its own allocations took ~330. Oldest out first; the room of a removed
//! record comes back when the tail passes it (live records found there move to the head).

use super::cache::Memo;
use crate::fasthash::{Keyed, Map};
use crate::search::index::Size;
use std::hash::BuildHasher;
use std::sync::Weak;

/// Bytes of a segment of the ring (allocated when the head first enters it).
const SEG: usize = 16 * 1024;
/// A record's header: ID length (u8), stored length (u16), size (u32, `u32::MAX`: overflow),
/// memo (u8: 0 none, else its place in `memos` plus one) and the memos' epoch it is of (u32).
const HEAD: usize = 12;
/// What the table costs per bucket: a (hash, place) pair of u32s and a control byte.
const SLOT: usize = 9;
/// Enforcers the tier keeps for its records (the twins of a fleet mostly share a few).
const PALETTE: usize = 64;

/// A twin of the compact tier, copied out of it.
pub struct Compact {
    pub stored: Vec<u8>,
    pub size: Size,
    pub policy: Option<Memo>,
}

/// The ring, its table and the memos its records name.
pub struct Arena {
    segs: Vec<Box<[u8]>>,
    /// bytes of the ring (a multiple of `SEG`, below 4 GiB)
    ring: u64,
    /// where the next record goes and where the oldest starts (positions grow; the place in
    /// the ring is a position modulo `ring`)
    head: u64,
    tail: u64,
    /// keyed hash of an ID -> its record's place (an ID of the same hash replaces it)
    table: Map<u32, u32>,
    hasher: Keyed,
    /// bytes of the records in the table, and what they may reach (room left to move)
    live: usize,
    target: usize,
    max_entries: usize,
    budget: usize,
    memos: Vec<Memo>,
    memo_generation: u64,
    epoch: u32,
    scratch: Vec<u8>,
}

fn size_code(size: Size) -> Option<u32> {
    match size {
        Size::Overflow => Some(u32::MAX),
        Size::Entries(n) => u32::try_from(n).ok().filter(|&n| n != u32::MAX),
    }
}

impl Arena {
    /// An empty tier of at most `budget` bytes (ring and table; nothing is allocated until
    /// a twin comes). The table gets up to an eighth of it, the ring the rest.
    pub fn new(budget: usize) -> Arena {
        let budget = budget.min(3 << 30);
        let buckets = match budget / 8 / SLOT {
            0 => 0,
            n => 1usize << n.ilog2(),
        };
        let ring = (budget - buckets * SLOT) / SEG * SEG;
        Arena {
            segs: Vec::new(),
            ring: ring as u64,
            head: 0,
            tail: 0,
            table: Map::default(),
            hasher: Keyed::default(),
            live: 0,
            target: ring - ring / 16,
            max_entries: buckets / 8 * 7,
            budget,
            memos: Vec::new(),
            memo_generation: 0,
            epoch: 1,
            scratch: Vec::new(),
        }
    }

    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Twins held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Bytes held: the segments allocated and the table.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.segs.len() * SEG + self.table.capacity() / 7 * 8 * SLOT
    }

    fn key(&self, id: &[u8]) -> u32 {
        self.hasher.hash_one(id) as u32
    }

    fn read(&self, pos: u64, out: &mut [u8]) {
        let mut p = (pos % self.ring) as usize;
        let mut done = 0;
        while done < out.len() {
            let (seg, off) = (p / SEG, p % SEG);
            let n = (out.len() - done).min(SEG - off);
            out[done..done + n].copy_from_slice(&self.segs[seg][off..off + n]);
            done += n;
            p = (p + n) % self.ring as usize;
        }
    }

    fn write(&mut self, pos: u64, data: &[u8]) {
        let mut p = (pos % self.ring) as usize;
        let mut done = 0;
        while done < data.len() {
            let (seg, off) = (p / SEG, p % SEG);
            if seg == self.segs.len() {
                self.segs.push(vec![0u8; SEG].into_boxed_slice());
            }
            let n = (data.len() - done).min(SEG - off);
            self.segs[seg][off..off + n].copy_from_slice(&data[done..done + n]);
            done += n;
            p = (p + n) % self.ring as usize;
        }
    }

    /// The header at `pos`: (ID length, stored length, the whole record's length).
    fn header(&self, pos: u64) -> ([u8; HEAD], usize, usize, usize) {
        let mut h = [0u8; HEAD];
        self.read(pos, &mut h);
        let (id_len, stored_len) = (h[0] as usize, u16::from_le_bytes([h[1], h[2]]) as usize);
        (h, id_len, stored_len, HEAD + id_len + stored_len)
    }

    /// The key, place and length of the record of `id`.
    fn find(&self, id: &str) -> Option<(u32, u32, usize)> {
        if self.table.is_empty() {
            return None;
        }
        let key = self.key(id.as_bytes());
        let place = *self.table.get(&key)?;
        let (_, id_len, _, len) = self.header(place.into());
        let mut found = [0u8; 255];
        self.read(u64::from(place) + HEAD as u64, &mut found[..id_len]);
        (found[..id_len] == *id.as_bytes()).then_some((key, place, len))
    }

    fn decode(&self, place: u32) -> Compact {
        let (h, id_len, stored_len, _) = self.header(place.into());
        let mut stored = vec![0u8; stored_len];
        self.read(u64::from(place) + (HEAD + id_len) as u64, &mut stored);
        let size = match u32::from_le_bytes([h[3], h[4], h[5], h[6]]) {
            u32::MAX => Size::Overflow,
            n => Size::Entries(n as usize),
        };
        let epoch = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
        let policy = match h[7] {
            0 => None,
            _ if epoch != self.epoch => None,
            i => self.memos.get(usize::from(i) - 1).cloned(),
        };
        Compact {
            stored,
            size,
            policy,
        }
    }

    /// The twin `id`, copied out.
    pub fn get(&self, id: &str) -> Option<Compact> {
        let (_, place, _) = self.find(id)?;
        Some(self.decode(place))
    }

    /// Takes the twin `id` out (its room comes back when the tail passes it).
    pub fn remove(&mut self, id: &str) -> Option<Compact> {
        let (key, place, len) = self.find(id)?;
        let c = self.decode(place);
        self.table.remove(&key);
        self.live -= len;
        Some(c)
    }

    /// Drops the twin `id` if held (its room comes back when the tail passes it).
    pub fn discard(&mut self, id: &str) {
        if let Some((key, _, len)) = self.find(id) {
            self.table.remove(&key);
            self.live -= len;
        }
    }

    /// The memo's reference in a record: (its place plus one, the epoch), or (0, 0).
    fn memo_ref(&mut self, memo: Option<&Memo>) -> (u8, u32) {
        let Some(m) = memo else { return (0, 0) };
        if m.generation > self.memo_generation || self.memos.is_empty() {
            // memos of an older generation of policies are never valid again: a new epoch
            self.memos.clear();
            self.memo_generation = m.generation;
            self.epoch = self.epoch.wrapping_add(1);
            if self.epoch == 0 {
                // records of an epoch this old could be taken for new: none are kept
                self.clear();
                self.epoch = 1;
            }
        }
        if m.generation != self.memo_generation {
            return (0, 0);
        }
        let same = |k: &Memo| Weak::ptr_eq(&k.enforcer, &m.enforcer) && k.until == m.until;
        let i = match self.memos.iter().position(same) {
            Some(i) => i,
            None if self.memos.len() < PALETTE => {
                self.memos.push(m.clone());
                self.memos.len() - 1
            }
            None => return (0, 0),
        };
        (i as u8 + 1, self.epoch)
    }

    /// Caches `stored` (the twin's compact form) for `id`, replacing what it held for it.
    /// Not cached: an ID over 255 bytes, a twin over an eighth of the ring.
    pub fn put(&mut self, id: &str, stored: &[u8], size: Size, policy: Option<&Memo>) {
        if self.ring == 0 || self.max_entries == 0 {
            return;
        }
        let key = self.key(id.as_bytes());
        if let Some(place) = self.table.remove(&key) {
            self.live -= self.header(place.into()).3;
        }
        let len = HEAD + id.len() + stored.len();
        let Some(size) = size_code(size) else { return };
        if id.is_empty() || id.len() > 255 || stored.len() > usize::from(u16::MAX) {
            return;
        }
        if len > self.target / 8 {
            return;
        }
        // room in the budget: the oldest out
        while self.live + len > self.target || self.table.len() >= self.max_entries {
            if !self.pop(false) {
                break;
            }
        }
        // room in the ring: removed records reclaimed, live ones moved to the head
        while self.ring - (self.head - self.tail) < len as u64 {
            self.pop(true);
        }
        let (memo, epoch) = self.memo_ref(policy);
        let mut h = [0u8; HEAD];
        h[0] = id.len() as u8;
        h[1..3].copy_from_slice(&(stored.len() as u16).to_le_bytes());
        h[3..7].copy_from_slice(&size.to_le_bytes());
        h[7] = memo;
        h[8..12].copy_from_slice(&epoch.to_le_bytes());
        let head = self.head;
        self.write(head, &h);
        self.write(head + HEAD as u64, id.as_bytes());
        self.write(head + (HEAD + id.len()) as u64, stored);
        self.table.insert(key, (head % self.ring) as u32);
        self.head += len as u64;
        self.live += len;
        if self.table.capacity() > self.max_entries {
            // the table grew past its share: its removed slots (tombstones) used the room it
            // keeps free, and std's map then doubles; back to its buckets, rehashed
            self.table.shrink_to(self.max_entries);
        }
    }

    /// The oldest record out of the ring: dropped when removed, else evicted (`keep` false) or
    /// moved to the head. False: the ring is empty.
    fn pop(&mut self, keep: bool) -> bool {
        if self.tail == self.head {
            return false;
        }
        let tail = self.tail;
        let place = (tail % self.ring) as u32;
        let (_, id_len, _, len) = self.header(tail);
        let mut id = [0u8; 255];
        self.read(tail + HEAD as u64, &mut id[..id_len]);
        let key = self.key(&id[..id_len]);
        self.tail += len as u64;
        if self.table.get(&key) != Some(&place) {
            return true;
        }
        if !keep {
            self.table.remove(&key);
            self.live -= len;
            return true;
        }
        let mut rec = std::mem::take(&mut self.scratch);
        rec.resize(len, 0);
        self.read(tail, &mut rec);
        let head = self.head;
        self.write(head, &rec);
        self.scratch = rec;
        self.table.insert(key, (head % self.ring) as u32);
        self.head += len as u64;
        true
    }

    fn clear(&mut self) {
        self.table.clear();
        self.head = 0;
        self.tail = 0;
        self.live = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Enforcer;
    use std::collections::HashMap;
    use std::sync::Arc;

    fn stored(i: u32, round: u32) -> Vec<u8> {
        format!("twin {i} of round {round}{}", "x".repeat((i % 40) as usize)).into_bytes()
    }

    /// A memo of a new enforcer, and the enforcer (the memo's is weak).
    fn memo(generation: u64) -> (Memo, Arc<Enforcer>) {
        let e = Arc::new(Enforcer::from_policy(&serde_json::json!({}), 0, None));
        let m = Memo {
            generation,
            until: i64::MAX,
            enforcer: Arc::downgrade(&e),
        };
        (m, e)
    }

    #[test]
    fn what_fits_stays_through_removals_and_the_ring_turning_many_times() {
        let mut a = Arena::new(256 * 1024);
        let (n, mut rng) = (1000u32, fastrand::Rng::with_seed(7));
        let mut model = HashMap::new();
        for i in 0..n {
            a.put(
                &format!("ns:t{i}"),
                &stored(i, 0),
                Size::Entries(i as usize),
                None,
            );
            model.insert(i, 0);
        }
        // ~50 B records, ~60 KB in all: far below the budget, so none may be lost while a
        // write takes one out and the next eviction puts it back (~20 turns of the ring)
        for round in 1..100_000u32 {
            let i = rng.u32(0..n);
            let id = format!("ns:t{i}");
            let c = a.remove(&id).expect("kept");
            assert_eq!(c.stored, stored(i, model[&i]), "{id}");
            assert_eq!(c.size, Size::Entries(i as usize));
            assert!(a.get(&id).is_none(), "removed");
            a.put(&id, &stored(i, round), Size::Entries(i as usize), None);
            model.insert(i, round);
        }
        assert!(a.head > 10 * a.ring, "the ring turned");
        assert_eq!(a.len(), n as usize);
        for (i, round) in &model {
            let c = a.get(&format!("ns:t{i}")).expect("kept");
            assert_eq!(c.stored, stored(*i, *round));
        }
        assert!(a.bytes() <= a.budget(), "{} > {}", a.bytes(), a.budget());
    }

    #[test]
    fn over_the_budget_the_oldest_go_and_what_is_found_is_the_latest() {
        let mut a = Arena::new(64 * 1024);
        let mut rng = fastrand::Rng::with_seed(9);
        let mut latest = HashMap::new();
        for round in 0..50_000u32 {
            let i = rng.u32(0..5000);
            let id = format!("ns:t{i}");
            if rng.u8(0..4) == 0 {
                a.remove(&id);
                latest.remove(&i);
            } else {
                a.put(&id, &stored(i, round), Size::Overflow, None);
                latest.insert(i, round);
            }
            assert!(a.live <= a.target && a.head - a.tail <= a.ring);
            assert!(
                a.table.capacity() <= a.max_entries,
                "the table stays in its share"
            );
        }
        assert!(a.len() > 100 && a.len() < 5000, "{}", a.len());
        assert!(a.bytes() <= a.budget());
        for i in 0..5000 {
            if let Some(c) = a.get(&format!("ns:t{i}")) {
                assert_eq!(
                    c.stored,
                    stored(i, latest[&i]),
                    "never a stale or another's"
                );
                assert_eq!(c.size, Size::Overflow);
            }
        }
        // the newest puts are kept: evicted oldest first
        a.put("ns:new", b"new", Size::Entries(1), None);
        assert_eq!(a.get("ns:new").unwrap().stored, b"new");
    }

    #[test]
    fn memos_come_back_while_of_the_latest_generation_and_long_ids_are_not_kept() {
        let mut a = Arena::new(64 * 1024);
        let ((m1, _e1), (m2, _e2)) = (memo(1), memo(2));
        a.put("ns:a", b"a", Size::Entries(1), Some(&m1));
        a.put("ns:b", b"b", Size::Entries(1), Some(&m1));
        a.put("ns:c", b"c", Size::Entries(1), None);
        let got = a.get("ns:a").unwrap().policy.unwrap();
        assert!(Weak::ptr_eq(&got.enforcer, &m1.enforcer) && got.generation == 1);
        assert!(a.get("ns:c").unwrap().policy.is_none());
        // a newer generation: the older memos are not handed out (never valid again)
        a.put("ns:d", b"d", Size::Entries(1), Some(&m2));
        assert!(a.get("ns:a").unwrap().policy.is_none());
        let got = a.get("ns:d").unwrap().policy.unwrap();
        assert!(Weak::ptr_eq(&got.enforcer, &m2.enforcer));
        // one of an older generation is not kept
        a.put("ns:e", b"e", Size::Entries(1), Some(&m1));
        assert!(a.get("ns:e").unwrap().policy.is_none());
        a.put(&"x".repeat(256), b"long", Size::Entries(1), None);
        assert!(a.get(&"x".repeat(256)).is_none());
        assert_eq!(a.len(), 5);
        // a zero budget holds nothing
        let mut z = Arena::new(0);
        z.put("ns:a", b"a", Size::Entries(1), None);
        assert!(z.get("ns:a").is_none() && z.bytes() == 0);
    }
}
