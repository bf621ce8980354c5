//! Log levels changed at run time (`GET/PUT /devops/logging`): the effective filter as Ditto's
//! logger configs (`ROOT` = the default level, other loggers = tracing targets such as
//! `edgetwin::hub`), and the change of one logger, applied through a reload handle.

use crate::error::DittoError;
use std::sync::{Mutex, OnceLock};
use tracing_subscriber::{reload, EnvFilter, Registry};

/// Ditto's name of the root logger.
pub const ROOT: &str = "ROOT";
/// Most loggers with their own level (more: 400, so the filter stays small).
pub const MAX_LOGGERS: usize = 64;

/// One logger and its level, in Ditto's shape (`{"level": "info", "logger": "ROOT"}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggerConfig {
    /// `ROOT` or a tracing target
    pub logger: String,
    /// `off`, `error`, `warn`, `info`, `debug` or `trace`
    pub level: String,
}

struct Control {
    handle: reload::Handle<EnvFilter, Registry>,
    loggers: Mutex<Vec<LoggerConfig>>,
}

static CONTROL: OnceLock<Control> = OnceLock::new();

/// Remembers the reload handle of the installed filter and the directives it was built from.
pub(crate) fn install(handle: reload::Handle<EnvFilter, Registry>, directives: &str) {
    let _ = CONTROL.set(Control {
        handle,
        loggers: Mutex::new(parse(directives)),
    });
}

/// The logger configs of a `RUST_LOG`-style filter (`info,edgetwin::hub=debug`).
pub fn parse(directives: &str) -> Vec<LoggerConfig> {
    let mut out: Vec<LoggerConfig> = Vec::new();
    for d in directives
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        let (logger, level) = match d.rsplit_once('=') {
            Some((t, l)) => (t.trim(), l.trim()),
            None => (ROOT, d),
        };
        let c = LoggerConfig {
            logger: logger.to_owned(),
            level: level.to_ascii_lowercase(),
        };
        match out.iter_mut().find(|o| o.logger == c.logger) {
            Some(o) => *o = c,
            None => out.push(c),
        }
    }
    if !out.iter().any(|c| c.logger == ROOT) {
        // EnvFilter's default: only errors
        out.insert(
            0,
            LoggerConfig {
                logger: ROOT.into(),
                level: "error".into(),
            },
        );
    }
    out
}

/// The filter text of logger configs (root first).
pub fn directives(loggers: &[LoggerConfig]) -> String {
    let mut parts: Vec<String> = loggers
        .iter()
        .filter(|c| c.logger == ROOT)
        .map(|c| c.level.clone())
        .collect();
    parts.extend(
        loggers
            .iter()
            .filter(|c| c.logger != ROOT)
            .map(|c| format!("{}={}", c.logger, c.level)),
    );
    parts.join(",")
}

/// A Ditto log level (`LogLevel`: off, error, warn, info, debug, trace, all) as a tracing level.
fn level(l: &str) -> Option<&'static str> {
    Some(match l.to_ascii_lowercase().as_str() {
        "off" => "off",
        "error" => "error",
        "warn" => "warn",
        "info" => "info",
        "debug" => "debug",
        "trace" | "all" => "trace",
        _ => return None,
    })
}

/// `loggers` with `logger` (absent or `ROOT`: the root) set to `lvl`, or Ditto's 400.
pub fn change(
    loggers: &[LoggerConfig],
    logger: Option<&str>,
    lvl: &str,
) -> Result<Vec<LoggerConfig>, DittoError> {
    let lvl = level(lvl).ok_or_else(|| {
        DittoError::new(400, "json.invalid", "Invalid LogLevel!")
            .describe("Use one of the levels off, error, warn, info, debug, trace or all.")
    })?;
    let logger = match logger {
        None => ROOT,
        Some(l) if l.eq_ignore_ascii_case(ROOT) => ROOT,
        Some(l) => l,
    };
    let valid = logger == ROOT
        || (!logger.is_empty()
            && logger.len() <= 128
            && logger
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_:.-".contains(c)));
    if !valid {
        return Err(DittoError::new(
            400,
            "json.invalid",
            format!("The logger '{logger}' is not a valid logger name."),
        )
        .describe("Use ROOT or a module path such as edgetwin::hub."));
    }
    let mut out = loggers.to_vec();
    let full = out.len() >= MAX_LOGGERS;
    match out.iter_mut().find(|c| c.logger == logger) {
        Some(c) => c.level = lvl.to_owned(),
        None if full => {
            return Err(DittoError::new(
                400,
                "json.invalid",
                format!("At most {MAX_LOGGERS} loggers can have their own level."),
            ))
        }
        None => out.push(LoggerConfig {
            logger: logger.to_owned(),
            level: lvl.to_owned(),
        }),
    }
    Ok(out)
}

fn not_installed() -> DittoError {
    DittoError::internal("The log level cannot be changed: logging was not set up by edgetwin.")
}

/// The current logger configs.
pub fn current() -> Result<Vec<LoggerConfig>, DittoError> {
    let c = CONTROL.get().ok_or_else(not_installed)?;
    Ok(c.loggers.lock().unwrap_or_else(|e| e.into_inner()).clone())
}

/// Sets one logger's level at run time.
pub fn set(logger: Option<&str>, lvl: &str) -> Result<(), DittoError> {
    let c = CONTROL.get().ok_or_else(not_installed)?;
    let mut loggers = c.loggers.lock().unwrap_or_else(|e| e.into_inner());
    let next = change(&loggers, logger, lvl)?;
    let filter = EnvFilter::try_new(directives(&next))
        .map_err(|e| DittoError::new(400, "json.invalid", e.to_string()))?;
    c.handle
        .reload(filter)
        .map_err(|e| DittoError::internal(format!("reloading the log filter failed: {e}")))?;
    tracing::info!(filter = %directives(&next), "log level changed");
    *loggers = next;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lc(logger: &str, level: &str) -> LoggerConfig {
        LoggerConfig {
            logger: logger.into(),
            level: level.into(),
        }
    }

    #[test]
    fn filters_read_as_logger_configs_and_back() {
        let l = parse("INFO, edgetwin::hub=debug,sled=warn");
        assert_eq!(
            l,
            vec![
                lc(ROOT, "info"),
                lc("edgetwin::hub", "debug"),
                lc("sled", "warn")
            ]
        );
        assert_eq!(directives(&l), "info,edgetwin::hub=debug,sled=warn");
        assert_eq!(
            parse("sled=warn"),
            vec![lc(ROOT, "error"), lc("sled", "warn")]
        );
    }

    #[test]
    fn changes_are_checked() {
        let l = parse("info");
        assert_eq!(change(&l, None, "DEBUG").unwrap(), vec![lc(ROOT, "debug")]);
        assert_eq!(
            change(&l, Some("root"), "all").unwrap(),
            vec![lc(ROOT, "trace")]
        );
        let l2 = change(&l, Some("edgetwin::mqtt"), "warn").unwrap();
        assert_eq!(directives(&l2), "info,edgetwin::mqtt=warn");
        assert_eq!(change(&l, None, "loud").unwrap_err().status, 400);
        assert_eq!(change(&l, Some("a=b"), "info").unwrap_err().status, 400);
        assert_eq!(change(&l, Some(""), "info").unwrap_err().status, 400);
        let mut many = l.clone();
        for i in 0..MAX_LOGGERS {
            many = change(&many, Some(&format!("t{i}")), "info").unwrap_or(many);
        }
        assert_eq!(many.len(), MAX_LOGGERS);
        assert!(change(&many, Some("one.more"), "info").is_err());
    }
}
