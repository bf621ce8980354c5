//! Where logs go: to journald (native protocol, structured fields such as `THING`,
//! `CORRELATION_ID`, `SUBJECT`) when systemd connected stderr to the journal, else plain text
//! on stderr (colours only on a terminal). Level: `RUST_LOG` if set, else the config's level.

use std::io::IsTerminal;
use std::os::fd::AsFd;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter};

/// True if `JOURNAL_STREAM` (`<device>:<inode>`, set by systemd) names this stderr: the check
/// systemd.exec(5) documents, so a child that inherited the variable but not the stream (or a
/// service with `StandardError=file:...`) keeps logging text.
pub fn journal_stream_matches(var: &str, dev: u64, ino: u64) -> bool {
    var.split_once(':')
        .and_then(|(d, i)| Some((d.parse::<u64>().ok()?, i.parse::<u64>().ok()?)))
        .is_some_and(|(d, i)| d == dev && i == ino)
}

fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(var) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let meta = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata());
    meta.is_ok_and(|m| journal_stream_matches(&var, m.dev(), m.ino()))
}

/// Installs the global subscriber (a second call is a no-op). `level` is a `RUST_LOG`-style
/// filter from the config; the `RUST_LOG` environment variable wins over it. The filter can be
/// changed at run time (`super::loglevel`, `PUT /devops/logging`).
pub fn init(level: &str) {
    let directives = std::env::var("RUST_LOG")
        .ok()
        .filter(|d| EnvFilter::try_new(d).is_ok())
        .unwrap_or_else(|| level.to_owned());
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    if stderr_is_journal() {
        match tracing_journald::layer() {
            Ok(layer) => {
                let layer = layer
                    .with_field_prefix(None)
                    .with_syslog_identifier("edgetwin".into());
                if tracing_subscriber::registry()
                    .with(filter)
                    .with(layer)
                    .try_init()
                    .is_ok()
                {
                    super::loglevel::install(handle, &directives);
                }
                return;
            }
            Err(e) => eprintln!("edgetwin: journald not reachable ({e}); logging to stderr"),
        }
    }
    let text = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if tracing_subscriber::registry()
        .with(filter)
        .with(text)
        .try_init()
        .is_ok()
    {
        super::loglevel::install(handle, &directives);
    }
}

/// Checks a config `log_level`: comma-separated directives, each a level (`trace` .. `error`,
/// `off`) or `target=level`, as `RUST_LOG` takes them. A bare word that is no level would be
/// read as a target name and silently log everything of it, so it is refused.
pub fn check_level(level: &str) -> Result<(), String> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    for d in level.split(',').map(str::trim) {
        let ok = if let Some((_, lvl)) = d.split_once('=') {
            LEVELS.contains(&lvl.trim().to_ascii_lowercase().as_str())
        } else {
            LEVELS.contains(&d.to_ascii_lowercase().as_str())
        };
        if !ok {
            return Err(format!(
                "'{d}' is not a level (trace, debug, info, warn, error, off) or target=level"
            ));
        }
    }
    EnvFilter::try_new(level)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_stream_must_match_device_and_inode() {
        assert!(journal_stream_matches("8:12345", 8, 12345));
        assert!(!journal_stream_matches("8:12345", 8, 12346));
        assert!(!journal_stream_matches("9:12345", 8, 12345));
        assert!(!journal_stream_matches("", 8, 12345));
        assert!(!journal_stream_matches("8", 8, 12345));
        assert!(!journal_stream_matches("a:b", 8, 12345));
    }

    #[test]
    fn levels_are_checked() {
        for ok in [
            "info",
            "WARN",
            "debug,edgetwin::hub=trace",
            "off",
            "sled=warn, info",
        ] {
            assert!(check_level(ok).is_ok(), "{ok}");
        }
        for bad in ["infoo", "verbose", "", "edgetwin=loud", "info,"] {
            assert!(check_level(bad).is_err(), "{bad}");
        }
    }
}
