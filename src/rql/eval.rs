//! In-memory evaluation of a [`Query`] against a thing-shaped JSON document (event filters,
//! conditions, search over the local store), following Ditto's ThingPredicatePredicateVisitor
//! with the typed comparisons of the spec, and the property lookup used for sorting.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::Value;

use super::compare::{compare, equals, operand, LikePattern, Operand};
use super::{CmpOp, Env, Literal, Property, Query};

impl Query {
    /// True if `doc` (a thing as JSON, possibly partial) satisfies this filter.
    ///
    /// Semantics: arrays match if any (nested) element matches; `ne` is `not(eq)` and so also
    /// matches absent fields (in-memory behaviour; the search index may differ); ordering
    /// operators compare only same-typed values (int vs double numerically); objects never
    /// compare; `like`/`ilike` match the whole string form of scalars (not null).
    pub fn matches(&self, doc: &Value, env: &Env) -> bool {
        match self {
            Query::And(qs) => qs.iter().all(|q| q.matches(doc, env)),
            Query::Or(qs) => qs.iter().any(|q| q.matches(doc, env)),
            Query::Not(q) => !q.matches(doc, env),
            Query::Exists(p) => !resolve(doc, p, env).is_empty(),
            Query::Empty(p) => resolve(doc, p, env).iter().all(|v| is_empty(v)),
            Query::In { prop, values } => {
                let found = resolve(doc, prop, env);
                values.iter().any(|lit| {
                    let operand = operand(lit, env);
                    any_scalar(&found, |v| equals(v, &operand))
                })
            }
            Query::Cmp { op, prop, value } => {
                let found = resolve(doc, prop, env);
                cmp_matches(*op, &found, value, env)
            }
        }
    }
}

fn cmp_matches(op: CmpOp, found: &[Cow<'_, Value>], lit: &Literal, env: &Env) -> bool {
    let operand = operand(lit, env);
    let ordered = |want: fn(Ordering) -> bool| {
        !matches!(operand, Operand::Null)
            && any_scalar(found, |v| compare(v, &operand).is_some_and(want))
    };
    match op {
        CmpOp::Eq => any_scalar(found, |v| equals(v, &operand)),
        CmpOp::Ne => !any_scalar(found, |v| equals(v, &operand)),
        CmpOp::Gt => ordered(|o| o == Ordering::Greater),
        CmpOp::Ge => ordered(|o| o != Ordering::Less),
        CmpOp::Lt => ordered(|o| o == Ordering::Less),
        CmpOp::Le => ordered(|o| o != Ordering::Greater),
        CmpOp::Like | CmpOp::ILike => LikePattern::new(lit, env, op == CmpOp::ILike)
            .is_some_and(|pattern| any_scalar(found, |v| pattern.matches(v))),
    }
}

/// The values `prop` denotes in `doc`: empty if absent; several when the path crosses arrays
/// (`attributes/tags/room` over `[{"room":..},..]`) or uses the feature wildcard
/// (`features/*/properties/x`). `_namespace`/`namespace` fall back to the namespace part of
/// `thingId`. Placeholder properties need an [`Env`] and yield nothing here.
pub fn lookup<'a>(doc: &'a Value, prop: &Property) -> Vec<Cow<'a, Value>> {
    if prop.placeholder.is_some() {
        return Vec::new();
    }
    let mut out: Vec<&'a Value> = Vec::new();
    let segs = &prop.segments;
    if segs.len() >= 2 && segs[0] == "features" && segs[1] == "*" {
        if let Some(Value::Object(features)) = doc.get("features") {
            for feature in features.values() {
                walk(feature, &segs[2..], &mut out);
            }
        }
        return out.into_iter().map(Cow::Borrowed).collect();
    }
    walk(doc, segs, &mut out);
    let mut out: Vec<Cow<'a, Value>> = out.into_iter().map(Cow::Borrowed).collect();
    if out.is_empty() && matches!(segs.as_slice(), [r] if r == "_namespace" || r == "namespace") {
        if let Some(ns) = doc.get("_namespace") {
            out.push(Cow::Borrowed(ns));
        } else if let Some((ns, _)) = doc
            .get("thingId")
            .and_then(Value::as_str)
            .and_then(|id| id.split_once(':'))
        {
            out.push(Cow::Owned(Value::String(ns.to_owned())));
        }
    }
    out
}

/// Descends `segs` from `v`; an array on the way applies the same segment to every element.
fn walk<'a>(v: &'a Value, segs: &[String], out: &mut Vec<&'a Value>) {
    let Some((seg, rest)) = segs.split_first() else {
        out.push(v);
        return;
    };
    match v {
        Value::Object(m) => {
            if let Some(child) = m.get(seg.as_str()) {
                walk(child, rest, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| walk(item, segs, out)),
        _ => {}
    }
}

/// Like [`lookup`], plus placeholder properties resolved through `env` (`time:` built in).
fn resolve<'a>(doc: &'a Value, prop: &Property, env: &Env) -> Vec<Cow<'a, Value>> {
    let Some((prefix, name)) = &prop.placeholder else {
        return lookup(doc, prop);
    };
    let resolved = env.placeholders.and_then(|f| f(prefix, name)).or_else(|| {
        if prefix != "time" {
            return None;
        }
        let t = super::TimePlaceholder::parse(name).ok()?;
        Some(if t.epoch_millis {
            Value::from(t.instant(env.now_millis))
        } else {
            Value::String(t.resolve(env.now_millis))
        })
    });
    resolved.map(Cow::Owned).into_iter().collect()
}

/// `empty()`: null, `""`, `[]` or `{}`.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// True if `pred` holds for any scalar among `found`, flattening nested arrays (objects skipped).
fn any_scalar(found: &[Cow<'_, Value>], pred: impl Fn(&Value) -> bool + Copy) -> bool {
    fn go(v: &Value, pred: impl Fn(&Value) -> bool + Copy) -> bool {
        match v {
            Value::Array(items) => items.iter().any(|i| go(i, pred)),
            Value::Object(_) => false,
            scalar => pred(scalar),
        }
    }
    found.iter().any(|v| go(v, pred))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rql::{parse, parse_property, PropertyUse};
    use serde_json::json;

    const NOW: i64 = 1_610_962_932_345; // 2021-01-18T09:42:12.345Z

    fn thing() -> Value {
        json!({
            "thingId": "org.eclipse.ditto:thing1",
            "policyId": "org.eclipse.ditto:policy1",
            "definition": "org.eclipse.ditto:Sensor:1.0",
            "_revision": 7,
            "attributes": {
                "counter": 42, "temp": 21.5, "seven": 7.0, "name": "Living Room", "on": true,
                "nothing": null, "emptyStr": "", "emptyArr": [], "emptyObj": {}, "zero": 0,
                "tags": ["a", "b"], "nested": [[1, 2], [3]], "big": 18446744073709551615u64,
                "rooms": [{"room": "kitchen"}, {"room": "bath", "size": 9}, {"other": 1}],
                "location": {"lat": 1.5}, "neg": -5
            },
            "features": {
                "lamp": {"properties": {"on": true, "brightness": 80}, "definition": ["org:Lamp:1"]},
                "sensor": {"properties": {"brightness": 20}, "desiredProperties": {"brightness": 30}},
                "bare": {}
            }
        })
    }

    /// Each line: `+` (must match) or `-` (must not match), then filters separated by ';'.
    fn check(table: &str) {
        let doc = thing();
        for line in table.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (want, filters) = match line.split_at(1) {
                ("+", rest) => (true, rest),
                ("-", rest) => (false, rest),
                _ => panic!("bad table line {line}"),
            };
            for f in filters.split(';').map(str::trim).filter(|f| !f.is_empty()) {
                let q = parse(f).unwrap_or_else(|e| panic!("{f}: {e}"));
                assert_eq!(q.matches(&doc, &Env::at(NOW)), want, "{f}");
            }
        }
    }

    #[test]
    fn eq_is_typed() {
        check(
            r#"
            + eq(attributes/counter,42); eq(attributes/counter,42.0); eq(attributes/seven,7)
            + eq(attributes/temp,21.5); eq(attributes/name,'Living Room'); eq(attributes/on,true)
            + eq(attributes/nothing,null); eq(thingId,"org.eclipse.ditto:thing1"); eq(/_revision,7)
            + eq(attributes/neg,-5); eq(attributes/location/lat,1.5)
            + eq(definition,'org.eclipse.ditto:Sensor:1.0'); lt(attributes/big,18446744073709551616.0)
            - eq(attributes/counter,'42'); eq(attributes/counter,42.5); eq(attributes/on,'true')
            - eq(attributes/on,1); eq(attributes/nothing,'null'); eq(attributes/name,null)
            - eq(attributes/missing,null); eq(attributes/location,null); eq(attributes/zero,false)
            - eq(attributes/name,'living room'); eq(attributes/emptyObj,null)
            - eq(attributes/big,18446744073709551615.0); eq(attributes/emptyStr,null)
            "#,
        );
    }

    #[test]
    fn ne_is_not_eq() {
        check(
            "
            + ne(attributes/counter,41); ne(attributes/counter,'42'); ne(attributes/missing,1)
            + ne(attributes/nothing,1); ne(attributes/tags,'c'); ne(attributes/name,null)
            + ne(attributes/location,1); ne(attributes/rooms/room,'garage'); ne(attributes/missing,null)
            - ne(attributes/counter,42); ne(attributes/tags,'a'); ne(attributes/nothing,null)
            - ne(attributes/rooms/room,'bath')
            ",
        );
    }

    #[test]
    fn ordering_compares_same_types_only() {
        check(
            "
            + gt(attributes/counter,41); ge(attributes/counter,42); lt(attributes/counter,42.5)
            + le(attributes/counter,42); gt(attributes/temp,21); lt(attributes/neg,-4.9)
            + gt(attributes/name,'Living'); lt(attributes/name,'M'); ge(attributes/on,false)
            + gt(attributes/on,false); le(attributes/on,true); gt(attributes/big,9223372036854775807)
            + lt(attributes/seven,7.000001); gt(attributes/seven,6); gt(attributes/zero,-1)
            - gt(attributes/counter,42); lt(attributes/counter,42); gt(attributes/counter,'1')
            - lt(attributes/name,5); gt(attributes/on,true); lt(attributes/on,true); lt(attributes/on,false)
            - gt(attributes/nothing,null); ge(attributes/nothing,null); le(attributes/counter,null)
            - gt(attributes/missing,1); gt(attributes/location,0); ge(attributes/on,1)
            - le(attributes/nothing,0); ge(attributes/emptyObj,'')
            ",
        );
    }

    #[test]
    fn arrays_match_any_element() {
        check(
            "
            + eq(attributes/tags,'a'); eq(attributes/tags,'b'); in(attributes/tags,'x','b')
            + gt(attributes/tags,'a'); eq(attributes/nested,3); lt(attributes/nested,2)
            + eq(attributes/rooms/room,'bath'); eq(attributes/rooms/size,9)
            + like(attributes/rooms/room,'kit*'); exists(attributes/rooms/other)
            - eq(attributes/tags,'c'); gt(attributes/tags,'b'); eq(attributes/rooms/room,'garage')
            - exists(attributes/rooms/missing); eq(attributes/rooms,'bath'); eq(attributes/emptyArr,null)
            ",
        );
    }

    #[test]
    fn in_is_or_of_eq() {
        check(
            "
            + in(attributes/counter,1,2,42); in(attributes/counter,42.0); in(attributes/nothing,1,null)
            + in(thingId,'x','org.eclipse.ditto:thing1')
            - in(attributes/counter,'42',41); in(attributes/missing,null); in(attributes/name,'a','b')
            ",
        );
    }

    #[test]
    fn exists_and_empty() {
        check(
            "
            + exists(attributes/nothing); exists(attributes/counter); exists(features/lamp)
            + exists(features/bare); exists(features/lamp/properties); exists(features/*)
            + exists(features/lamp/definition); exists(features/sensor/desiredProperties/brightness)
            + exists(_namespace); exists(thingId); not(exists(attributes/missing))
            + empty(attributes/nothing); empty(attributes/missing); empty(attributes/emptyStr)
            + empty(attributes/emptyArr); empty(attributes/emptyObj); empty(features/bare)
            + empty(features/bare/properties); empty(features/nope/properties/x); empty(_metadata)
            - exists(attributes/missing); exists(features/nope); exists(features/bare/properties)
            - exists(_metadata); empty(attributes/zero); empty(attributes/counter); empty(attributes/tags)
            - empty(features/lamp); empty(thingId); empty(attributes/rooms/room); empty(attributes/on)
            ",
        );
    }

    #[test]
    fn feature_wildcard_and_namespace() {
        check(
            "
            + eq(features/*/properties/brightness,20); gt(features/*/properties/brightness,70)
            + eq(features/*/properties/on,true); eq(features/*/desiredProperties/brightness,30)
            + exists(features/*/properties/on); eq(features/lamp/definition,'org:Lamp:1')
            + eq(_namespace,'org.eclipse.ditto'); eq(namespace,'org.eclipse.ditto'); like(_namespace,'org.*')
            - eq(features/*/properties/brightness,50); exists(features/*/properties/nope)
            - eq(features/*/desiredProperties/brightness,20)
            ",
        );
        let env = Env::at(NOW);
        let q = parse("eq(_namespace,'explicit')").unwrap();
        assert!(q.matches(&json!({"thingId": "a:b", "_namespace": "explicit"}), &env));
        assert!(!q.matches(&json!({"thingId": "explicit"}), &env));
        assert!(!q.matches(&json!({"thingId": 5}), &env));
        for odd in [
            json!({}),
            json!([1, 2]),
            Value::Null,
            json!("x"),
            json!({"features": [1]}),
        ] {
            assert!(!q.matches(&odd, &env));
            assert!(!parse("exists(features/*)").unwrap().matches(&odd, &env));
        }
    }

    #[test]
    fn logic() {
        check(
            "
            + and(eq(attributes/counter,42),eq(attributes/on,true)); not(eq(attributes/counter,1))
            + or(eq(attributes/counter,1),eq(attributes/on,true)); not(not(eq(attributes/counter,42)))
            + and(or(eq(thingId,'x'),exists(attributes/tags)),not(empty(attributes/name)))
            - and(eq(attributes/counter,42),eq(attributes/on,false)); not(exists(thingId))
            - or(eq(attributes/counter,1),eq(attributes/on,false))
            ",
        );
    }

    #[test]
    fn placeholder_properties_use_the_resolver() {
        let resolver = |prefix: &str, name: &str| match (prefix, name) {
            ("topic", "action") => Some(json!("modified")),
            ("resource", "path") => Some(json!("/attributes/counter")),
            ("entity", "id") => Some(json!(["a:1", "b:2"])),
            _ => None,
        };
        let env = Env {
            now_millis: NOW,
            placeholders: Some(&resolver),
        };
        let doc = json!({});
        let t = |f: &str| parse(f).unwrap().matches(&doc, &env);
        assert!(t("eq(topic:action,'modified')"));
        assert!(t("in(topic:action,'created','modified')"));
        assert!(t("like(resource:path,'/attributes/*')"));
        assert!(t("eq(entity:id,'b:2')"));
        assert!(t("exists(topic:action)"));
        assert!(!t("exists(topic:subject)"));
        assert!(t("ne(topic:subject,'x')"));
        assert!(t("empty(topic:subject)"));
        assert!(!t("eq(topic:action,'deleted')"));
        let plain = Env::at(NOW);
        assert!(!parse("exists(topic:action)").unwrap().matches(&doc, &plain));
        assert!(parse("eq(time:now,'2021-01-18T09:42:12.345Z')")
            .unwrap()
            .matches(&doc, &plain));
        assert!(parse("eq(time:now_epoch_millis,1610962932345)")
            .unwrap()
            .matches(&doc, &plain));
        assert!(parse("eq(time:now[d],'2021-01-18T00:00:00.000Z')")
            .unwrap()
            .matches(&doc, &plain));
    }

    #[test]
    fn lookup_flattens_and_ignores_placeholders() {
        let doc = thing();
        let p = parse_property("attributes/rooms/room", PropertyUse::Compare).unwrap();
        let found: Vec<Value> = lookup(&doc, &p).into_iter().map(Cow::into_owned).collect();
        assert_eq!(found, [json!("kitchen"), json!("bath")]);
        let p = parse_property("features/*/properties/brightness", PropertyUse::Compare).unwrap();
        assert_eq!(lookup(&doc, &p).len(), 2);
        let p = parse_property("topic:action", PropertyUse::Compare).unwrap();
        assert!(lookup(&doc, &p).is_empty());
    }
}
