//! Time as data: the core never reads the clock itself; the shells ask a `Clock` (the system's,
//! or a simulated one in tests) once per request and pass the value in, and wait on its timers.
//! This module also formats and parses ISO-8601 UTC instants (`2021-01-18T09:42:12.345Z`)
//! without a date-time dependency.

use event_listener::Event;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A timer of a `Clock`.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Where the hub gets the time: wall time for timestamps and expiries, monotonic instants for
/// deadlines, and timers on those instants.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_millis(&self) -> i64;
    /// A monotonic instant (deadlines).
    fn instant(&self) -> Instant;
    /// Resolves once `instant()` reaches `deadline`.
    fn sleep_until(&self, deadline: Instant) -> Sleep;
}

/// The system clock and smol's timers.
#[derive(Debug, Clone, Copy, Default)]
pub struct WallClock;

impl Clock for WallClock {
    fn now_millis(&self) -> i64 {
        now_millis()
    }
    fn instant(&self) -> Instant {
        Instant::now()
    }
    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Box::pin(async move {
            smol::Timer::at(deadline).await;
        })
    }
}

/// Simulated time for tests: stands still until `advance`d; its timers fire then, without
/// sleeping (quinn-proto's tests drive time the same way).
#[derive(Clone)]
pub struct SimClock(Arc<Sim>);

struct Sim {
    start_millis: i64,
    base: Instant,
    elapsed_ms: AtomicU64,
    moved: Event,
}

impl SimClock {
    /// A clock standing at `start_millis` (epoch millis).
    pub fn new(start_millis: i64) -> SimClock {
        SimClock(Arc::new(Sim {
            start_millis,
            base: Instant::now(),
            elapsed_ms: AtomicU64::new(0),
            moved: Event::new(),
        }))
    }

    /// Moves time forward by `ms` and fires the timers that are due.
    pub fn advance(&self, ms: u64) {
        self.0.elapsed_ms.fetch_add(ms, Ordering::SeqCst);
        self.0.moved.notify(usize::MAX);
    }

    /// Moves time forward to `millis` (epoch millis; never backwards).
    pub fn advance_to(&self, millis: i64) {
        let d = millis - self.now_millis();
        if d > 0 {
            self.advance(d as u64);
        }
    }
}

impl Clock for SimClock {
    fn now_millis(&self) -> i64 {
        self.0.start_millis + self.0.elapsed_ms.load(Ordering::SeqCst) as i64
    }
    fn instant(&self) -> Instant {
        self.0.base + Duration::from_millis(self.0.elapsed_ms.load(Ordering::SeqCst))
    }
    fn sleep_until(&self, deadline: Instant) -> Sleep {
        let me = self.clone();
        Box::pin(async move {
            loop {
                if me.instant() >= deadline {
                    return;
                }
                let moved = me.0.moved.listen();
                if me.instant() >= deadline {
                    return;
                }
                moved.await;
            }
        })
    }
}

/// Milliseconds since the Unix epoch, read from the system clock (shells only).
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Days since 1970-01-01 -> (year, month, day) (proleptic Gregorian; H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) -> days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats epoch millis as ISO-8601 UTC with millisecond precision: `2021-01-18T09:42:12.345Z`.
pub fn format_millis(ms: i64) -> String {
    match millis_text(ms) {
        Some(b) => b.iter().map(|&c| char::from(c)).collect(),
        None => {
            let (y, mo, d, h, mi, s, milli) = parts(ms);
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
        }
    }
}

/// `format_millis` in a stack buffer (ASCII) for the years 0 to 9999, `None` for others: the
/// search index keys `_modified` of every write without a `String`.
pub fn millis_text(ms: i64) -> Option<[u8; 24]> {
    let (y, mo, d, h, mi, s, milli) = parts(ms);
    if !(0..=9999).contains(&y) {
        return None;
    }
    let mut b = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut n: i64| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0, 4, y);
    put(5, 2, mo.into());
    put(8, 2, d.into());
    put(11, 2, h);
    put(14, 2, mi);
    put(17, 2, s);
    put(20, 3, milli);
    Some(b)
}

/// Year, month, day, hour, minute, second, millisecond of epoch millis (UTC).
fn parts(ms: i64) -> (i64, u32, u32, i64, i64, i64, i64) {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, mo, d) = civil_from_days(days);
    (
        y,
        mo,
        d,
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    )
}

/// Parses an ISO-8601 instant (`YYYY-MM-DDTHH:MM:SS[.fff...](Z|+hh:mm|-hh:mm)`) to epoch millis.
pub fn parse_iso(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 2)? as u32, num(8, 2)? as u32);
    let (h, mi, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 3 {
                millis = millis * 10 + (b[i] - b'0') as i64;
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..3 {
            millis *= 10;
        }
    }
    let offset_min = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if b.len() == i + 6 && b[i + 3] == b':' => {
            let v = num(i + 1, 2)? * 60 + num(i + 4, 2)?;
            if *sign == b'+' {
                v
            } else {
                -v
            }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    Some(((days * 24 + h) * 60 + mi - offset_min) * 60_000 + sec * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_format_is_the_formatted_one() {
        let slow = |ms: i64| {
            let (y, mo, d) = civil_from_days(ms.div_euclid(86_400_000));
            let rem = ms.rem_euclid(86_400_000);
            let (h, mi, s, milli) = (
                rem / 3_600_000,
                rem / 60_000 % 60,
                rem / 1000 % 60,
                rem % 1000,
            );
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
        };
        let mut ms: i64 = -62_200_000_000_000; // year -1
        while ms < 253_500_000_000_000 {
            assert_eq!(format_millis(ms), slow(ms), "{ms}");
            ms += 7_777_777_777 + ms.rem_euclid(997);
        }
        for ms in [
            0,
            -1,
            1,
            253_402_300_799_999,
            253_402_300_800_000,
            i64::MAX / 4,
        ] {
            assert_eq!(format_millis(ms), slow(ms), "{ms}");
        }
    }

    #[test]
    fn simulated_timers_fire_when_time_is_advanced() {
        let c = SimClock::new(1_000);
        let mut t = c.sleep_until(c.instant() + Duration::from_millis(500));
        let poll =
            |t: &mut Sleep| futures_lite::future::block_on(futures_lite::future::poll_once(t));
        assert!(poll(&mut t).is_none());
        c.advance(499);
        assert!(poll(&mut t).is_none(), "not yet due");
        c.advance(1);
        assert!(poll(&mut t).is_some());
        assert_eq!(c.now_millis(), 1_500);
        c.advance_to(1_200);
        assert_eq!(c.now_millis(), 1_500, "never backwards");
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_millis(1_610_962_932_345), "2021-01-18T09:42:12.345Z");
        assert_eq!(format_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn parses_what_it_formats_and_offsets() {
        for ms in [0, 1_610_962_932_345, 951_782_400_000, 4_102_444_800_000] {
            assert_eq!(parse_iso(&format_millis(ms)), Some(ms));
        }
        assert_eq!(parse_iso("2021-01-18T09:42:12Z"), Some(1_610_962_932_000));
        assert_eq!(
            parse_iso("2021-01-18T10:42:12+01:00"),
            Some(1_610_962_932_000)
        );
        assert_eq!(
            parse_iso("2021-08-10T15:10:02.592Z"),
            Some(1_628_608_202_592)
        );
        assert_eq!(parse_iso("2021-13-18T09:42:12Z"), None);
        assert_eq!(parse_iso("yesterday"), None);
        assert_eq!(parse_iso("2021-01-18T09:42:12"), None);
    }
}
