//! The `edgetwin` command line: `edgetwin [run] [--config FILE] [--listen ADDR:PORT]
//! [--data DIR] [--store sled|redb] [--mqtt URL|none]`, `edgetwin check-config FILE`, `edgetwin hash-password`.
//! Flags override the config file; no config at all runs with safe loopback defaults.

use edgetwin::config::Config;
use std::process::ExitCode;

const USAGE: &str = "usage:
  edgetwin [run] [--config FILE] [--listen ADDR:PORT] [--data DIR] [--store sled|redb]
                 [--mqtt mqtt://HOST:PORT|none]
  edgetwin check-config FILE
  edgetwin hash-password [PASSWORD]   (reads the password from stdin if not given)";

fn load(path: &str) -> Result<Config, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    Config::from_toml(&text).map_err(|e| format!("{path}: {e}"))
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
                println!("{USAGE}");
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
            _ => cfg.store = v.to_owned(),
        }
    }
    init_logging(&cfg.log_level);
    edgetwin::app::run(cfg)
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("check-config") => match args.get(1) {
            None => Err(USAGE.to_owned()),
            Some(path) => load(path).and_then(|c| {
                let p = c.problems();
                if p.is_empty() {
                    println!("{path}: ok");
                    Ok(())
                } else {
                    Err(p
                        .iter()
                        .map(|x| format!("{path}: {x}"))
                        .collect::<Vec<_>>()
                        .join("\n"))
                }
            }),
        },
        Some("hash-password") => {
            let pw = match args.get(1) {
                Some(p) => p.clone(),
                None => {
                    let mut s = String::new();
                    let _ = std::io::stdin().read_line(&mut s);
                    s.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            edgetwin::auth::hash_password(&pw).map(|h| println!("{h}"))
        }
        Some("run") => run(&args[1..]),
        _ => run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("edgetwin: {e}");
            ExitCode::FAILURE
        }
    }
}
