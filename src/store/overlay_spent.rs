//! The generations a checkpoint released, freed a few entries per submit by the threads that
//! write (which allocated their keys and values: glibc frees a chunk cheapest on the thread it
//! came from), not all at once by the store's writer; at most one checkpoint's worth waits (the
//! writer frees an older one itself, and what is left when it goes idle).

use std::collections::{btree_set, hash_map};
use std::sync::Arc;

use super::overlay::{Gen, Pending};

/// Entries a submit frees at most: a twin command adds ~5-8 to the overlay, so a checkpoint's
/// generations are freed about twice as fast as the overlay fills again.
pub(crate) const SWEEP: usize = 16;

/// One released table being emptied.
enum Drain {
    Map(hash_map::IntoIter<Vec<u8>, Pending>),
    Keys(btree_set::IntoIter<Vec<u8>>),
}

/// What a sweep took out of a drained table (held only to be dropped by the caller, after the
/// state lock).
#[allow(dead_code)]
enum Item {
    Entry((Vec<u8>, Pending)),
    Key(Vec<u8>),
    /// an emptied table (its memory)
    Done(Drain),
}

/// Released generations not freed yet.
#[derive(Default)]
pub(crate) struct Spent {
    /// released; the writer's checkpoint may still share them
    gens: Vec<Arc<Gen>>,
    /// the tables of released generations nobody else holds, being emptied
    draining: Vec<Drain>,
}

/// What one submit frees, after the state lock (`Overlay::sweep`).
pub(crate) struct Swept([Option<Item>; SWEEP]);

impl Default for Swept {
    fn default() -> Swept {
        Swept(std::array::from_fn(|_| None))
    }
}

impl Swept {
    /// Entries and tables taken (tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.iter().filter(|i| i.is_some()).count()
    }
}

impl Spent {
    /// Spent generations `gens` (released by a checkpoint).
    pub(crate) fn of(gens: Vec<Arc<Gen>>) -> Spent {
        Spent {
            gens,
            draining: Vec::new(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.gens.is_empty() && self.draining.is_empty()
    }

    /// Moves up to `SWEEP` entries (or emptied tables) into `out`, from generations that no
    /// one else holds. O(SWEEP): nothing is freed here (under the state lock).
    pub(crate) fn sweep(&mut self, out: &mut Swept) {
        let mut n = 0;
        while n < SWEEP {
            let Some(d) = self.draining.last_mut() else {
                // the next generation the writer no longer shares
                let Some(i) = self.gens.iter().position(|g| Arc::strong_count(g) == 1) else {
                    return;
                };
                match Arc::try_unwrap(self.gens.swap_remove(i)) {
                    Ok(g) => self.start(g),
                    Err(g) => {
                        self.gens.push(g);
                        return;
                    }
                }
                continue;
            };
            let item = match d {
                Drain::Map(it) => it.next().map(Item::Entry),
                Drain::Keys(it) => it.next().map(Item::Key),
            };
            out.0[n] = Some(match item {
                Some(item) => item,
                None => Item::Done(self.draining.pop().expect("drained table")),
            });
            n += 1;
        }
    }

    /// Queues the tables of `g` for emptying (their orders too, which copy the keys).
    fn start(&mut self, g: Gen) {
        for t in g.into_trees() {
            if !t.map.is_empty() || t.map.capacity() > 0 {
                self.draining.push(Drain::Map(t.map.into_iter()));
            }
            let orders = [t.ordered, t.shared_order.into_inner()];
            for o in orders.into_iter().flatten() {
                self.draining.push(Drain::Keys(o.into_iter()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::overlay::Overlay;
    use crate::store::{Op, Tree};

    fn write(o: &mut Overlay, seq: u64, n: usize) {
        let ops = (0..n)
            .map(|i| Op::put(Tree::History, format!("k{seq}-{i}"), vec![1; 8]))
            .collect();
        o.record(seq, ops);
    }

    /// Sweeps until nothing is left; returns the sweeps that took something.
    fn sweeps(o: &mut Overlay) -> usize {
        let mut n = 0;
        loop {
            let mut out = Swept::default();
            o.sweep(&mut out);
            if out.len() == 0 {
                return n;
            }
            assert!(out.len() <= SWEEP);
            n += 1;
        }
    }

    #[test]
    fn released_generations_are_freed_a_few_entries_per_sweep_once_nobody_shares_them() {
        let mut o = Overlay::default();
        write(&mut o, 1, 100);
        let taken = o.snapshot_shared(1);
        write(&mut o, 2, 3);
        assert!(o.release(taken.through()).is_empty(), "nothing left before");
        // the checkpoint still holds them: nothing is taken
        let mut out = Swept::default();
        o.sweep(&mut out);
        assert_eq!(out.len(), 0);
        drop(taken);
        // 100 entries and the emptied table, SWEEP at a time
        assert_eq!(sweeps(&mut o), 101_usize.div_ceil(SWEEP));
        assert!(o.take_spent().is_none());
        // the live generation is untouched
        assert_eq!(o.len(), 3);
        assert_eq!(o.get(Tree::History, b"k2-0"), Some(Some(vec![1; 8])));
    }

    #[test]
    fn a_release_hands_back_what_the_previous_one_left_and_an_idle_writer_takes_the_rest() {
        let mut o = Overlay::default();
        write(&mut o, 1, 10);
        let t = o.snapshot_shared(1);
        assert!(o.release(t.through()).is_empty());
        drop(t);
        write(&mut o, 2, 10);
        let t = o.snapshot_shared(2);
        let left = o.release(t.through());
        assert!(
            !left.is_empty(),
            "the first release's generation, not swept"
        );
        drop((left, t));
        assert!(o.take_spent().is_some());
        assert!(o.take_spent().is_none());
        assert_eq!(o.len(), 0);
    }
}
