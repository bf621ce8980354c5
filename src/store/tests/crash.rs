//! kill -9 crash test under mixed load (re-executes this test binary as the writer child,
//! SIGKILLs it, reopens and checks): every unit acknowledged by `durable()` (first class) is
//! present; of the units nobody waited for (second class) at most the last flush interval is
//! missing; what is on disk is a gap-free prefix per writer and no unit is torn.
//! Also the ignored commits/s benchmark.

use super::*;
use std::collections::HashMap;
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "EDGETWIN_STORE_CRASH_CHILD";
/// The child's flush interval.
const INTERVAL: Duration = Duration::from_millis(200);
/// Allowance on top of the interval for the sync itself and scheduling on a busy machine.
const SLACK: Duration = Duration::from_millis(800);
/// Writer threads 0..WAITED wait for each unit; the others never do.
const WAITED: u32 = 2;
const THREADS: u32 = 4;

fn unit(round: u32, t: u32, i: u32) -> Vec<Op> {
    let k = format!("{round}/{t}/{i:08}");
    let v = format!("{k}:{}", "x".repeat(200));
    vec![
        put(Tree::Things, &format!("a/{k}"), &v),
        put(Tree::Index, &format!("b/{k}"), &v),
        put(Tree::Meta, &format!("last/{round}/{t}"), &i.to_string()),
    ]
}

/// Child half: threads 0..WAITED print `ACK t i` after `durable()`, the others print `SUB t i`
/// right after `submit` (about 1,000 units/s each). Runs until killed (60 s safety stop).
fn crash_child(kind: BackendKind, dir: &str, round: u32) {
    let o = opts(INTERVAL);
    let s = Store::open_with(kind, Path::new(dir), &o).expect("child open");
    let start = Instant::now();
    std::thread::scope(|sc| {
        for t in 0..THREADS {
            let s = s.clone();
            sc.spawn(move || {
                for i in 0u32.. {
                    if start.elapsed() > Duration::from_secs(60) {
                        return;
                    }
                    let q = s.submit(unit(round, t, i));
                    if t < WAITED {
                        block_on(s.durable(q)).expect("child durable");
                        println!("ACK {t} {i}");
                    } else {
                        println!("SUB {t} {i}");
                        std::thread::sleep(Duration::from_millis(1));
                    }
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
                let f: Vec<&str> = line.split(' ').collect();
                if f.len() == 3 && (f[0] == "ACK" || f[0] == "SUB") {
                    let (t, i) = (f[1].parse().unwrap(), f[2].parse().unwrap());
                    if tx.send((f[0] == "ACK", t, i, Instant::now())).is_err() {
                        break;
                    }
                }
            }
        });
        let started = Instant::now();
        let mut acked: Vec<(u32, u32)> = Vec::new();
        // per unwaited writer: (unit, when its line arrived), in order
        let mut submitted: HashMap<u32, Vec<(u32, Instant)>> = HashMap::new();
        while acked.len() < 300 + 400 * round as usize
            || started.elapsed() < Duration::from_millis(1500)
        {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok((true, t, i, _)) => acked.push((t, i)),
                Ok((false, t, i, at)) => submitted.entry(t).or_default().push((i, at)),
                Err(e) => {
                    let _ = child.kill();
                    panic!("child stalled after {} acks: {e}", acked.len());
                }
            }
        }
        child.kill().expect("SIGKILL child");
        let killed = Instant::now();
        child.wait().expect("reap child");
        reader.join().unwrap();
        for (ack, t, i, at) in rx.try_iter() {
            // lines already in the pipe: acked ones were durable too
            match ack {
                true => acked.push((t, i)),
                false => submitted.entry(t).or_default().push((i, at)),
            }
        }
        let s = open(kind, &dir);
        let present = |t: u32, i: u32| {
            let k = format!("{round}/{t}/{i:08}");
            get_s(&s, Tree::Things, &format!("a/{k}")).is_some()
        };
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
        // second class: everything submitted more than an interval (+ slack) before the kill
        let mut lost_recent = 0;
        for (t, subs) in &submitted {
            for &(i, at) in subs {
                if killed.duration_since(at) > INTERVAL + SLACK {
                    assert!(
                        present(*t, i),
                        "{kind}: unwaited {t}/{i} older than an interval lost"
                    );
                } else if !present(*t, i) {
                    lost_recent += 1;
                }
            }
        }
        // a gap-free prefix per writer, and `last/` agrees with it
        for t in 0..THREADS {
            let on_disk = s
                .scan(
                    Tree::Things,
                    format!("a/{round}/{t}/").as_bytes(),
                    None,
                    usize::MAX,
                )
                .unwrap()
                .len() as u32;
            assert!(
                on_disk == 0 || present(t, on_disk - 1),
                "{kind}: hole in writer {t}"
            );
            let last = get_s(&s, Tree::Meta, &format!("last/{round}/{t}"))
                .map(|v| v.parse::<u32>().unwrap());
            assert_eq!(last, on_disk.checked_sub(1), "{kind}: last/{round}/{t}");
            let max_acked = acked.iter().filter(|a| a.0 == t).map(|a| a.1).max();
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
        let unwaited: usize = submitted.values().map(Vec::len).sum();
        eprintln!(
            "{kind} crash round {round}: SIGKILL after {} acknowledged and {unwaited} unwaited \
             units; every acknowledged unit present, {lost_recent} unwaited units of the last \
             interval lost, none older; gap-free prefix, no torn unit",
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
    let batches = mid.wal_appends - before.wal_appends;
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
    let task_batches = s.stats().wal_appends - mid.wal_appends;
    eprintln!(
        "BENCH {kind}: sequential {seq_rate:.0} durable writes/s (1 commit each); 8 threads {con_rate:.0}/s \
         ({:.1} writes/commit); 64 tasks {task_rate:.0}/s ({:.1} writes/commit)",
        n as f64 / batches as f64,
        n64 / task_batches as f64
    );
}
