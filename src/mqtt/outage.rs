//! Logging of broker outages, so a gateway without a broker does not fill its log: the first
//! failed attempt of an outage is logged at once, later ones at most every `STILL_EVERY_MS`,
//! and the reconnection says how long the outage lasted. Pure: the caller passes the time.

/// Time between two "still no broker" lines while one outage lasts.
pub const STILL_EVERY_MS: i64 = 10 * 60 * 1000;

/// What to log after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// the first failure of an outage (`lost`: the broker had been connected before)
    First {
        /// true if the bridge was connected before this outage
        lost: bool,
    },
    /// the outage goes on
    Still {
        /// failed attempts so far
        attempts: u64,
        /// minutes since the first failure
        minutes: i64,
    },
}

/// The state of the current outage, if any.
#[derive(Debug, Default)]
pub struct Outage {
    /// (first failure, last line logged, failed attempts) while an outage lasts
    current: Option<(i64, i64, u64)>,
    /// true once the broker was connected in this process
    was_connected: bool,
}

impl Outage {
    /// A connection attempt failed (or the connection was lost) at `now` (ms).
    pub fn failed(&mut self, now: i64) -> Option<Line> {
        match &mut self.current {
            None => {
                self.current = Some((now, now, 1));
                Some(Line::First {
                    lost: self.was_connected,
                })
            }
            Some((since, last, attempts)) => {
                *attempts += 1;
                if now - *last < STILL_EVERY_MS {
                    return None;
                }
                *last = now;
                Some(Line::Still {
                    attempts: *attempts,
                    minutes: (now - *since) / 60_000,
                })
            }
        }
    }

    /// Connected at `now`: ends the outage; returns its failed attempts and seconds, if any.
    pub fn connected(&mut self, now: i64) -> Option<(u64, i64)> {
        self.was_connected = true;
        self.current
            .take()
            .map(|(since, _, attempts)| (attempts, (now - since) / 1000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_failure_at_once_then_every_ten_minutes_then_reconnect() {
        let mut o = Outage::default();
        assert_eq!(o.failed(0), Some(Line::First { lost: false }));
        // retries every 30 s for ten minutes: nothing more
        for i in 1..20 {
            assert_eq!(o.failed(i * 30_000), None, "attempt {i}");
        }
        assert_eq!(
            o.failed(STILL_EVERY_MS),
            Some(Line::Still {
                attempts: 21,
                minutes: 10
            })
        );
        assert_eq!(o.failed(STILL_EVERY_MS + 30_000), None);
        assert_eq!(o.connected(STILL_EVERY_MS + 60_000), Some((22, 660)));
        assert_eq!(o.connected(STILL_EVERY_MS + 70_000), None);
        // a later loss is a new outage, logged at once as "lost"
        assert_eq!(
            o.failed(STILL_EVERY_MS * 3),
            Some(Line::First { lost: true })
        );
    }
}
