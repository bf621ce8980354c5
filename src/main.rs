//! The `edgetwin` command line: `edgetwin [run] [--config FILE] [--listen ADDR:PORT]
//! [--data DIR] [--store redb|sled|auto] [--mqtt URL|none]`, `edgetwin check-config FILE`, `edgetwin hash-password`.
//! Flags override the config file; no config at all runs with safe loopback defaults.

use edgetwin::config::Config;
use edgetwin::ops::check::check_text;
use std::process::ExitCode;

/// `println!` / `eprintln!` that ignore a closed pipe (`edgetwin --help | head` must not panic).
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}
macro_rules! err {
    ($($t:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

const USAGE: &str = "usage:
  edgetwin [run] [--config FILE] [--listen ADDR:PORT] [--data DIR] [--store redb|sled|auto]
                 [--mqtt mqtt://HOST:PORT|none]
  edgetwin check-config FILE
  edgetwin hash-password [PASSWORD]   (reads the password from stdin if not given)";

/// Reads and checks a config file; on problems, all of them, one per line as `FILE:LINE: ...`.
fn load(path: &str) -> Result<Config, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    match check_text(&text) {
        (Some(cfg), _) => Ok(cfg),
        (None, problems) => Err(problems
            .iter()
            .map(|p| match p.line {
                Some(l) => format!("{path}:{l}: {}", p.message),
                None => format!("{path}: {}", p.message),
            })
            .collect::<Vec<_>>()
            .join("\n")),
    }
}

/// `edgetwin check-config FILE`: prints every problem (stdout), exit status 1 if any.
fn check_config(path: Option<&String>) -> ExitCode {
    let Some(path) = path else {
        err!("{USAGE}");
        return ExitCode::from(2);
    };
    match load(path) {
        Ok(_) => {
            out!("{path}: ok");
            ExitCode::SUCCESS
        }
        Err(list) => {
            out!("{list}");
            let n = list.lines().count();
            err!(
                "edgetwin: {n} problem{} in {path}",
                if n == 1 { "" } else { "s" }
            );
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let mut cfg = Config::default();
    let mut overrides: Vec<(&str, &str)> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || {
            it.next()
                .map(String::as_str)
                .ok_or_else(|| format!("{a} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--config" | "-c" => cfg = load(val()?)?,
            "--listen" | "--data" | "--store" | "--mqtt" => overrides.push((a.as_str(), val()?)),
            "-h" | "--help" => {
                out!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument '{other}'\n{USAGE}")),
        }
    }
    for (k, v) in overrides {
        match k {
            "--listen" => cfg.listen = v.parse().map_err(|e| format!("--listen {v}: {e}"))?,
            "--data" => cfg.data_dir = v.into(),
            "--mqtt" => cfg.mqtt.url = v.to_owned(),
            _ => cfg.store.backend = v.to_owned(),
        }
    }
    edgetwin::ops::logging::init(&cfg.log_level);
    edgetwin::app::run(cfg)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("check-config") => return check_config(args.get(1)),
        Some("hash-password") => {
            let pw = match args.get(1) {
                Some(p) => p.clone(),
                None => {
                    let mut s = String::new();
                    let _ = std::io::stdin().read_line(&mut s);
                    s.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            edgetwin::auth::hash_password(&pw).map(|h| out!("{h}"))
        }
        Some("run") => run(&args[1..]),
        _ => run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            err!("edgetwin: {e}");
            ExitCode::FAILURE
        }
    }
}
