//! The `[store]` section of the configuration (also accepted as the older `store = "<backend>"`
//! string): which backend, how long a write nobody waits for may stay in memory, and the
//! free-space reserve; `resolve` picks the backend of an existing data directory for `auto`.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::{BackendKind, Options, REDB_FILE};

/// `[store]` keys and their defaults.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `redb`, `sled` or `auto` (the backend that created the data directory; redb for a new one)
    pub backend: String,
    /// a write nobody waits for is on disk at most this much later (0: every write synced at once)
    pub flush_interval_ms: u64,
    /// writes are refused while the data directory's file system has less free (0: off)
    pub min_free_mb: u64,
    /// redb: compact the file at a clean stop once it grew by more than this percent since its last
    /// compaction (at least 4 MiB; 0: never)
    pub compact_growth_percent: u64,
    /// writes not yet checkpointed into the backend (keys) before new writes wait; a checkpoint
    /// starts at half of it (or at `max_pending_keys * 64` bytes, at least 4 MiB)
    pub max_pending_keys: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            backend: "auto".into(),
            flush_interval_ms: super::DEFAULT_FLUSH_INTERVAL.as_millis() as u64,
            min_free_mb: super::DEFAULT_MIN_FREE_BYTES >> 20,
            compact_growth_percent: super::compact::DEFAULT_GROWTH_PERCENT,
            max_pending_keys: super::DEFAULT_MAX_PENDING_OPS,
        }
    }
}

/// Longest flush interval accepted.
const MAX_FLUSH_INTERVAL_MS: u64 = 60_000;
/// Range of `max_pending_keys` accepted.
const PENDING_KEYS: std::ops::RangeInclusive<usize> = 1_024..=1_048_576;

impl StoreConfig {
    /// Problems of the values (each one line).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.backend != "auto" && self.backend.parse::<BackendKind>().is_err() {
            p.push(format!(
                "store: unknown backend '{}' (use \"redb\", \"sled\" or \"auto\")",
                self.backend
            ));
        }
        if self.flush_interval_ms > MAX_FLUSH_INTERVAL_MS {
            p.push(format!(
                "store: flush_interval_ms must be at most {MAX_FLUSH_INTERVAL_MS}"
            ));
        }
        if !PENDING_KEYS.contains(&self.max_pending_keys) {
            p.push(format!(
                "store: max_pending_keys must be between {} and {}",
                PENDING_KEYS.start(),
                PENDING_KEYS.end()
            ));
        }
        p
    }

    /// The backend for `data_dir`: the configured one, or for `auto` the one whose files are
    /// there (redb if none).
    pub fn resolve(&self, data_dir: &Path) -> Result<BackendKind, String> {
        if self.backend != "auto" {
            return self.backend.parse().map_err(|e| format!("{e}"));
        }
        let sled = data_dir.join("sled").exists();
        let redb = data_dir.join(REDB_FILE).exists();
        Ok(if sled && !redb {
            BackendKind::Sled
        } else {
            BackendKind::Redb
        })
    }

    /// The store options (cache from the top-level `cache_mib`).
    pub fn options(&self, cache_bytes: u64) -> Options {
        Options {
            cache_bytes,
            flush_interval: Duration::from_millis(self.flush_interval_ms),
            min_free_bytes: self.min_free_mb << 20,
            compact_growth_percent: self.compact_growth_percent,
            max_pending_ops: self.max_pending_keys,
            ..Options::default()
        }
    }
}

/// `store = "redb"` (the backend only, as before `[store]` existed) or a `[store]` table.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<StoreConfig, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = StoreConfig;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a backend name or a [store] table")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<StoreConfig, E> {
            Ok(StoreConfig {
                backend: v.to_owned(),
                ..StoreConfig::default()
            })
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, m: A) -> Result<StoreConfig, A::Error> {
            StoreConfig::deserialize(serde::de::value::MapAccessDeserializer::new(m))
        }
    }
    d.deserialize_any(V)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Wrap {
        #[serde(deserialize_with = "deserialize")]
        store: StoreConfig,
    }

    fn parse(t: &str) -> Result<StoreConfig, String> {
        toml::from_str::<Wrap>(t)
            .map(|w| w.store)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_string_or_a_table() {
        assert_eq!(parse("store = \"sled\"").unwrap().backend, "sled");
        let c = parse("[store]\nbackend = \"redb\"\nflush_interval_ms = 250\nmin_free_mb = 8\n")
            .unwrap();
        assert_eq!(
            (c.backend.as_str(), c.flush_interval_ms, c.min_free_mb),
            ("redb", 250, 8)
        );
        let c = parse("[store]\ncompact_growth_percent = 0\n").unwrap();
        assert_eq!(c.options(0).compact_growth_percent, 0);
        assert_eq!(StoreConfig::default().options(0).compact_growth_percent, 25);
        let e = parse("[store]\nflush = 1\n").unwrap_err();
        assert!(e.contains("unknown field `flush`"), "{e}");
        assert_eq!(parse("[store]\n").unwrap(), StoreConfig::default());
        assert!(
            parse("store = \"rocks\"").unwrap().problems()[0].contains("unknown backend 'rocks'")
        );
        assert_eq!(
            parse("[store]\nflush_interval_ms = 60001")
                .unwrap()
                .problems()
                .len(),
            1
        );
    }

    #[test]
    fn max_pending_keys_sets_the_overlay_bound_within_its_range() {
        assert_eq!(
            StoreConfig::default().options(0).max_pending_ops,
            super::super::DEFAULT_MAX_PENDING_OPS
        );
        let c = parse("[store]\nmax_pending_keys = 131072\n").unwrap();
        assert!(c.problems().is_empty());
        assert_eq!(c.options(0).max_pending_ops, 131_072);
        for bad in [0, 1_023, 1_048_577] {
            let p = parse(&format!("[store]\nmax_pending_keys = {bad}\n"))
                .unwrap()
                .problems();
            assert!(
                p[0].contains("max_pending_keys must be between"),
                "{bad}: {p:?}"
            );
        }
    }

    #[test]
    fn auto_keeps_the_backend_of_an_existing_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let auto = StoreConfig::default();
        assert_eq!(auto.resolve(dir.path()).unwrap(), BackendKind::Redb);
        std::fs::create_dir(dir.path().join("sled")).unwrap();
        assert_eq!(auto.resolve(dir.path()).unwrap(), BackendKind::Sled);
        let redb = StoreConfig {
            backend: "redb".into(),
            ..StoreConfig::default()
        };
        assert_eq!(redb.resolve(dir.path()).unwrap(), BackendKind::Redb);
    }
}
