//! Backpressure of writes on the store (`Store::ready`): at `max_pending_ops` keys in the
//! overlay every producer waits until a checkpoint frees room (the hard memory bound); past
//! the soft bound (3/4 of it), while a checkpoint applies in parts (sled), producers get room
//! in proportion to the part of it applied, so they slow down steadily instead of all waiting
//! at the hard bound for the whole checkpoint at once (0.1-1.7 s at peak, evt7).

use std::sync::atomic::Ordering;

use super::Store;

/// Whether a producer may submit at `pending` keys under the hard bound `hard`, while a
/// checkpoint of `total` ops (0: none reports its parts), begun at `base` keys pending, has
/// applied `done`: below the soft bound always; above it, below a bound that rises from the
/// soft one (or `base`, if higher: producers never wait for the whole checkpoint) to the hard
/// one as the checkpoint proceeds (its end frees what it wrote).
pub(super) fn admits(pending: usize, hard: usize, base: usize, done: usize, total: usize) -> bool {
    if pending >= hard {
        return false;
    }
    let floor = (hard - hard / 4).max(base).min(hard);
    if total == 0 || pending < floor {
        return true;
    }
    let room = (hard - floor) as u128 * done.min(total) as u128 / total as u128;
    (pending as u128) < floor as u128 + room
}

/// Keys of room a paced producer gets per op a checkpoint of `total` ops begun at `base` keys
/// pending applies (`admits`).
pub(super) fn room_per_op(hard: usize, base: usize, total: usize) -> f64 {
    let floor = (hard - hard / 4).max(base).min(hard);
    (hard - floor) as f64 / total.max(1) as f64
}

impl Store {
    /// Backpressure: resolves when the overlay holds fewer keys than its bound (a checkpoint
    /// empties it) and, past its soft bound, once the running checkpoint made room (`admits`);
    /// await it BEFORE taking a per-thing lock and calling `submit`.
    pub async fn ready(&self) {
        let sh = &self.inner.shared;
        let ok = || {
            sh.stopped.load(Ordering::Acquire)
                || admits(
                    sh.pending.load(Ordering::Acquire),
                    sh.opts.max_pending_ops,
                    sh.ckpt_base.load(Ordering::Acquire),
                    sh.ckpt_done.load(Ordering::Acquire),
                    sh.ckpt_total.load(Ordering::Acquire),
                )
        };
        loop {
            if ok() {
                return;
            }
            let listener = sh.ready_event.listen();
            if ok() {
                return;
            }
            listener.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_soft_bound_producers_get_room_as_the_checkpoint_proceeds() {
        let hard = 65_536;
        let soft = 49_152;
        let at = |pending, base, done, total| admits(pending, hard, base, done, total);
        // no checkpoint in parts running: the hard bound only (as before)
        assert!(at(hard - 1, 0, 0, 0));
        assert!(!at(hard, 0, 0, 0));
        // below the soft bound: always
        assert!(at(soft - 1, 0, 0, 40_000));
        // past it: in proportion to the part applied
        assert!(!at(soft, 0, 0, 40_000));
        assert!(at(soft, 0, 256, 40_000));
        assert!(!at(soft + 8_192, 0, 20_000, 40_000));
        assert!(at(soft + 8_191, 0, 20_000, 40_000));
        assert!(at(hard - 1, 0, 40_000, 40_000));
        // begun past the soft bound: from there (nobody waits for the whole checkpoint)
        assert!(at(59_999, 60_000, 0, 40_000) && !at(60_000, 60_000, 0, 40_000));
        assert!(at(62_767, 60_000, 20_000, 40_000) && !at(62_768, 60_000, 20_000, 40_000));
        // the hard bound holds whatever the progress
        assert!(!at(hard, 0, 40_000, 40_000));
        assert!(!at(hard + 5, hard + 5, 80_000, 40_000));
        // the smallest bound (`with_backend` makes it at least 1)
        assert!(admits(0, 1, 0, 0, 10) && !admits(1, 1, 0, 10, 10));
        // room given per op applied: what is left between the floor and the hard bound
        assert_eq!(room_per_op(hard, 0, 16_384), 1.0);
        assert_eq!(room_per_op(hard, 57_344, 16_384), 0.5);
        assert_eq!(room_per_op(hard, hard + 5, 16_384), 0.0);
    }
}
