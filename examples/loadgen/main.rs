//! edgetwin's load generator and footprint meter (`cargo run --release --example loadgen`).
//! `load` drives pipelined twin commands over N WebSocket connections against the raw echo
//! baseline and edgetwin in one run; `footprint` measures RSS, cold start and per-connection
//! memory; `fsync` measures the disk's durability floor; `login-storm` the peak RSS under failed
//! logins; `echo-server` is the baseline itself.

mod breakdown;
mod echo;
mod footprint;
mod fsync;
mod load;
mod opts;
mod procs;
mod stats;
mod storm;
mod workload;
mod wsconn;

use std::process::ExitCode;

const USAGE: &str = "usage: loadgen <command> [--option value ...]
  load        --conns N --window W --mix modify=80,merge=10,retrieve=10 --payload BYTES
              --twins N --acks none|persisted --subscribers S --rate CMDS_PER_S
              --warmup SECS --secs SECS --target both|echo|edgetwin --store sled|redb
              --label NAME --client-threads N --server-threads N
              --touch-all (modify every twin once before the window: steady state)
              --server-toml 'key = v; key = v' (appended to the server's config)
              [--server-bin PATH] [--data-base DIR] [--addr HOST:PORT --pid PID]
  footprint   --store sled|redb --twins N --idle-conns N --payload BYTES
              [--server-bin PATH] [--data-base DIR] [--server-threads N]
  idle        --addr HOST:PORT --conns N --hold SECS   (hold idle connections open)
  fsync       --n N --size BYTES [--data-base DIR]
  login-storm --attempts N --concurrency C --timing N --auth-toml 'key = v; key = v'
              [--server-bin PATH] [--runner qemu-aarch64] [--data-base DIR]
  echo-server --threads N";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprintln!("{USAGE}");
        return ExitCode::FAILURE;
    };
    let result = opts::Opts::parse(&args[1..]).and_then(|o| match cmd.as_str() {
        "load" => load::run(&o),
        "footprint" => footprint::run(&o),
        "idle" => footprint::idle(&o),
        "fsync" => fsync::run(&o),
        "login-storm" => storm::run(&o),
        "echo-server" => {
            let threads = o.get("threads", 2)?;
            o.check_all_used()?;
            echo::run(threads)
        }
        _ => Err(USAGE.to_owned()),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}
