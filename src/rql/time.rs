//! The `time:` placeholder of RQL: `time:now` / `time:now_epoch_millis` with an optional offset
//! (`-7d`, `+1h`, units ms s m h d w mo y; no unit = seconds) and truncation (`[h]`), as Ditto's
//! TimePlaceholder defines them. Resolution takes "now" as a parameter; truncation is in UTC.

use crate::clock::{format_millis, parse_iso};

/// A unit of `time:` offsets and truncations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    /// `ms`
    Millis,
    /// `s` (also an offset without unit)
    Seconds,
    /// `m`
    Minutes,
    /// `h`
    Hours,
    /// `d`
    Days,
    /// `w` (truncation: Monday 00:00 UTC)
    Weeks,
    /// `mo` (offset: 1/12 of a mean Gregorian year, as Java's ChronoUnit.MONTHS)
    Months,
    /// `y` (offset: 365.2425 days, as Java's ChronoUnit.YEARS)
    Years,
}

impl TimeUnit {
    /// The unit for a suffix (`""` = seconds, as Ditto's DittoDuration).
    pub fn from_suffix(suffix: &str) -> Option<Self> {
        Some(match suffix {
            "ms" => TimeUnit::Millis,
            "s" | "" => TimeUnit::Seconds,
            "m" => TimeUnit::Minutes,
            "h" => TimeUnit::Hours,
            "d" => TimeUnit::Days,
            "w" => TimeUnit::Weeks,
            "mo" => TimeUnit::Months,
            "y" => TimeUnit::Years,
            _ => return None,
        })
    }

    /// Length of one unit in milliseconds (months and years are Java's estimated durations).
    pub fn millis(self) -> i64 {
        match self {
            TimeUnit::Millis => 1,
            TimeUnit::Seconds => 1_000,
            TimeUnit::Minutes => 60_000,
            TimeUnit::Hours => 3_600_000,
            TimeUnit::Days => 86_400_000,
            TimeUnit::Weeks => 7 * 86_400_000,
            TimeUnit::Months => 2_629_746_000,
            TimeUnit::Years => 31_556_952_000,
        }
    }
}

/// A parsed `time:` placeholder, e.g. `time:now-7d[h]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TimePlaceholder {
    /// The name as written after `time:` (`now-7d[h]`).
    pub name: String,
    /// `now_epoch_millis` (millis) rather than `now` (ISO-8601 string).
    pub epoch_millis: bool,
    /// Signed offset added to "now".
    pub offset_millis: i64,
    /// Truncation applied after the offset.
    pub truncate: Option<TimeUnit>,
}

impl TimePlaceholder {
    /// Parses the part after `time:`; the error text says what is wrong.
    pub fn parse(name: &str) -> Result<Self, String> {
        let invalid = || format!("unsupported time placeholder 'time:{name}'");
        let (epoch_millis, rest) = if let Some(rest) = name.strip_prefix("now_epoch_millis") {
            (true, rest)
        } else if let Some(rest) = name.strip_prefix("now") {
            (false, rest)
        } else {
            return Err(invalid());
        };
        let (rest, truncate) = match rest.find('[') {
            Some(i) => {
                let unit = rest[i + 1..].strip_suffix(']').ok_or_else(invalid)?;
                (
                    &rest[..i],
                    Some(TimeUnit::from_suffix(unit).ok_or_else(invalid)?),
                )
            }
            None => (rest, None),
        };
        let offset_millis = if rest.is_empty() {
            0
        } else {
            let (sign, duration) = match rest.as_bytes()[0] {
                b'+' => (1i64, &rest[1..]),
                b'-' => (-1i64, &rest[1..]),
                _ => return Err(invalid()),
            };
            let digits = duration.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(invalid());
            }
            let amount: i64 = duration[..digits].parse().map_err(|_| invalid())?;
            let unit = TimeUnit::from_suffix(&duration[digits..]).ok_or_else(invalid)?;
            amount.checked_mul(unit.millis()).ok_or_else(invalid)? * sign
        };
        Ok(TimePlaceholder {
            name: name.to_owned(),
            epoch_millis,
            offset_millis,
            truncate,
        })
    }

    /// The instant (epoch millis) this placeholder stands for at `now_millis`.
    pub fn instant(&self, now_millis: i64) -> i64 {
        let t = now_millis.saturating_add(self.offset_millis);
        match self.truncate {
            Some(unit) => truncate(t, unit),
            None => t,
        }
    }

    /// The resolved text: an ISO-8601 UTC instant with millis for `time:now...`
    /// (`2021-01-18T09:42:12.345Z`; Ditto prints Java's `Instant`, whose fraction varies), the
    /// decimal millis for `time:now_epoch_millis...`.
    pub fn resolve(&self, now_millis: i64) -> String {
        let t = self.instant(now_millis);
        if self.epoch_millis {
            t.to_string()
        } else {
            format_millis(t)
        }
    }
}

/// Truncates `t` to the start of its `unit` (UTC; weeks start on Monday).
fn truncate(t: i64, unit: TimeUnit) -> i64 {
    const DAY: i64 = 86_400_000;
    match unit {
        TimeUnit::Weeks => {
            let days = t.div_euclid(DAY);
            // 1970-01-01 was a Thursday: Monday-based weekday index is (days + 3) mod 7.
            (days - (days + 3).rem_euclid(7)).saturating_mul(DAY)
        }
        TimeUnit::Months | TimeUnit::Years => {
            let iso = format_millis(t);
            let start = match (unit, iso.get(..4), iso.get(4..7)) {
                (TimeUnit::Months, Some(y), Some(m)) => format!("{y}{m}-01T00:00:00Z"),
                (_, Some(y), _) => format!("{y}-01-01T00:00:00Z"),
                _ => return t,
            };
            // Years beyond 4 digits do not round-trip; leave them untruncated.
            parse_iso(&start).unwrap_or(t)
        }
        other => t.div_euclid(other.millis()).saturating_mul(other.millis()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_610_962_932_345; // 2021-01-18T09:42:12.345Z, a Monday

    fn at(name: &str) -> String {
        TimePlaceholder::parse(name).unwrap().resolve(NOW)
    }

    #[test]
    fn plain_now_and_epoch_millis() {
        assert_eq!(at("now"), "2021-01-18T09:42:12.345Z");
        assert_eq!(at("now_epoch_millis"), "1610962932345");
        let p = TimePlaceholder::parse("now").unwrap();
        assert_eq!(
            (p.epoch_millis, p.offset_millis, p.truncate),
            (false, 0, None)
        );
    }

    #[test]
    fn offsets_in_every_unit() {
        assert_eq!(at("now-7d"), "2021-01-11T09:42:12.345Z");
        assert_eq!(at("now+1h"), "2021-01-18T10:42:12.345Z");
        assert_eq!(at("now-30"), "2021-01-18T09:41:42.345Z");
        assert_eq!(at("now-30s"), "2021-01-18T09:41:42.345Z");
        assert_eq!(at("now+5m"), "2021-01-18T09:47:12.345Z");
        assert_eq!(at("now-345ms"), "2021-01-18T09:42:12.000Z");
        assert_eq!(at("now-1w"), "2021-01-11T09:42:12.345Z");
        assert_eq!(at("now_epoch_millis-1s"), "1610962931345");
        assert_eq!(
            TimePlaceholder::parse("now+1mo").unwrap().offset_millis,
            2_629_746_000
        );
        assert_eq!(
            TimePlaceholder::parse("now-2y").unwrap().offset_millis,
            -63_113_904_000
        );
    }

    #[test]
    fn truncations() {
        assert_eq!(at("now[ms]"), "2021-01-18T09:42:12.345Z");
        assert_eq!(at("now[s]"), "2021-01-18T09:42:12.000Z");
        assert_eq!(at("now[]"), "2021-01-18T09:42:12.000Z");
        assert_eq!(at("now[m]"), "2021-01-18T09:42:00.000Z");
        assert_eq!(at("now[h]"), "2021-01-18T09:00:00.000Z");
        assert_eq!(at("now[d]"), "2021-01-18T00:00:00.000Z");
        assert_eq!(at("now[w]"), "2021-01-18T00:00:00.000Z");
        assert_eq!(at("now-1d[w]"), "2021-01-11T00:00:00.000Z");
        assert_eq!(at("now[mo]"), "2021-01-01T00:00:00.000Z");
        assert_eq!(at("now[y]"), "2021-01-01T00:00:00.000Z");
        assert_eq!(at("now-1h[d]"), "2021-01-18T00:00:00.000Z");
        assert_eq!(at("now_epoch_millis[s]"), "1610962932000");
        // before the epoch
        let p = TimePlaceholder::parse("now[d]").unwrap();
        assert_eq!(p.resolve(-1), "1969-12-31T00:00:00.000Z");
        let p = TimePlaceholder::parse("now[w]").unwrap();
        assert_eq!(p.resolve(0), "1969-12-29T00:00:00.000Z");
    }

    #[test]
    fn invalid_names() {
        for bad in [
            "",
            "today",
            "now-",
            "now+",
            "now-7x",
            "now7d",
            "now[x]",
            "now[h",
            "now-1d]",
            "nowx",
            "now--1d",
            "now-d",
            "now-99999999999999999999d",
            "now-9999999999999999y",
            "now[h]x",
            "now_epoch",
            "now -1d",
        ] {
            assert!(TimePlaceholder::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn extreme_instants_do_not_panic() {
        let p = TimePlaceholder::parse("now+100000000000d[y]").unwrap();
        let _ = p.resolve(i64::MAX);
        let _ = p.resolve(i64::MIN);
        let p = TimePlaceholder::parse("now-100000000000d[w]").unwrap();
        let _ = p.resolve(i64::MIN);
        let p = TimePlaceholder::parse("now[mo]").unwrap();
        let _ = p.resolve(i64::MIN);
        let _ = p.resolve(i64::MAX);
    }
}
