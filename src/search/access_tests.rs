use super::*;
use crate::policy::Enforcer;
use serde_json::json;

fn subjects(s: &[&str]) -> Vec<String> {
    s.iter().map(|x| (*x).to_owned()).collect()
}

fn policy(entries: Value) -> Value {
    json!({"policyId": "n:p", "entries": entries})
}

fn entry(subs: &[&str], resources: Value) -> Value {
    let s: serde_json::Map<String, Value> = subs
        .iter()
        .map(|x| ((*x).to_owned(), json!({"type": "t"})))
        .collect();
    json!({"subjects": s, "resources": resources})
}

fn grant(p: &[&str]) -> Value {
    json!({"grant": p, "revoke": []})
}

fn revoke(p: &[&str]) -> Value {
    json!({"grant": [], "revoke": p})
}

/// The enforcer's answer in the summary's terms.
fn truth(p: &Value, s: &[String]) -> (bool, bool) {
    let e = Enforcer::from_policy(p, 0, Some("n"));
    (
        e.has_unrestricted(s, "thing", &[], READ),
        e.has_partial(s, "thing", &[], READ),
    )
}

#[test]
fn granted_partial_revoked_and_nothing() {
    let p = policy(json!({
        "owner": entry(&["u:owner"], json!({"thing:/": grant(&["READ", "WRITE"])})),
        "attrs": entry(&["u:attrs"], json!({"thing:/attributes": grant(&["READ"])})),
        "cut": entry(&["u:cut"], json!({"thing:/": grant(&["READ"]),
                                       "thing:/features/secret": revoke(&["READ"])})),
        "writer": entry(&["u:writer"], json!({"thing:/": grant(&["WRITE"])})),
        "pol": entry(&["u:pol"], json!({"policy:/": grant(&["READ"])}))
    }));
    let s = Summary::of(&p);
    assert!(!s.fine);
    let cases = [
        (vec!["u:owner"], Verdict::All),
        (vec!["u:attrs"], Verdict::Ask),
        (vec!["u:cut"], Verdict::Ask),
        // a revoke for one of the requester's subjects cuts READ granted to another
        (vec!["u:owner", "u:cut"], Verdict::Ask),
        (vec!["u:owner", "u:attrs"], Verdict::All),
        (vec!["u:writer"], Verdict::Nothing),
        (vec!["u:pol"], Verdict::Nothing),
        (vec!["u:stranger"], Verdict::Nothing),
        (vec![], Verdict::Nothing),
    ];
    for (who, want) in cases {
        let who = subjects(&who);
        assert_eq!(s.verdict(&who), want, "{who:?}");
        let (all, any) = truth(&p, &who);
        assert_eq!(want == Verdict::All, all, "{who:?}: unrestricted");
        if want == Verdict::Nothing {
            assert!(!any, "{who:?}: nothing readable");
        }
    }
    assert_eq!(Summary::from_bytes(&s.to_bytes()), Some(s));
}

#[test]
fn imports_expiry_and_namespaces_are_fine_grained() {
    let base = json!({"owner": entry(&["u:owner"], json!({"thing:/": grant(&["READ"])}))});
    let mut imports = policy(base.clone());
    imports["imports"] = json!({"n:lib": {}});
    let mut empty_imports = policy(base.clone());
    empty_imports["imports"] = json!({});
    let mut expiring = base.clone();
    expiring["owner"]["subjects"]["u:owner"]["expiry"] = json!("2099-01-01T00:00:00Z");
    let mut namespaced = base.clone();
    namespaced["owner"]["namespaces"] = json!(["n"]);
    for (what, p, fine) in [
        ("imports", imports, true),
        ("empty imports", empty_imports, false),
        ("expiring subject", policy(expiring), true),
        ("namespaces", policy(namespaced), true),
        ("plain", policy(base), false),
    ] {
        let s = Summary::of(&p);
        assert_eq!(s.fine, fine, "{what}");
        let v = s.verdict(&subjects(&["u:owner"]));
        assert_eq!(v == Verdict::Ask, fine, "{what}: {v:?}");
        assert_eq!(Summary::from_bytes(&s.to_bytes()), Some(s), "{what}");
    }
}

#[test]
fn policy_op_writes_only_changes() {
    let a = policy(json!({"o": entry(&["u:a"], json!({"thing:/": grant(&["READ"])}))}));
    let b = policy(json!({"o": entry(&["u:b"], json!({"thing:/": grant(&["READ"])}))}));
    // same summary (a WRITE grant added): nothing to write
    let a2 = policy(json!({"o": entry(&["u:a"], json!({"thing:/": grant(&["READ", "WRITE"])}))}));
    let k = key("n:p", POLICY);
    let put = policy_op("n:p", None, Some(&a)).expect("created");
    assert_eq!(
        (put.key.clone(), put.value),
        (k.clone(), Some(Summary::of(&a).to_bytes()))
    );
    assert_eq!(policy_op("n:p", Some(&a), Some(&a2)), None);
    let changed = policy_op("n:p", Some(&a), Some(&b)).expect("changed");
    assert_eq!(changed.value, Some(Summary::of(&b).to_bytes()));
    let gone = policy_op("n:p", Some(&a), None).expect("deleted");
    assert_eq!((gone.key, gone.value), (k, None));
}

#[test]
fn malformed_summaries_are_refused() {
    for b in [&b""[..], b"X", b"F1", b"Pg", b"Pg\x00\x05ab", b"Pz\x00\x00"] {
        assert_eq!(Summary::from_bytes(b), None, "{b:?}");
        assert_eq!(verdict_of(b, &subjects(&["u:a"])), Verdict::Ask, "{b:?}");
    }
    assert_eq!(Summary::from_bytes(b"P"), Some(Summary::default()));
}

/// A small deterministic generator (no dependency): xorshift.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }
}

/// The summary against the enforcer on random policies: `All` exactly when the enforcer says
/// unrestricted READ, `Nothing` only when it grants no READ anywhere in the thing.
#[test]
fn summary_agrees_with_the_enforcer_on_random_policies() {
    let subs = ["u:a", "u:b", "u:c"];
    let paths = [
        "thing:/",
        "thing:/attributes",
        "thing:/attributes/x",
        "thing:/features/f",
        "policy:/",
    ];
    let perms: [&[&str]; 4] = [&["READ"], &["WRITE"], &["READ", "WRITE"], &[]];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut all, mut nothing, mut ask) = (0, 0, 0);
    for _ in 0..3000 {
        let mut entries = serde_json::Map::new();
        for e in 0..(1 + rng.next() % 3) {
            let mut res = serde_json::Map::new();
            for _ in 0..(1 + rng.next() % 3) {
                let g = perms[(rng.next() % 4) as usize];
                let r = perms[(rng.next() % 4) as usize];
                res.insert(
                    rng.pick(&paths).to_owned(),
                    json!({"grant": g, "revoke": r}),
                );
            }
            let who: Vec<&str> = (0..(1 + rng.next() % 2)).map(|_| rng.pick(&subs)).collect();
            entries.insert(format!("e{e}"), entry(&who, Value::Object(res)));
        }
        let p = policy(Value::Object(entries));
        let stored = Summary::of(&p).to_bytes();
        let s = Summary::from_bytes(&stored).expect("round trip");
        for who in [
            vec!["u:a"],
            vec!["u:b"],
            vec!["u:a", "u:b"],
            vec!["u:a", "u:c"],
            vec!["u:z"],
        ] {
            let who = subjects(&who);
            let (unrestricted, partial) = truth(&p, &who);
            assert_eq!(verdict_of(&stored, &who), s.verdict(&who), "{p} {who:?}");
            match s.verdict(&who) {
                Verdict::All => {
                    all += 1;
                    assert!(unrestricted, "{p} {who:?}");
                }
                Verdict::Nothing => {
                    nothing += 1;
                    assert!(!partial, "{p} {who:?}");
                }
                Verdict::Ask => {
                    ask += 1;
                    assert!(!unrestricted, "{p} {who:?}: All was possible");
                }
            }
        }
    }
    assert!(
        all > 200 && nothing > 500 && ask > 500,
        "{all} {nothing} {ask}"
    );
}

#[test]
fn a_things_own_policy_id_has_no_entry() {
    assert_eq!(thing_value("n:t", "n:t"), None, "Ditto's default: no entry");
    assert_eq!(thing_value("n:t", "n:p"), Some(b"n:p".to_vec()));
    assert_eq!(thing_value("n:t", ""), Some(Vec::new()), "no policy has it");
    assert_eq!(policy_of(b"n:t", None), b"n:t");
    assert_eq!(policy_of(b"n:t", Some(b"n:p")), b"n:p");
    assert_eq!(policy_of(b"n:t", Some(b"")), b"");
}
