//! The stable fuzz driver: a seeded mutator over a corpus (seeds, then inputs the harness
//! accepted), run for a number of iterations or seconds, catching panics and property
//! violations. Deterministic for a seed, so `EDGETWIN_FUZZ_SEED` reproduces a run.

use super::{Target, Verdict};
use serde_json::Value;
use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// Longest input the mutator produces (frames are bounded at 256 KiB; parsers must cope with
/// long inputs, and depth bombs of a few thousand levels fit easily).
const MAX_LEN: usize = 64 * 1024;
/// Most corpus entries kept.
const MAX_CORPUS: usize = 4096;

const INTERESTING: &[u8] = b"{}[]\"\\/,:~%0 \n\t()&=?*+-.'!$#@_;|<>^`";
const EXTREMES: &[&str] = &[
    "-9223372036854775809",
    "18446744073709551616",
    "1e400",
    "-0",
    "0.0000000000000000000001",
    "NaN",
    "\u{0}",
    "\u{7f}",
    "\u{feff}",
    "\u{1F600}",
    "ä",
    "%ff",
    "%00",
    "%2F",
    "~0",
    "~1",
    "\\u0000",
    "\\ud800",
    "null",
    "true",
];

/// How long a run goes: whichever limit comes first (`0` = no limit on iterations).
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// most iterations (mutated inputs; the seeds come on top)
    pub iterations: u64,
    /// most wall time
    pub time: Duration,
}

/// A property violation or panic, with the input that caused it.
#[derive(Debug, Clone)]
pub struct Failure {
    /// the input
    pub input: Vec<u8>,
    /// the panic message or the violated property
    pub message: String,
    /// at which iteration (0 = a seed)
    pub iteration: u64,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Report {
    /// target name
    pub target: &'static str,
    /// the RNG seed
    pub seed: u64,
    /// inputs tried (seeds included)
    pub iterations: u64,
    /// inputs the parser accepted
    pub accepted: u64,
    /// corpus size at the end
    pub corpus: usize,
    /// the first failure, which ends the run
    pub failure: Option<Failure>,
}

struct Mutator {
    rng: fastrand::Rng,
    corpus: Vec<Vec<u8>>,
    seen: HashSet<u64>,
    dict: Vec<&'static [u8]>,
}

fn hash(b: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    b.hash(&mut h);
    h.finish()
}

impl Mutator {
    fn add(&mut self, input: &[u8]) {
        if input.len() <= MAX_LEN / 4 && self.seen.insert(hash(input)) {
            if self.corpus.len() < MAX_CORPUS {
                self.corpus.push(input.to_vec());
            } else {
                let i = self.rng.usize(..self.corpus.len());
                self.corpus[i] = input.to_vec();
            }
        }
    }

    fn token(&mut self) -> Vec<u8> {
        match self.rng.u8(0..3) {
            0 if !self.dict.is_empty() => self.dict[self.rng.usize(..self.dict.len())].to_vec(),
            1 => EXTREMES[self.rng.usize(..EXTREMES.len())]
                .as_bytes()
                .to_vec(),
            _ => vec![INTERESTING[self.rng.usize(..INTERESTING.len())]],
        }
    }

    /// A random range `[a, b)` of `len` bytes (may be empty).
    fn range(&mut self, len: usize) -> (usize, usize) {
        let a = self.rng.usize(..=len);
        let b = (a + self.rng.usize(..=64.min(len - a))).min(len);
        (a, b)
    }

    fn mutate(&mut self) -> Vec<u8> {
        let d = self.corpus[self.rng.usize(..self.corpus.len())].clone();
        if self.rng.bool() {
            if let Some(j) = self.mutate_json(&d) {
                return j;
            }
        }
        self.mutate_bytes_of(d)
    }

    fn mutate_bytes_of(&mut self, mut d: Vec<u8>) -> Vec<u8> {
        for _ in 0..=self.rng.usize(..4) {
            let len = d.len();
            match self.rng.u8(0..11) {
                0 if len > 0 => {
                    let i = self.rng.usize(..len);
                    d[i] ^= 1 << self.rng.u8(0..8);
                }
                1 if len > 0 => {
                    let i = self.rng.usize(..len);
                    d[i] = INTERESTING[self.rng.usize(..INTERESTING.len())];
                }
                2 | 3 => {
                    let t = self.token();
                    let i = self.rng.usize(..=len);
                    d.splice(i..i, t);
                }
                4 => {
                    let (a, b) = self.range(len);
                    d.drain(a..b);
                }
                5 => {
                    // repeat a range: long lists, long pointers, depth bombs
                    let (a, b) = self.range(len);
                    let times = match self.rng.u8(0..4) {
                        0 => self.rng.usize(90..=130),
                        1 => self.rng.usize(1000..=5000),
                        _ => self.rng.usize(1..=8),
                    };
                    let chunk = d[a..b].to_vec();
                    let at = self.rng.usize(a..=b);
                    let rep: Vec<u8> = chunk
                        .iter()
                        .copied()
                        .cycle()
                        .take(chunk.len() * times)
                        .collect();
                    d.splice(at..at, rep);
                }
                6 => {
                    // cross over with another corpus entry
                    let other = &self.corpus[self.rng.usize(..self.corpus.len())];
                    let cut = self.rng.usize(..=len);
                    let from = self.rng.usize(..=other.len());
                    d.truncate(cut);
                    d.extend_from_slice(&other[from..]);
                }
                7 => {
                    // nest a range n times in brackets of one kind
                    let (a, b) = self.range(len);
                    let n = match self.rng.u8(0..3) {
                        0 => self.rng.usize(95..=135),
                        1 => self.rng.usize(1..=4),
                        _ => self.rng.usize(20..=40),
                    };
                    let (open, close): (&[u8], &[u8]) = match self.rng.u8(0..5) {
                        0 => (b"[", b"]"),
                        1 => (b"{\"a\":", b"}"),
                        2 => (b"not(", b")"),
                        3 => (b"a(", b")"),
                        _ => (b"/a", b""),
                    };
                    let mut out = d[..a].to_vec();
                    out.extend(open.repeat(n));
                    out.extend_from_slice(&d[a..b]);
                    out.extend(close.repeat(n));
                    out.extend_from_slice(&d[b..]);
                    d = out;
                }
                8 if len > 0 => d.truncate(self.rng.usize(..len)),
                9 if len > 1 => {
                    // swap two ranges' bytes (reorders parts)
                    let (a, b) = self.range(len);
                    d[a..b].reverse();
                }
                _ => {
                    let i = self.rng.usize(..=len);
                    let n = self.rng.u64(..u64::MAX).to_string();
                    d.splice(i..i, n.into_bytes());
                }
            }
        }
        d.truncate(MAX_LEN);
        d
    }
}

impl Mutator {
    /// Structure-aware: parse JSON input, change one node (a string's text by the byte
    /// mutations, a value replaced, nested, removed or copied), print it again. `None` if the
    /// input is no JSON.
    fn mutate_json(&mut self, d: &[u8]) -> Option<Vec<u8>> {
        let mut v: Value = serde_json::from_slice(d).ok()?;
        let mut nodes = 0usize;
        count(&v, &mut nodes);
        let target = self.rng.usize(..nodes.max(1));
        let mut seen = 0usize;
        let node = find(&mut v, target, &mut seen)?;
        match self.rng.u8(0..7) {
            0 | 1 => {
                if let Value::String(s) = node {
                    let bytes = self.mutate_bytes_of(s.clone().into_bytes());
                    *s = String::from_utf8_lossy(&bytes).into_owned();
                } else {
                    *node = Value::String(String::from_utf8_lossy(&self.token()).into_owned());
                }
            }
            2 => {
                let n = match self.rng.u8(0..3) {
                    0 => self.rng.usize(95..=130),
                    _ => self.rng.usize(1..=3),
                };
                let mut x = std::mem::take(node);
                for _ in 0..n {
                    x = if self.rng.bool() {
                        Value::Array(vec![x])
                    } else {
                        serde_json::json!({ "a": x })
                    };
                }
                *node = x;
            }
            3 => {
                *node = match self.rng.u8(0..5) {
                    0 => Value::Null,
                    1 => Value::Bool(self.rng.bool()),
                    2 => Value::from(self.rng.i64(..)),
                    3 => serde_json::json!({}),
                    _ => Value::from(self.rng.f64() * 1e6),
                };
            }
            4 => {
                if let Value::Object(m) = node {
                    if !m.is_empty() {
                        let i = self.rng.usize(..m.len());
                        if let Some(k) = m.keys().nth(i).cloned() {
                            m.shift_remove(&k);
                        }
                    }
                }
            }
            5 => {
                if let Value::Object(m) = node {
                    let key = String::from_utf8_lossy(&self.token()).into_owned();
                    let val = m.values().next().cloned().unwrap_or(Value::Null);
                    m.insert(key, val);
                }
            }
            _ => {
                if let Value::Array(a) = node {
                    if let Some(x) = a.first().cloned() {
                        let times = self.rng.usize(1..=20);
                        a.extend(std::iter::repeat_n(x, times));
                    }
                }
            }
        }
        let out = serde_json::to_vec(&v).ok()?;
        (out.len() <= MAX_LEN).then_some(out)
    }
}

fn count(v: &Value, n: &mut usize) {
    *n += 1;
    match v {
        Value::Array(a) => a.iter().for_each(|x| count(x, n)),
        Value::Object(m) => m.values().for_each(|x| count(x, n)),
        _ => {}
    }
}

fn find<'a>(v: &'a mut Value, target: usize, seen: &mut usize) -> Option<&'a mut Value> {
    if *seen == target {
        return Some(v);
    }
    *seen += 1;
    match v {
        Value::Array(a) => a.iter_mut().find_map(|x| find(x, target, seen)),
        Value::Object(m) => m.values_mut().find_map(|x| find(x, target, seen)),
        _ => None,
    }
}

fn panic_text(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| e.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

fn check(t: &Target, input: &[u8]) -> Result<bool, String> {
    match catch_unwind(AssertUnwindSafe(|| (t.run)(input))) {
        Ok(Verdict::Rejected) => Ok(false),
        Ok(Verdict::Accepted) => Ok(true),
        Ok(Verdict::Violated(why)) => Err(why),
        Err(e) => Err(format!("panicked: {}", panic_text(&*e))),
    }
}

/// Runs `t` over its seeds, then over mutations of the corpus, within `budget`.
pub fn run(t: &Target, seeds: Vec<Vec<u8>>, budget: Budget, seed: u64) -> Report {
    let mut m = Mutator {
        rng: fastrand::Rng::with_seed(seed),
        corpus: Vec::new(),
        seen: HashSet::new(),
        dict: t.dict.iter().map(|s| s.as_bytes()).collect(),
    };
    let mut report = Report {
        target: t.name,
        seed,
        iterations: 0,
        accepted: 0,
        corpus: 0,
        failure: None,
    };
    let start = Instant::now();
    let fail = |input: Vec<u8>, message: String, iteration: u64| {
        Some(Failure {
            input,
            message,
            iteration,
        })
    };
    for s in seeds.iter().chain(std::iter::once(&Vec::new())) {
        report.iterations += 1;
        match check(t, s) {
            Ok(ok) => {
                report.accepted += u64::from(ok);
                m.add(s);
            }
            Err(e) => {
                report.failure = fail(s.clone(), e, 0);
                return report;
            }
        }
    }
    let mut i = 0u64;
    while (budget.iterations == 0 || i < budget.iterations) && start.elapsed() < budget.time {
        i += 1;
        report.iterations += 1;
        let input = m.mutate();
        match check(t, &input) {
            Ok(true) => {
                report.accepted += 1;
                m.add(&input);
            }
            Ok(false) => {
                // keep a few rejected inputs too: they are often one step from accepted ones
                if m.rng.u8(0..32) == 0 {
                    m.add(&input);
                }
            }
            Err(e) => {
                report.failure = fail(input, e, i);
                break;
            }
        }
    }
    report.corpus = m.corpus.len();
    report
}

/// An input shown for a report: UTF-8 with escapes, cut to `max` characters.
pub fn show(input: &[u8], max: usize) -> String {
    let s = String::from_utf8_lossy(input);
    let mut out: String = s.chars().take(max).flat_map(char::escape_debug).collect();
    if s.chars().count() > max {
        out.push_str(&format!("... ({} bytes)", input.len()));
    }
    out
}
