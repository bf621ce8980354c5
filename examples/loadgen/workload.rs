//! What the generator sends: Ditto Protocol twin commands (modify attribute, merge feature
//! properties, retrieve) on `bench:t<k>` twins, chosen by a weighted mix, and the correlation-id
//! scheme `c<conn>.<seq>.<ns>` that carries the send time so any receiver (the sender itself
//! for responses, a subscriber for events) can compute latency without shared state.

use std::fmt::Write;

/// Namespace of every benchmark twin.
pub const NS: &str = "bench";

/// Command kinds of the mix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Modify,
    Merge,
    Retrieve,
}

/// Weighted mix of command kinds, e.g. `modify=80,merge=10,retrieve=10`.
#[derive(Debug, Clone)]
pub struct Mix(pub Vec<(Kind, u32)>);

impl Mix {
    /// Parses `kind=weight,...`.
    pub fn parse(s: &str) -> Result<Mix, String> {
        let mut v = Vec::new();
        for part in s.split(',').filter(|p| !p.is_empty()) {
            let (k, w) = part.split_once('=').unwrap_or((part, "1"));
            let kind = match k {
                "modify" => Kind::Modify,
                "merge" => Kind::Merge,
                "retrieve" => Kind::Retrieve,
                _ => {
                    return Err(format!(
                        "unknown command kind '{k}' (modify, merge, retrieve)"
                    ))
                }
            };
            let w: u32 = w.parse().map_err(|_| format!("bad weight in '{part}'"))?;
            v.push((kind, w));
        }
        if v.iter().map(|(_, w)| w).sum::<u32>() == 0 {
            return Err("the mix needs a positive weight".into());
        }
        Ok(Mix(v))
    }

    fn pick(&self, rng: &mut fastrand::Rng) -> Kind {
        let total: u32 = self.0.iter().map(|(_, w)| w).sum();
        let mut r = rng.u32(0..total);
        for (k, w) in &self.0 {
            if r < *w {
                return *k;
            }
            r -= w;
        }
        Kind::Modify
    }

    /// True if the mix has only retrieves (no events, no writes).
    pub fn read_only(&self) -> bool {
        self.0.iter().all(|(k, w)| *k == Kind::Retrieve || *w == 0)
    }
}

/// Builds the frames of one connection.
pub struct Workload {
    conn: usize,
    seq: u64,
    twins: u32,
    mix: Mix,
    payload: String,
    acks: &'static str,
    rng: fastrand::Rng,
}

impl Workload {
    /// `acks_none`: `requested-acks: []` (answer without waiting for the disk) or the default
    /// (`twin-persisted`: answer once durable).
    pub fn new(conn: usize, twins: u32, mix: Mix, payload: usize, acks_none: bool) -> Workload {
        Workload {
            conn,
            seq: 0,
            twins: twins.max(1),
            mix,
            payload: "x".repeat(payload),
            acks: if acks_none {
                r#","requested-acks":[]"#
            } else {
                ""
            },
            rng: fastrand::Rng::with_seed(conn as u64 + 1),
        }
    }

    /// The next command frame, stamped with `sent_ns` (ns since the run's epoch).
    pub fn next_frame(&mut self, sent_ns: u64, out: &mut String) {
        self.seq += 1;
        out.clear();
        let k = self.rng.u32(0..self.twins);
        let j = self.rng.u32(0..8);
        let (conn, seq, acks, p) = (self.conn, self.seq, self.acks, &self.payload);
        let head = |out: &mut String, action: &str| {
            let _ = write!(
                out,
                r#"{{"topic":"{NS}/t{k}/things/twin/commands/{action}","headers":{{"correlation-id":"c{conn}.{seq}.{sent_ns}"{acks}"#
            );
        };
        let _ = match self.mix.pick(&mut self.rng) {
            Kind::Modify => {
                head(out, "modify");
                write!(out, r#"}},"path":"/attributes/a{j}","value":"{p}"}}"#)
            }
            Kind::Merge => {
                head(out, "merge");
                write!(
                    out,
                    r#","content-type":"application/merge-patch+json"}},"path":"/features/f/properties","value":{{"p{j}":"{p}"}}}}"#
                )
            }
            Kind::Retrieve => {
                head(out, "retrieve");
                write!(out, r#"}},"path":"/attributes/a{j}"}}"#)
            }
        };
    }
}

/// The frame that creates (or replaces) twin `k` with an attribute and a feature `f`.
pub fn put_twin(k: u32, cid: &str, payload: usize) -> String {
    let p = "x".repeat(payload);
    format!(
        r#"{{"topic":"{NS}/t{k}/things/twin/commands/modify","headers":{{"correlation-id":"{cid}","requested-acks":[]}},"path":"/","value":{{"attributes":{{"a0":"{p}"}},"features":{{"f":{{"properties":{{"p0":"{p}"}}}}}}}}}}"#
    )
}

/// The send time (ns since the run's epoch) carried in a frame's correlation-id, if any.
pub fn sent_ns(frame: &str) -> Option<u64> {
    const KEY: &str = r#""correlation-id":""#;
    let start = frame.find(KEY)? + KEY.len();
    let cid = &frame[start..start + frame[start..].find('"')?];
    cid.strip_prefix('c')?.rsplit('.').next()?.parse().ok()
}

/// The `status` of a response frame (absent in echoes and events).
pub fn status(frame: &str) -> Option<u16> {
    let i = frame.rfind(r#""status":"#)? + 9;
    frame.get(i..i + 3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_json_and_carry_the_send_time() {
        let mix = Mix::parse("modify=1,merge=1,retrieve=1").unwrap();
        let mut w = Workload::new(3, 10, mix, 4, true);
        let mut s = String::new();
        for i in 0..30 {
            w.next_frame(1000 + i, &mut s);
            let v: serde_json::Value = serde_json::from_str(&s).unwrap();
            assert_eq!(v["headers"]["requested-acks"], serde_json::json!([]));
            assert_eq!(sent_ns(&s), Some(1000 + i));
        }
        let v: serde_json::Value = serde_json::from_str(&put_twin(7, "x", 2)).unwrap();
        assert_eq!(v["value"]["features"]["f"]["properties"]["p0"], "xx");
    }

    #[test]
    fn status_is_found() {
        assert_eq!(status(r#"{"topic":"a","status":204}"#), Some(204));
        assert_eq!(status(r#"{"topic":"a"}"#), None);
    }
}
