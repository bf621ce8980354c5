//! kill -9 crash test (re-executes this test binary as the writer child, SIGKILLs it, reopens and
//! checks every acknowledged unit is present and no unit is torn) and the commits/s benchmark.

use super::*;
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "EDGETWIN_STORE_CRASH_CHILD";

/// Child half of the crash test: 4 writer threads, each unit = 2 numbered keys + an overwritten
/// `last/<t>`; `ACK` lines go out only after `durable()`. Runs until killed (60 s safety stop).
fn crash_child(kind: BackendKind, dir: &str, round: u32) {
    let s = Store::open(kind, Path::new(dir), CACHE).expect("child open");
    let start = Instant::now();
    std::thread::scope(|sc| {
        for t in 0..4u32 {
            let s = s.clone();
            sc.spawn(move || {
                for i in 0u32.. {
                    if start.elapsed() > Duration::from_secs(60) {
                        return;
                    }
                    let k = format!("{round}/{t}/{i:08}");
                    let v = format!("{k}:{}", "x".repeat(200));
                    let q = s.submit(vec![
                        put(Tree::Things, &format!("a/{k}"), &v),
                        put(Tree::Index, &format!("b/{k}"), &v),
                        put(Tree::Meta, &format!("last/{round}/{t}"), &i.to_string()),
                    ]);
                    block_on(s.durable(q)).expect("child durable");
                    println!("ACK {q} {round} {t} {i}");
                }
            });
        }
    });
}

pub(super) fn t_crash_kill9(kind: BackendKind, test_name: &str) {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        let (round, dir) = spec.split_once(':').expect("round:dir");
        return crash_child(kind, dir, round.parse().expect("round"));
    }
    let dir = TempDir::new().unwrap();
    for round in 0..3u32 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, format!("{round}:{}", dir.path().display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("ACK ") {
                    let f: Vec<u32> = rest
                        .split(' ')
                        .skip(1)
                        .map(|x| x.parse().unwrap())
                        .collect();
                    if tx.send((f[1], f[2])).is_err() {
                        break;
                    }
                }
            }
        });
        let mut acked: Vec<(u32, u32)> = Vec::new();
        while acked.len() < 300 + 400 * round as usize {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(a) => acked.push(a),
                Err(e) => {
                    let _ = child.kill();
                    panic!("child stalled after {} acks: {e}", acked.len());
                }
            }
        }
        child.kill().expect("SIGKILL child");
        child.wait().expect("reap child");
        reader.join().unwrap();
        acked.extend(rx.try_iter()); // lines already in the pipe were durable too
        let s = open(kind, &dir);
        for &(t, i) in &acked {
            let k = format!("{round}/{t}/{i:08}");
            let want = format!("{k}:{}", "x".repeat(200));
            assert_eq!(
                get_s(&s, Tree::Things, &format!("a/{k}")).as_ref(),
                Some(&want),
                "acked a/{k}"
            );
            assert_eq!(
                get_s(&s, Tree::Index, &format!("b/{k}")).as_ref(),
                Some(&want),
                "acked b/{k}"
            );
        }
        for t in 0..4 {
            let max_acked = acked.iter().filter(|a| a.0 == t).map(|a| a.1).max();
            let last = get_s(&s, Tree::Meta, &format!("last/{round}/{t}"))
                .map(|v| v.parse::<u32>().unwrap());
            assert!(
                last >= max_acked,
                "last/{round}/{t}: {last:?} < acked {max_acked:?}"
            );
        }
        // All-or-nothing units: the a/ and b/ key sets are identical (incl. unacked units).
        let strip = |tree, p: &str| -> Vec<Vec<u8>> {
            s.scan(tree, p.as_bytes(), None, usize::MAX)
                .unwrap()
                .into_iter()
                .map(|(k, _)| k[2..].to_vec())
                .collect()
        };
        let a = strip(Tree::Things, "a/");
        assert_eq!(a, strip(Tree::Index, "b/"), "torn unit after crash");
        let on_disk = a
            .iter()
            .filter(|k| k.starts_with(format!("{round}/").as_bytes()))
            .count();
        eprintln!(
            "{kind} crash round {round}: SIGKILL after {} acked units; {on_disk} units on disk, \
             every acked unit present, no torn unit",
            acked.len()
        );
        s.close().unwrap();
    }
}

pub(super) fn bench_commits(kind: BackendKind) {
    let dir = TempDir::new().unwrap();
    let s = open(kind, &dir);
    let val = "v".repeat(220);
    let n = 2000;
    let t = Instant::now();
    for i in 0..n {
        let q = s.submit(vec![put(Tree::Things, &format!("seq/{i:06}"), &val)]);
        block_on(s.durable(q)).unwrap();
    }
    let seq_rate = n as f64 / t.elapsed().as_secs_f64();
    let before = s.stats();
    let t = Instant::now();
    std::thread::scope(|sc| {
        for w in 0..8 {
            let (s, val) = (s.clone(), val.clone());
            sc.spawn(move || {
                for i in 0..n / 8 {
                    let q = s.submit(vec![put(Tree::Things, &format!("con/{w}/{i:06}"), &val)]);
                    block_on(s.durable(q)).unwrap();
                }
            });
        }
    });
    let con_rate = n as f64 / t.elapsed().as_secs_f64();
    let mid = s.stats();
    let batches = mid.committed_batches - before.committed_batches;
    // 64 async tasks on one executor thread, each awaiting its own write.
    let t = Instant::now();
    let ex = smol::LocalExecutor::new();
    let tasks: Vec<_> = (0..64)
        .map(|w| {
            let (s, val) = (s.clone(), val.clone());
            ex.spawn(async move {
                for i in 0..n / 64 {
                    let q = s.submit(vec![put(Tree::Things, &format!("task/{w}/{i:06}"), &val)]);
                    s.durable(q).await.unwrap();
                }
            })
        })
        .collect();
    block_on(ex.run(async {
        for t in tasks {
            t.await;
        }
    }));
    let n64 = (n / 64 * 64) as f64;
    let task_rate = n64 / t.elapsed().as_secs_f64();
    let task_batches = s.stats().committed_batches - mid.committed_batches;
    eprintln!(
        "BENCH {kind}: sequential {seq_rate:.0} durable writes/s (1 commit each); 8 threads {con_rate:.0}/s \
         ({:.1} writes/commit); 64 tasks {task_rate:.0}/s ({:.1} writes/commit)",
        n as f64 / batches as f64,
        n64 / task_batches as f64
    );
}
