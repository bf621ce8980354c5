//! The fuzz targets as tests: each runs its seeds and a bounded number of mutations in CI
//! (`EDGETWIN_FUZZ_ITERS`, default 6000, and `EDGETWIN_FUZZ_SECS`, default 8, whichever ends
//! first; `EDGETWIN_FUZZ_SEED` picks the mutation sequence). `scripts/fuzz.sh` runs them long.
//! A failure saves its input under `target/fuzz-failures/` and names the command to replay it
//! (`EDGETWIN_FUZZ_INPUT=<file>`).

use super::*;
use std::time::{Duration, Instant};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn fuzz(name: &str) {
    let targets = targets();
    let t = targets.iter().find(|t| t.name == name).expect("target");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if let Ok(file) = std::env::var("EDGETWIN_FUZZ_INPUT") {
        let input = std::fs::read(&file).expect("EDGETWIN_FUZZ_INPUT file");
        match (t.run)(&input) {
            Verdict::Violated(why) => panic!("{name}: {why}"),
            v => println!("fuzz {name}: replayed {file}: {v:?}"),
        }
        return;
    }
    let seeds = super::seeds(t, &root.join("tests/conformance"));
    assert!(!seeds.is_empty(), "{name} has seeds");
    if let Ok(dir) = std::env::var("EDGETWIN_FUZZ_EXPORT") {
        // seed corpus for cargo-fuzz (scripts/fuzz.sh)
        let dir = Path::new(&dir).join(name);
        std::fs::create_dir_all(&dir).expect("export dir");
        for (i, s) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), s).expect("write seed");
        }
        println!(
            "fuzz {name}: exported {} seeds to {}",
            seeds.len(),
            dir.display()
        );
        return;
    }
    let budget = Budget {
        iterations: env_u64("EDGETWIN_FUZZ_ITERS", 6000),
        time: Duration::from_secs(env_u64("EDGETWIN_FUZZ_SECS", 8)),
    };
    let seed = env_u64("EDGETWIN_FUZZ_SEED", 14);
    let started = Instant::now();
    let r = run(t, seeds, budget, seed);
    println!(
        "fuzz {name}: {} inputs ({} accepted) in {:.1} s, corpus {}, seed {seed}",
        r.iterations,
        r.accepted,
        started.elapsed().as_secs_f64(),
        r.corpus
    );
    if let Some(f) = r.failure {
        let dir = root.join("target/fuzz-failures");
        let file = dir.join(format!("{name}-{seed}-{}.bin", f.iteration));
        let saved = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&file, &f.input));
        panic!(
            "fuzz {name} (seed {seed}, iteration {}): {}\ninput: {}\nsaved: {} ({saved:?})\nreplay: EDGETWIN_FUZZ_INPUT={} cargo test --lib fuzz::tests::{name}",
            f.iteration,
            f.message,
            show(&f.input, 400),
            file.display(),
            file.display()
        );
    }
    assert!(
        r.accepted > 0,
        "{name}: the seeds must reach the parser's accepting side"
    );
}

macro_rules! fuzz_tests {
    ($($name:ident),* $(,)?) => {
        $(#[test] fn $name() { fuzz(stringify!($name)); })*

        #[test]
        fn every_target_has_a_test() {
            let names = [$(stringify!($name)),*];
            for t in targets() {
                assert!(names.contains(&t.name), "no test for fuzz target {}", t.name);
            }
        }
    };
}

fuzz_tests!(
    topic,
    envelope,
    headers,
    pointer,
    control,
    message_path,
    policy_path,
    ids,
    twin_command,
    policy_command,
    merge,
    rql,
    search_options,
    fields,
    cursor,
    mqtt_inbound,
    mqtt_mapping,
    config,
    http_request,
    cloudevents,
    backup_file,
    stored_value,
    read_summary,
);

#[test]
fn the_driver_finds_a_planted_bug() {
    // a harness that fails on any input with a 3-level nesting: the mutator must get there
    fn planted(b: &[u8]) -> Verdict {
        if crate::bounds::text_depth(b) >= 3 {
            Verdict::Violated("deep".into())
        } else {
            Verdict::Accepted
        }
    }
    let t = Target {
        name: "planted",
        run: planted,
        seeds: SeedKind::Own,
        dict: &["["],
    };
    let budget = Budget {
        iterations: 100_000,
        time: Duration::from_secs(30),
    };
    let r = run(&t, vec![b"{}".to_vec()], budget, 1);
    let f = r.failure.expect("found");
    assert_eq!(planted(&f.input), Verdict::Violated("deep".into()));
}
