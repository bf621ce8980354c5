//! Comparison primitives of the evaluator: literals prepared as operands (time placeholders
//! resolved), typed ordering of JSON scalars (exact int/double order), the string forms used by
//! `like`, and a small `*`/`?` wildcard matcher (no regex).

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::{Number, Value};

use super::{Env, Literal};
use crate::clock::{format_millis, parse_iso};

/// A literal prepared for comparison.
pub(super) enum Operand<'l> {
    Null,
    Bool(bool),
    Num(Num),
    Str(&'l str),
    /// `time:now...`: the instant and its ISO text.
    Iso(i64, String),
    /// `time:now_epoch_millis...`
    Millis(i64),
}

pub(super) fn operand<'l>(lit: &'l Literal, env: &Env) -> Operand<'l> {
    match lit {
        Literal::Null => Operand::Null,
        Literal::Bool(b) => Operand::Bool(*b),
        Literal::Long(i) => Operand::Num(Num::I(i128::from(*i))),
        Literal::Double(f) => Operand::Num(Num::F(*f)),
        Literal::Str(s) => Operand::Str(s),
        Literal::Time(t) if t.epoch_millis => Operand::Millis(t.instant(env.now_millis)),
        Literal::Time(t) => {
            let at = t.instant(env.now_millis);
            Operand::Iso(at, format_millis(at))
        }
    }
}

pub(super) fn equals(v: &Value, operand: &Operand) -> bool {
    matches!((v, operand), (Value::Null, Operand::Null))
        || compare(v, operand) == Some(Ordering::Equal)
}

/// Orders a document scalar against an operand of the same type; `None` across types and for
/// null. ISO time placeholders compare as instants with ISO strings (text order otherwise);
/// epoch-millis placeholders compare numerically with numbers and as text with strings.
pub(super) fn compare(v: &Value, operand: &Operand) -> Option<Ordering> {
    match (v, operand) {
        (Value::Bool(a), Operand::Bool(b)) => Some(a.cmp(b)),
        (Value::Number(n), Operand::Num(b)) => Some(num_cmp(Num::of(n)?, *b)),
        (Value::String(s), Operand::Str(b)) => Some(s.as_str().cmp(b)),
        (Value::String(s), Operand::Iso(at, text)) => Some(match parse_iso(s) {
            Some(ms) => ms.cmp(at),
            None => s.as_str().cmp(text.as_str()),
        }),
        (Value::Number(n), Operand::Millis(ms)) => {
            Some(num_cmp(Num::of(n)?, Num::I(i128::from(*ms))))
        }
        (Value::String(s), Operand::Millis(ms)) => Some(s.as_str().cmp(ms.to_string().as_str())),
        _ => None,
    }
}

/// A JSON or literal number, kept exact for integers.
#[derive(Clone, Copy)]
pub(super) enum Num {
    I(i128),
    F(f64),
}

impl Num {
    pub(super) fn of(n: &Number) -> Option<Num> {
        if let Some(i) = n.as_i64() {
            Some(Num::I(i128::from(i)))
        } else if let Some(u) = n.as_u64() {
            Some(Num::I(i128::from(u)))
        } else {
            n.as_f64().filter(|f| f.is_finite()).map(Num::F)
        }
    }
}

/// Exact numeric order (an integer equals a double with the same value: 7 == 7.0).
pub(super) fn num_cmp(a: Num, b: Num) -> Ordering {
    match (a, b) {
        (Num::I(x), Num::I(y)) => x.cmp(&y),
        (Num::F(x), Num::F(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        (Num::I(x), Num::F(y)) => int_float_cmp(x, y),
        (Num::F(x), Num::I(y)) => int_float_cmp(y, x).reverse(),
    }
}

fn int_float_cmp(i: i128, f: f64) -> Ordering {
    // `as` saturates, and integers from JSON or literals stay within +-2^64, so comparing with
    // the floor is exact; equal floors leave the fraction to decide.
    let floor = f.floor();
    match i.cmp(&(floor as i128)) {
        Ordering::Equal if f > floor => Ordering::Less,
        other => other,
    }
}

/// A compiled `like` / `ilike` pattern.
pub(super) struct LikePattern {
    chars: Vec<char>,
    fold: bool,
}

impl LikePattern {
    /// The pattern of a literal (its string form; `null` has none), case-folded for `ilike`.
    pub(super) fn new(lit: &Literal, env: &Env, fold: bool) -> Option<Self> {
        let text = like_pattern(lit, env)?;
        Some(LikePattern {
            chars: text.chars().map(|c| fold_char(c, fold)).collect(),
            fold,
        })
    }

    /// True if the whole string form of the scalar `v` matches.
    pub(super) fn matches(&self, v: &Value) -> bool {
        scalar_text(v).is_some_and(|text| {
            let text: Vec<char> = text.chars().map(|c| fold_char(c, self.fold)).collect();
            glob(&self.chars, &text)
        })
    }
}

/// `like` / `ilike` of one string against a pattern literal, without the string forms of other
/// types (the search index matches only strings).
pub fn like_text(lit: &Literal, text: &str, case_insensitive: bool, env: &Env) -> bool {
    LikePattern::new(lit, env, case_insensitive).is_some_and(|p| {
        let text: Vec<char> = text.chars().map(|c| fold_char(c, p.fold)).collect();
        glob(&p.chars, &text)
    })
}

/// The string form a `like` pattern is matched against (Ditto: `String.valueOf`); null has none.
fn scalar_text(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        _ => None,
    }
}

fn like_pattern(lit: &Literal, env: &Env) -> Option<String> {
    Some(match lit {
        Literal::Null => return None,
        Literal::Bool(b) => b.to_string(),
        Literal::Long(i) => i.to_string(),
        Literal::Double(f) => format!("{f:?}"),
        Literal::Str(s) => s.clone(),
        Literal::Time(t) => t.resolve(env.now_millis),
    })
}

fn fold_char(c: char, fold: bool) -> char {
    if !fold {
        c
    } else if c.is_ascii() {
        c.to_ascii_lowercase()
    } else {
        c.to_lowercase().next().unwrap_or(c)
    }
}

/// Whole-text wildcard match: `*` any sequence (also empty), `?` exactly one char.
fn glob(pattern: &[char], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                backtrack = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match backtrack {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    backtrack = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rql::parse;
    use serde_json::json;

    const NOW: i64 = 1_610_962_932_345; // 2021-01-18T09:42:12.345Z

    fn doc() -> Value {
        json!({
            "_modified": "2021-01-18T09:00:00Z",
            "attributes": {
                "name": "Living Room", "counter": 42, "temp": 21.5, "on": true, "nothing": null,
                "emptyStr": "", "tags": ["a", "bb"], "location": {"x": 1},
                "millis": 1610962932345i64, "at": "2021-01-18T10:00:00+01:00", "word": "ÄrGer"
            }
        })
    }

    fn m(filter: &str) -> bool {
        let q = parse(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
        q.matches(&doc(), &Env::at(NOW))
    }

    #[test]
    fn like_and_ilike() {
        for f in [
            "like(attributes/name,'Living*')",
            "like(attributes/name,'*Room')",
            "like(attributes/name,'*ing R*')",
            "like(attributes/name,'Living?Room')",
            "like(attributes/name,'L*g*m')",
            "like(attributes/name,'*')",
            "like(attributes/name,'**Room')",
            "like(attributes/name,'Living Room')",
            "ilike(attributes/name,'living*')",
            "ilike(attributes/name,'LIVING ROOM')",
            "like(attributes/counter,'4*')",
            "like(attributes/counter,42)",
            "like(attributes/on,'t?ue')",
            "like(attributes/on,true)",
            "like(attributes/emptyStr,'*')",
            "like(attributes/tags,'??')",
            "like(attributes/temp,'21.?')",
            "like(attributes/temp,21.5)",
            "ilike(attributes/word,'är*')",
            "ilike(attributes/name,'*ROOM')",
        ] {
            assert!(m(f), "{f}");
        }
        for f in [
            "like(attributes/name,'living*')",
            "like(attributes/name,'Living')",
            "like(attributes/name,'Room')",
            "like(attributes/name,'Living?')",
            "like(attributes/name,'?Living Room')",
            "like(attributes/nothing,'*')",
            "like(attributes/missing,'*')",
            "like(attributes/location,'*')",
            "like(attributes/emptyStr,'?')",
            "like(attributes/name,null)",
            "ilike(attributes/name,'kitchen')",
            "like(attributes/name,'Living.Room')",
            "like(attributes/word,'är*')",
            "like(attributes/nothing,'null')",
        ] {
            assert!(!m(f), "{f}");
        }
    }

    #[test]
    fn glob_matcher() {
        let g = |p: &str, t: &str| {
            glob(
                &p.chars().collect::<Vec<_>>(),
                &t.chars().collect::<Vec<_>>(),
            )
        };
        assert!(g("a**b", "axb"));
        assert!(g("*a*", "banana"));
        assert!(g("*ana", "banana"));
        assert!(!g("*a?", "a"));
        assert!(g("", ""));
        assert!(!g("", "a"));
        assert!(g("*", ""));
        assert!(g("?*", "ä"));
        assert!(!g("?", ""));
        assert!(g("a*b*c", "aXbYbZc"));
        assert!(!g("a*b*c", "aXbYbZ"));
        assert!(g(&"*a".repeat(50), &"a".repeat(200)));
        assert!(!g(&format!("{}b", "*a".repeat(20)), &"a".repeat(300)));
    }

    #[test]
    fn time_literals() {
        for f in [
            "gt(_modified,time:now-1h)",
            "lt(_modified,time:now)",
            "ge(_modified,time:now[h])",
            "eq(_modified,time:now[h])",
            "eq(attributes/at,time:now[h])",
            "lt(_modified,time:now+1d)",
            "eq(attributes/millis,time:now_epoch_millis)",
            "gt(attributes/millis,time:now_epoch_millis-1s)",
            "like(_modified,'2021-01-18*')",
            "in(attributes/millis,1,time:now_epoch_millis)",
        ] {
            assert!(m(f), "{f}");
        }
        for f in [
            "gt(_modified,time:now)",
            "eq(attributes/millis,time:now)",
            "eq(attributes/counter,time:now_epoch_millis)",
            "eq(attributes/name,time:now)",
            "lt(_modified,time:now-1d)",
            "eq(attributes/on,time:now)",
        ] {
            assert!(!m(f), "{f}");
        }
        let env = Env::at(NOW);
        let at = |f: &str, v: Value| {
            parse(f)
                .unwrap()
                .matches(&json!({"attributes": {"s": v}}), &env)
        };
        assert!(at(
            "eq(attributes/s,time:now_epoch_millis[s])",
            json!("1610962932000")
        ));
        assert!(at(
            "lt(attributes/s,time:now_epoch_millis)",
            json!("1610962932344")
        ));
        assert!(at(
            "like(attributes/s,time:now[d])",
            json!("2021-01-18T00:00:00.000Z")
        ));
        assert!(at(
            "lt(attributes/s,time:now)",
            json!("2021-01-18T09:42:12Z")
        ));
        assert!(at("lt(attributes/s,time:now)", json!("1999"))); // not ISO: text order
        assert!(at(
            "gt(attributes/s,time:now-1d)",
            json!(["x", "2021-01-18T00:00:00+00:00"])
        ));
    }

    #[test]
    fn typed_compare() {
        let s = Operand::Str("b");
        assert_eq!(compare(&json!("a"), &s), Some(Ordering::Less));
        assert_eq!(compare(&json!("b"), &s), Some(Ordering::Equal));
        assert_eq!(compare(&json!(1), &s), None);
        assert_eq!(
            compare(&json!(true), &Operand::Bool(false)),
            Some(Ordering::Greater)
        );
        assert_eq!(compare(&json!(null), &Operand::Null), None);
        assert!(equals(&json!(null), &Operand::Null));
        assert!(!equals(&json!(false), &Operand::Null));
        assert!(!equals(&json!({}), &Operand::Null));
        let lit = Literal::Double(2.0);
        assert!(equals(&json!(2), &operand(&lit, &Env::at(0))));
        assert_eq!(
            like_pattern(&Literal::Double(2.0), &Env::at(0)).as_deref(),
            Some("2.0")
        );
        assert_eq!(
            like_pattern(&Literal::Long(-3), &Env::at(0)).as_deref(),
            Some("-3")
        );
        assert_eq!(like_pattern(&Literal::Null, &Env::at(0)), None);
    }

    #[test]
    fn numbers_compare_exactly() {
        let n = |v: Value| v.as_number().and_then(Num::of).unwrap();
        assert_eq!(num_cmp(n(json!(7)), n(json!(7.0))), Ordering::Equal);
        assert_eq!(num_cmp(n(json!(7)), n(json!(7.5))), Ordering::Less);
        assert_eq!(num_cmp(n(json!(-7)), n(json!(-7.5))), Ordering::Greater);
        assert_eq!(
            num_cmp(n(json!(9007199254740993i64)), n(json!(9007199254740992.0))),
            Ordering::Greater
        );
        assert_eq!(num_cmp(n(json!(u64::MAX)), n(json!(1e300))), Ordering::Less);
        assert_eq!(
            num_cmp(n(json!(1e300)), n(json!(i64::MIN))),
            Ordering::Greater
        );
        assert_eq!(
            num_cmp(n(json!(-1e300)), n(json!(i64::MIN))),
            Ordering::Less
        );
        assert_eq!(num_cmp(n(json!(1.5)), n(json!(2.5))), Ordering::Less);
    }
}
