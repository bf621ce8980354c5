//! What the uplink does about a cloud error (pure): retry with backoff, look again (the cloud
//! changed: re-read and merge), create instead, refuse for good, or authenticate anew; the
//! exponential backoff with a cap and jitter; the per-thing attempt count that parks a thing
//! that keeps failing.

use std::time::Duration;

/// The decision for a failed cloud command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// transient (408, 429, 502-504, timeouts, a lost connection): try again after a backoff,
    /// for as long as it takes (a cloud that is down for hours must not park every thing)
    Retry,
    /// a server error that may be about this change (500 and other 5xx): try again after a
    /// backoff, at most `max_attempts` times, then park the thing as refused
    Fault,
    /// the cloud's version changed under us (412 `precondition.failed`, 409 on create):
    /// retrieve it and merge again
    Stale,
    /// the thing does not exist in the cloud (404 `things:thing.notfound`): create it
    Missing,
    /// the cloud will not take this change whatever we do (400, 403, 413, a missing policy):
    /// report it and park the thing until it changes locally
    Refuse,
    /// the credentials were not accepted or expired (401): re-read them and reconnect
    Reauthenticate,
}

/// Classifies a cloud error by status and Ditto error code.
pub fn classify(status: u16, code: &str) -> Class {
    match status {
        401 => Class::Reauthenticate,
        404 if code.contains("policy") => Class::Refuse,
        404 => Class::Missing,
        409 | 412 => Class::Stale,
        408 | 425 | 429 | 502..=504 => Class::Retry,
        s if s >= 500 => Class::Fault,
        _ => Class::Refuse,
    }
}

/// Exponential backoff: `first` doubled per failure up to `cap`, then a jitter of up to a
/// quarter taken off (`jitter` in 0..=1, the caller's random number), so that many things
/// or many boxes do not retry in lockstep.
pub fn backoff(failures: u32, first: Duration, cap: Duration, jitter: f64) -> Duration {
    let exp = failures.saturating_sub(1).min(30);
    let full = first.saturating_mul(1u32 << exp).min(cap);
    let off = full.mul_f64(jitter.clamp(0.0, 1.0) / 4.0);
    full.saturating_sub(off)
}

/// The first backoff step of reconnects and thing retries.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// Stale rounds (re-read and merge) in a row before a thing backs off like a transient error
/// (someone in the cloud keeps writing it).
pub const MAX_STALE_ROUNDS: u32 = 4;

/// Failures of one thing's current change that count towards `max_attempts` (faults).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attempts {
    /// failed attempts so far
    pub failures: u32,
}

/// What to do after one more failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// try again at `now + after`
    RetryIn(Duration),
    /// stop: the thing is reported as refused
    GiveUp,
}

impl Attempts {
    /// Counts a failure; after `max` of them the change is given up (a thing stays parked
    /// until it changes again).
    pub fn fail(&mut self, max: u32, cap: Duration, jitter: f64) -> Next {
        self.failures += 1;
        if self.failures >= max {
            return Next::GiveUp;
        }
        Next::RetryIn(backoff(self.failures, FIRST_BACKOFF, cap, jitter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_errors_are_classified() {
        assert_eq!(classify(401, "gateway:jwt.expired"), Class::Reauthenticate);
        assert_eq!(
            classify(404, "things:thing.notfound"),
            Class::Missing,
            "create it"
        );
        assert_eq!(classify(404, "things:policy.notfound"), Class::Refuse);
        assert_eq!(classify(404, "policies:policy.notfound"), Class::Refuse);
        assert_eq!(classify(412, "things:precondition.failed"), Class::Stale);
        assert_eq!(classify(409, "things:thing.conflict"), Class::Stale);
        for s in [408, 429, 502, 503, 504] {
            assert_eq!(classify(s, "x"), Class::Retry, "{s}");
        }
        assert_eq!(classify(500, "x"), Class::Fault);
        for s in [400, 403, 413] {
            assert_eq!(classify(s, "x"), Class::Refuse, "{s}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_taken_off() {
        let (first, cap) = (Duration::from_millis(500), Duration::from_secs(60));
        let steps: Vec<u64> = (1..=10)
            .map(|n| backoff(n, first, cap, 0.0).as_millis() as u64)
            .collect();
        assert_eq!(
            steps,
            [500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]
        );
        assert_eq!(backoff(1000, first, cap, 0.0), cap, "no overflow");
        assert_eq!(backoff(3, first, cap, 1.0), Duration::from_millis(1500));
        assert!(backoff(0, first, cap, 0.5) <= first);
    }

    #[test]
    fn attempts_are_bounded() {
        let mut a = Attempts::default();
        let cap = Duration::from_secs(10);
        assert_eq!(
            a.fail(3, cap, 0.0),
            Next::RetryIn(Duration::from_millis(500))
        );
        assert_eq!(a.fail(3, cap, 0.0), Next::RetryIn(Duration::from_secs(1)));
        assert_eq!(a.fail(3, cap, 0.0), Next::GiveUp);
    }
}
