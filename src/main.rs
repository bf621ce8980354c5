//! The `edgetwin` command line: `edgetwin [run] [--config FILE] [--listen ADDR:PORT]
//! [--data DIR] [--store redb|sled|auto] [--mqtt URL|none]`, `edgetwin check-config FILE`,
//! `edgetwin hash-password` (prompt or stdin, never argv), `edgetwin ws URL` (a WebSocket
//! client), `edgetwin backup|restore FILE` (src/ops/backup.rs), `--version`, `--help` per command.
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

const VERSION: &str = concat!("edgetwin ", env!("CARGO_PKG_VERSION"));

const USAGE: &str = "edgetwin: an Eclipse Ditto compatible digital-twin gateway

usage:
  edgetwin [run] [OPTIONS]      run the gateway (the default command)
  edgetwin check-config FILE    check a config file and print every problem
  edgetwin hash-password        print an argon2 hash for a [[users]] entry
  edgetwin ws URL               a WebSocket client: stdin lines out, frames printed
  edgetwin backup FILE          a consistent backup of a running gateway (docs/backup.md)
  edgetwin restore FILE         load a backup into an empty data directory
  edgetwin COMMAND --help       help on one command
  edgetwin --version            print the version";

const RUN_HELP: &str = "usage: edgetwin [run] [--config FILE] [--listen ADDR:PORT] [--data DIR]
                      [--store redb|sled|auto] [--mqtt mqtt://HOST:PORT|none]

Runs the gateway until SIGTERM or SIGINT. With no config file it listens on 127.0.0.1:8080,
keeps its data in ./data and accepts the development user ditto/ditto. Flags override the file.

  -c, --config FILE      TOML configuration (docs/configuration.md)
  --listen ADDR:PORT     address for HTTP, WebSocket and SSE; port 0 picks a free port (the
                         bound address is printed as `edgetwin listening on ADDR`)
  --data DIR             store directory
  --store redb|sled|auto store backend (auto: what the data directory has, redb for a new one)
  --mqtt URL|none        broker of the MQTT device bridge, or `none` to run without it

Environment: RUST_LOG (log filter, overrides log_level); EDGETWIN_TLS_KEY_FILE (read instead
of [tls] key_file; the systemd drop-in of `install.sh --tls` sets it).";

const CHECK_HELP: &str = "usage: edgetwin check-config FILE

Checks a TOML configuration: prints every problem as FILE:LINE: MESSAGE, or FILE: ok.
Exit status 0 if the file is fine, 1 if it has problems, 2 on wrong usage.";

const HASH_HELP: &str = "usage: edgetwin hash-password

Reads a password and prints its argon2 hash for `password_hash` in a [[users]] entry.
On a terminal it asks twice without echo; otherwise it reads the first line of stdin:
  printf '%s\\n' \"$PASSWORD\" | edgetwin hash-password
The password is never taken from the command line, where shell history would keep it.";

const WS_HELP: &str = "usage: edgetwin ws [-u USER[:PASSWORD]] [--cacert FILE] [--wait SECS] URL

A WebSocket client for trying the gateway: sends each line of stdin as a text frame (a Ditto
Protocol message, or a control message such as START-SEND-EVENTS) and prints each text frame
it receives on a line of its own. Ends when the server closes the connection, or once stdin
has ended and no frame arrived for SECS (default 1).

  -u USER[:PASSWORD]   HTTP Basic credentials (asks for the password if it is not given)
  --cacert FILE        PEM certificate(s) to trust for wss:// (default: the system CAs)
  --wait SECS          how long to keep printing after stdin ended

example:
  edgetwin ws -u ditto:ditto ws://localhost:8080/ws/2";

/// True for the help flags.
fn is_help(a: &str) -> bool {
    matches!(a, "-h" | "--help" | "help")
}

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
fn check_config(args: &[String]) -> ExitCode {
    let path = match args {
        [a] if is_help(a) => {
            out!("{CHECK_HELP}");
            return ExitCode::SUCCESS;
        }
        [path] => path,
        _ => {
            err!("{CHECK_HELP}");
            return ExitCode::from(2);
        }
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
                .ok_or_else(|| format!("{a} needs a value\n{RUN_HELP}"))
        };
        match a.as_str() {
            "--config" | "-c" => cfg = load(val()?)?,
            "--listen" | "--data" | "--store" | "--mqtt" => overrides.push((a.as_str(), val()?)),
            "-h" | "--help" => {
                out!("{RUN_HELP}");
                return Ok(());
            }
            other => return Err(format!("unknown argument '{other}'\n{RUN_HELP}")),
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

/// `edgetwin hash-password`: the password from a no-echo prompt (asked twice) on a terminal,
/// else the first line of stdin; never from argv.
fn hash_password(args: &[String]) -> Result<(), String> {
    match args {
        [] => {}
        [a] if is_help(a) => {
            out!("{HASH_HELP}");
            return Ok(());
        }
        _ => return Err(format!("hash-password takes no arguments\n{HASH_HELP}")),
    }
    use std::io::IsTerminal;
    let pw = if std::io::stdin().is_terminal() {
        let read = |prompt: &str| rpassword::prompt_password(prompt).map_err(|e| e.to_string());
        let pw = read("Password: ")?;
        if read("Repeat password: ")? != pw {
            return Err("the passwords differ".into());
        }
        pw
    } else {
        let mut s = String::new();
        std::io::stdin()
            .read_line(&mut s)
            .map_err(|e| format!("stdin: {e}"))?;
        s.trim_end_matches(['\r', '\n']).to_owned()
    };
    if pw.is_empty() {
        return Err("empty password".into());
    }
    edgetwin::auth::hash_password(&pw).map(|h| out!("{h}"))
}

/// `edgetwin ws`: parses its arguments and runs the client.
fn ws(args: &[String]) -> Result<(), String> {
    let mut o = edgetwin::ops::ws_client::Options {
        url: String::new(),
        user: None,
        cacert: None,
        wait: std::time::Duration::from_secs(1),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{a} needs a value\n{WS_HELP}"))
        };
        match a.as_str() {
            "-h" | "--help" => {
                out!("{WS_HELP}");
                return Ok(());
            }
            "-u" | "--user" => {
                let v = val()?;
                o.user = Some(match v.split_once(':') {
                    Some((u, p)) => (u.to_owned(), p.to_owned()),
                    None => {
                        let p = rpassword::prompt_password(format!("Password for {v}: "))
                            .map_err(|e| e.to_string())?;
                        (v, p)
                    }
                });
            }
            "--cacert" => o.cacert = Some(val()?.into()),
            "--wait" => {
                let v = val()?;
                let secs: f64 = v.parse().map_err(|_| format!("--wait {v}: not a number"))?;
                o.wait = std::time::Duration::try_from_secs_f64(secs)
                    .map_err(|_| format!("--wait {v}: out of range"))?;
            }
            url if o.url.is_empty() && !url.starts_with('-') => o.url = url.to_owned(),
            other => return Err(format!("unknown argument '{other}'\n{WS_HELP}")),
        }
    }
    if o.url.is_empty() {
        return Err(format!("a URL is needed\n{WS_HELP}"));
    }
    edgetwin::ops::ws_client::run(o)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("-V" | "--version") => {
            out!("{VERSION}");
            Ok(())
        }
        Some("-h" | "--help") => {
            out!("{USAGE}");
            Ok(())
        }
        Some("help") => {
            match args.get(1).map(String::as_str) {
                Some("run") => out!("{RUN_HELP}"),
                Some("check-config") => out!("{CHECK_HELP}"),
                Some("hash-password") => out!("{HASH_HELP}"),
                Some("ws") => out!("{WS_HELP}"),
                Some("backup") => out!("{}", edgetwin::ops::backup::BACKUP_USAGE),
                Some("restore") => out!("{}", edgetwin::ops::backup::RESTORE_USAGE),
                _ => out!("{USAGE}"),
            }
            Ok(())
        }
        Some("check-config") => return check_config(&args[1..]),
        Some("hash-password") => hash_password(&args[1..]),
        Some("ws") => ws(&args[1..]),
        Some("backup") => edgetwin::ops::backup::backup_main(&args[1..]),
        Some("restore") => edgetwin::ops::backup::restore_main(&args[1..]),
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
