//! The in-memory dirty set (pure data, one entry per thing, so bounded by the number of
//! things whatever the update rate): which things wait for a job, why (a local change, a cloud
//! change), since which store sequence, their backoff and failed attempts. Many changes of one
//! thing coalesce into one entry and so into one job; a thing marked while its job runs is
//! taken again when that job ends.

use super::faults::{backoff, Attempts, Next, FIRST_BACKOFF};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Duration;

/// Why a thing is in the set, as handed to a job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Work {
    /// highest store sequence of a local change it covers (0: none, or found by the scan)
    pub seq: u64,
    /// a local change waits for the cloud's confirmation
    pub local: bool,
    /// the cloud's version moved
    pub cloud: bool,
    /// the highest cloud revision an event announced (0: unknown, retrieve anyway)
    pub cloud_rev: u64,
}

#[derive(Debug, Default)]
struct Entry {
    work: Work,
    attempts: Attempts,
    queued: bool,
    running: bool,
    /// marked again while its job ran
    again: bool,
    not_before: i64,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// both sides agree (or there was nothing to do)
    Synced,
    /// refused for good: parked until the thing is marked again
    Refused,
    /// transient failure (`fault`: counts towards `max_attempts`)
    Retry {
        /// a fault that may be about this change
        fault: bool,
    },
    /// the session ended or timed out under the job: try again on the next session
    Interrupted,
}

/// The dirty set.
#[derive(Debug, Default)]
pub struct Dirty {
    map: HashMap<String, Entry>,
    ready: VecDeque<String>,
    delayed: BTreeSet<(i64, String)>,
    pending: usize,
}

impl Dirty {
    fn touch(&mut self, id: &str, f: impl FnOnce(&mut Work)) {
        let e = self.map.entry(id.to_owned()).or_default();
        let was_local = e.work.local;
        f(&mut e.work);
        if e.work.local && !was_local {
            self.pending += 1;
        }
        e.attempts = Attempts::default();
        if e.running {
            e.again = true;
            return;
        }
        if e.not_before > 0 {
            self.delayed.remove(&(e.not_before, id.to_owned()));
            e.not_before = 0;
        }
        if !e.queued {
            e.queued = true;
            self.ready.push_back(id.to_owned());
        }
    }

    /// A local change (store sequence `seq`, 0 for one found by the startup scan).
    pub fn mark_local(&mut self, id: &str, seq: u64) {
        self.touch(id, |w| {
            w.local = true;
            w.seq = w.seq.max(seq);
        });
    }

    /// A cloud change (`rev`: the revision an event announced; `None`: unknown).
    pub fn mark_cloud(&mut self, id: &str, rev: Option<u64>) {
        self.touch(id, |w| {
            match (w.cloud, rev) {
                (false, Some(r)) => w.cloud_rev = r,
                (true, Some(r)) if w.cloud_rev > 0 => w.cloud_rev = w.cloud_rev.max(r),
                _ => w.cloud_rev = 0,
            }
            w.cloud = true;
        });
    }

    /// Moves things whose backoff ended at `now` to the ready queue; returns when the next
    /// delayed one is due.
    pub fn promote(&mut self, now: i64) -> Option<i64> {
        while let Some((at, id)) = self.delayed.first().cloned() {
            if at > now {
                return Some(at);
            }
            self.delayed.pop_first();
            if let Some(e) = self.map.get_mut(&id) {
                e.not_before = 0;
                if !e.queued && !e.running {
                    e.queued = true;
                    self.ready.push_back(id);
                }
            }
        }
        None
    }

    /// The next thing to work on (its entry is marked running and its work handed over).
    pub fn take(&mut self) -> Option<(String, Work)> {
        while let Some(id) = self.ready.pop_front() {
            if let Some(e) = self.map.get_mut(&id) {
                e.queued = false;
                e.running = true;
                e.again = false;
                return Some((id, e.work));
            }
        }
        None
    }

    /// Ends a job taken with `take`; `cap`, `max_attempts` and `jitter` bound the retries.
    pub fn finish(
        &mut self,
        id: &str,
        outcome: &Outcome,
        now: i64,
        cap: Duration,
        max_attempts: u32,
        jitter: f64,
    ) {
        let Some(e) = self.map.get_mut(id) else {
            return;
        };
        e.running = false;
        if e.again {
            // marked while the job ran: the new change is worked on at once
            e.again = false;
            e.queued = true;
            self.ready.push_back(id.to_owned());
            return;
        }
        let delay = match outcome {
            Outcome::Synced | Outcome::Refused => None,
            Outcome::Interrupted => Some(Duration::ZERO),
            Outcome::Retry { fault: false } => {
                e.attempts.failures += 1;
                Some(backoff(e.attempts.failures, FIRST_BACKOFF, cap, jitter))
            }
            Outcome::Retry { fault: true } => match e.attempts.fail(max_attempts, cap, jitter) {
                Next::RetryIn(d) => Some(d),
                Next::GiveUp => None,
            },
        };
        match delay {
            None => {
                if e.work.local {
                    self.pending -= 1;
                }
                self.map.remove(id);
            }
            Some(d) if d.is_zero() => {
                e.queued = true;
                self.ready.push_back(id.to_owned());
            }
            Some(d) => {
                e.not_before = now + d.as_millis() as i64;
                self.delayed.insert((e.not_before, id.to_owned()));
            }
        }
    }

    /// Things with local changes the cloud has not confirmed.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Things in the set (local or cloud changes).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True if nothing waits.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// True if a thing is waiting or being worked on.
    pub fn contains(&self, id: &str) -> bool {
        self.map.contains_key(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: Duration = Duration::from_secs(60);

    fn run(d: &mut Dirty, outcome: Outcome, now: i64) -> Option<(String, Work)> {
        let t = d.take()?;
        d.finish(&t.0, &outcome, now, CAP, 3, 0.0);
        Some(t)
    }

    #[test]
    fn changes_coalesce_into_one_entry_per_thing() {
        let mut d = Dirty::default();
        for seq in 1..=1000 {
            d.mark_local("n:a", seq);
        }
        d.mark_local("n:b", 5);
        d.mark_cloud("n:a", Some(7));
        assert_eq!((d.len(), d.pending()), (2, 2));
        let (id, w) = d.take().unwrap();
        assert_eq!(id, "n:a");
        assert_eq!(
            w,
            Work {
                seq: 1000,
                local: true,
                cloud: true,
                cloud_rev: 7
            }
        );
        d.finish(&id, &Outcome::Synced, 0, CAP, 3, 0.0);
        assert_eq!((d.len(), d.pending()), (1, 1));
        assert_eq!(run(&mut d, Outcome::Synced, 0).unwrap().0, "n:b");
        assert!(d.is_empty() && d.pending() == 0);
        assert!(d.take().is_none());
    }

    #[test]
    fn a_thing_marked_while_running_is_taken_again() {
        let mut d = Dirty::default();
        d.mark_local("n:a", 1);
        let (id, _) = d.take().unwrap();
        d.mark_local("n:a", 2);
        assert!(d.take().is_none(), "one job per thing at a time");
        d.finish(&id, &Outcome::Synced, 0, CAP, 3, 0.0);
        let (_, w) = d.take().unwrap();
        assert_eq!(w.seq, 2);
    }

    #[test]
    fn retries_back_off_and_faults_give_up() {
        let mut d = Dirty::default();
        d.mark_local("n:a", 1);
        run(&mut d, Outcome::Retry { fault: false }, 1_000);
        assert!(d.take().is_none(), "backing off");
        assert_eq!(d.promote(1_200), Some(1_500));
        assert_eq!(d.promote(1_500), None);
        run(&mut d, Outcome::Retry { fault: true }, 2_000);
        d.promote(100_000);
        run(&mut d, Outcome::Retry { fault: true }, 100_000);
        d.promote(200_000);
        run(&mut d, Outcome::Retry { fault: true }, 200_000);
        assert!(d.is_empty(), "given up after max_attempts faults");
        assert_eq!(d.pending(), 0);
        // a new change brings it back, and a cloud change does too
        d.mark_cloud("n:a", None);
        assert_eq!((d.len(), d.pending()), (1, 0));
        let (_, w) = run(&mut d, Outcome::Interrupted, 0).unwrap();
        assert_eq!((w.cloud, w.cloud_rev), (true, 0));
        assert!(
            d.take().is_some(),
            "interrupted jobs are taken again at once"
        );
    }

    #[test]
    fn a_new_change_cuts_a_backoff_short() {
        let mut d = Dirty::default();
        d.mark_local("n:a", 1);
        run(&mut d, Outcome::Retry { fault: false }, 0);
        assert!(d.take().is_none());
        d.mark_local("n:a", 2);
        assert_eq!(d.take().unwrap().1.seq, 2);
        assert_eq!(d.promote(i64::MAX), None, "no stale delayed entry");
    }
}
