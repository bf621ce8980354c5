//! `edgetwin backup FILE` (a client of a running gateway's `GET /devops/backup` over HTTP or
//! HTTPS: downloads, checks, then renames into place, so FILE is always a whole backup) and
//! `edgetwin restore FILE` (loads one into an empty data directory). See docs/backup.md.

use crate::config::Config;
use crate::store::{backup, BackendKind};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::{AUTHORIZATION, HOST};
use hyper::{Request, StatusCode};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub const BACKUP_USAGE: &str =
    "usage: edgetwin backup FILE [--config FILE] [--url http://HOST:PORT]
                       [--user NAME] [--password-file FILE]
  Asks the running gateway for a consistent backup (GET /devops/backup, a user of
  [auth] devops_users) and writes it to FILE once it is complete and checked.
  Defaults: --url from the config's listen address (else http://127.0.0.1:8080), --user the
  first of its devops_users; the password from --password-file, else $EDGETWIN_PASSWORD,
  else one line of standard input.";

pub const RESTORE_USAGE: &str =
    "usage: edgetwin restore FILE [--config FILE] [--data DIR] [--store redb|sled|auto]
  Loads a backup into an empty (or new) data directory; start the gateway on it afterwards.";

/// `--name value` pairs.
type Opts<'a> = Vec<(&'a str, &'a str)>;

/// The positional FILE and the `--name value` options.
fn options<'a>(args: &'a [String], known: &[&str]) -> Result<(&'a str, Opts<'a>), String> {
    let mut file = None;
    let mut opts = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if known.contains(&a.as_str()) {
            let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
            opts.push((a.as_str(), v.as_str()));
        } else if a.starts_with("--") || file.is_some() {
            return Err(format!("unknown argument '{a}'"));
        } else {
            file = Some(a.as_str());
        }
    }
    Ok((file.ok_or("FILE missing")?, opts))
}

fn get<'a>(opts: &[(&str, &'a str)], name: &str) -> Option<&'a str> {
    opts.iter().rev().find(|(k, _)| *k == name).map(|(_, v)| *v)
}

fn load_config(path: &str) -> Result<Config, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    match crate::ops::check::check_text(&text) {
        (Some(cfg), _) => Ok(cfg),
        (None, problems) => Err(format!(
            "{path}: {} (run `edgetwin check-config {path}`)",
            problems.first().map_or("invalid", |p| p.message.as_str())
        )),
    }
}

/// `edgetwin backup FILE ...`
pub fn backup_main(args: &[String]) -> Result<(), String> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{BACKUP_USAGE}");
        return Ok(());
    }
    let known = ["--config", "--url", "--user", "--password-file", "--cacert"];
    let (file, opts) = options(args, &known).map_err(|e| format!("{e}\n{BACKUP_USAGE}"))?;
    let cfg = get(&opts, "--config").map(load_config).transpose()?;
    let url = match (get(&opts, "--url"), &cfg) {
        (Some(u), _) => u.trim_end_matches('/').to_owned(),
        (None, Some(c)) if c.tls.cert_file.is_some() => {
            format!("https://localhost:{}", c.listen.port())
        }
        (None, Some(c)) => {
            let mut a = c.listen;
            if a.ip().is_unspecified() {
                a.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{a}")
        }
        (None, None) => "http://127.0.0.1:8080".to_owned(),
    };
    let user = get(&opts, "--user")
        .map(str::to_owned)
        .or_else(|| {
            cfg.as_ref()
                .and_then(|c| c.auth.devops_users.first().cloned())
        })
        .ok_or("--user needed (a user of [auth] devops_users), or --config naming one")?;
    let password = match get(&opts, "--password-file") {
        Some(p) => std::fs::read_to_string(p).map_err(|e| format!("{p}: {e}"))?,
        None => match std::env::var("EDGETWIN_PASSWORD") {
            Ok(p) => p,
            Err(_) => {
                let mut s = String::new();
                std::io::stdin()
                    .read_line(&mut s)
                    .map_err(|e| format!("reading the password from standard input: {e}"))?;
                s
            }
        },
    };
    let password = password.trim_end_matches(['\r', '\n']);
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let target = PathBuf::from(file);
    let partial = partial_name(&target);
    let t = Instant::now();
    let cacert = get(&opts, "--cacert")
        .map(PathBuf::from)
        .or_else(|| cfg.as_ref().and_then(|c| c.tls.cert_file.clone()));
    let result = download(&url, cacert.as_ref(), &auth, &partial).and_then(|bytes| {
        let f = std::fs::File::open(&partial).map_err(|e| format!("{}: {e}", partial.display()))?;
        let counts = backup::check(std::io::BufReader::new(f))
            .map_err(|e| format!("the gateway sent no complete backup: {e}"))?;
        std::fs::rename(&partial, &target)
            .map_err(|e| format!("{} -> {}: {e}", partial.display(), target.display()))?;
        sync_parent(&target);
        Ok((bytes, counts))
    });
    match result {
        Ok((bytes, c)) => {
            use crate::store::Tree;
            println!(
                "{}: {} things, {} policies, {} entries in all, {bytes} bytes in {:.1} s",
                target.display(),
                c.of(Tree::Things),
                c.of(Tree::Policies),
                c.total(),
                t.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

/// `FILE.partial` next to `FILE`.
fn partial_name(target: &Path) -> PathBuf {
    let mut name = target.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    target.with_file_name(name)
}

/// fsync of the directory holding `path` (so the rename survives a power cut); best effort.
fn sync_parent(path: &Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// GET `{url}/devops/backup` into `into` (synced); the bytes received.
fn download(url: &str, cacert: Option<&PathBuf>, auth: &str, into: &Path) -> Result<u64, String> {
    let (tls, rest) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
        (Some(r), _) => (false, r),
        (_, Some(r)) => (true, r),
        _ => return Err(format!("--url {url}: http:// or https:// expected")),
    };
    let (authority, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let path = match prefix.trim_end_matches('/') {
        "" => "/devops/backup".to_owned(),
        p => format!("/{p}/devops/backup"),
    };
    let mut out = std::fs::File::create(into).map_err(|e| format!("{}: {e}", into.display()))?;
    let received = smol::block_on(async {
        let tcp = smol::net::TcpStream::connect(authority)
            .await
            .map_err(|e| format!("connect {authority}: {e} (is the gateway running?)"))?;
        let get = Get {
            url,
            authority,
            path: &path,
            auth,
        };
        if tls {
            let host = match authority.rsplit_once(':') {
                Some((h, p)) if p.parse::<u16>().is_ok() => h,
                _ => authority,
            };
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let io = super::ws_client::connect_tls(host, tcp, cacert).await?;
            get.into(io, &mut out).await
        } else {
            get.into(tcp, &mut out).await
        }
    })?;
    out.sync_all()
        .map_err(|e| format!("{}: {e}", into.display()))?;
    Ok(received)
}

/// One GET of the backup.
struct Get<'a> {
    url: &'a str,
    authority: &'a str,
    path: &'a str,
    auth: &'a str,
}

impl Get<'_> {
    /// Sends the request over `io` and writes a 200's body into `out`.
    async fn into<I>(self, io: I, out: &mut std::fs::File) -> Result<u64, String>
    where
        I: futures_lite::io::AsyncRead + futures_lite::io::AsyncWrite + Unpin + Send + 'static,
    {
        let url = self.url;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(smol_hyper::rt::FuturesIo::new(io))
                .await
                .map_err(|e| format!("{url}: {e}"))?;
        let driver = smol::spawn(async move {
            let _ = conn.await;
        });
        let req = Request::get(self.path)
            .header(HOST, self.authority)
            .header(AUTHORIZATION, format!("Basic {}", self.auth))
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status();
        let mut body = resp.into_body();
        if status != StatusCode::OK {
            let mut text = Vec::new();
            while let Some(Ok(f)) = body.frame().await {
                if let Ok(d) = f.into_data() {
                    text.extend_from_slice(&d);
                }
                if text.len() > 4096 {
                    break;
                }
            }
            return Err(format!(
                "{url}{}: {status}: {}",
                self.path,
                String::from_utf8_lossy(&text).trim()
            ));
        }
        let mut n = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| format!("backup stream broken: {e}"))?;
            if let Ok(d) = frame.into_data() {
                out.write_all(&d)
                    .map_err(|e| format!("writing the backup: {e}"))?;
                n += d.len() as u64;
            }
        }
        drop(driver);
        Ok(n)
    }
}

/// `edgetwin restore FILE ...`
pub fn restore_main(args: &[String]) -> Result<(), String> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{RESTORE_USAGE}");
        return Ok(());
    }
    let known = ["--config", "--data", "--store"];
    let (file, opts) = options(args, &known).map_err(|e| format!("{e}\n{RESTORE_USAGE}"))?;
    let mut cfg = match get(&opts, "--config") {
        Some(p) => load_config(p)?,
        None => Config::default(),
    };
    if let Some(d) = get(&opts, "--data") {
        cfg.data_dir = d.into();
    }
    if let Some(s) = get(&opts, "--store") {
        cfg.store.backend = s.to_owned();
    }
    let kind: BackendKind = cfg.store.resolve(&cfg.data_dir)?;
    let input = std::fs::File::open(file).map_err(|e| format!("{file}: {e}"))?;
    let t = Instant::now();
    let opts = cfg.store.options(cfg.cache_mib * 1024 * 1024);
    let c = backup::restore(std::io::BufReader::new(input), &cfg.data_dir, kind, &opts)
        .map_err(|e| format!("restore {file}: {e}"))?;
    use crate::store::Tree;
    println!(
        "{} ({kind}): {} things, {} policies, {} entries in all restored in {:.1} s",
        cfg.data_dir.display(),
        c.of(Tree::Things),
        c.of(Tree::Policies),
        c.total(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
