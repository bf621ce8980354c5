//! The `[history]` section: on or off, the three retention bounds (whichever is hit first
//! drops the oldest history first) and the headers kept with each event for audits.

use serde::Deserialize;

/// Ditto's default `history-retention-duration`: 3 days.
pub const DEFAULT_MAX_AGE_SECS: u64 = 3 * 24 * 3600;

/// `[history]` keys and their defaults.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    /// keep history (retrieves at a revision or time, persisted-event streams)
    pub enabled: bool,
    /// history older than this is dropped (the state current at that point stays answerable)
    pub max_age_secs: u64,
    /// revisions kept per thing or policy (0: no bound)
    pub max_revisions: u64,
    /// bytes of history kept in total, in MiB (0: no bound); the oldest goes first
    pub max_mb: u64,
    /// command headers kept with each event (`ditto-originator`: who made the change) and
    /// returned as `historical-headers` (Ditto's `historical-headers-to-persist`)
    pub headers_to_persist: Vec<String>,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            enabled: true,
            max_age_secs: DEFAULT_MAX_AGE_SECS,
            max_revisions: 10_000,
            max_mb: 64,
            headers_to_persist: Vec::new(),
        }
    }
}

impl HistoryConfig {
    /// Problems of the values (each one line).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.max_age_secs == 0 {
            p.push(
                "history: max_age_secs must be positive (turn history off with enabled = false)"
                    .into(),
            );
        }
        for h in &self.headers_to_persist {
            if h.is_empty() || h.chars().any(|c| c.is_ascii_uppercase() || c.is_control()) {
                p.push(format!(
                    "history: headers_to_persist entry '{h}' must be a lower-case header name"
                ));
            }
        }
        p
    }

    pub fn max_age_ms(&self) -> i64 {
        self.max_age_secs.saturating_mul(1000).min(i64::MAX as u64) as i64
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_mb.saturating_mul(1 << 20)
    }
}
