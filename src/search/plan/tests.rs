//! Unit tests of the planner: ranges contain exactly their candidates, sources per operator.
use super::*;
use crate::rql::parse;
use serde_json::json;

fn src(f: &str) -> Option<Source> {
    source_for(&parse(f).unwrap(), 0)
}

fn range(f: &str) -> Range {
    match src(f) {
        Some(Source::Index(r)) => r,
        other => panic!("{f}: {other:?}"),
    }
}

fn vkey(path: &str, v: serde_json::Value) -> Vec<u8> {
    keys::value_key(path, &v, "n:t")
}

#[test]
fn ranges_contain_exactly_their_candidates() {
    let p = "attributes/n";
    let table: [(&str, &[serde_json::Value], &[serde_json::Value]); 9] = [
        (
            "eq(attributes/n,5)",
            &[json!(5), json!(5.0)],
            &[json!(6), json!("5"), json!(null)],
        ),
        (
            "gt(attributes/n,5)",
            &[json!(5.5), json!(1e9)],
            &[json!(5), json!(4), json!("6"), json!(true)],
        ),
        ("ge(attributes/n,5)", &[json!(5), json!(6)], &[json!(4.9)]),
        (
            "lt(attributes/n,5)",
            &[json!(4.9), json!(-1e9)],
            &[json!(5), json!(null), json!("1")],
        ),
        ("le(attributes/n,5)", &[json!(5), json!(-5)], &[json!(5.01)]),
        (
            "gt(attributes/n,'b')",
            &[json!("bb"), json!("c")],
            &[json!("b"), json!("a"), json!(9)],
        ),
        (
            "like(attributes/n,'ab*')",
            &[json!("ab"), json!("abc")],
            &[json!("a"), json!("b"), json!(1)],
        ),
        (
            "ilike(attributes/n,'ab*')",
            &[json!("AB"), json!("x")],
            &[json!(1), json!(null)],
        ),
        (
            "eq(attributes/n,null)",
            &[json!(null)],
            &[json!(0), json!("")],
        ),
    ];
    for (f, inside, outside) in table {
        let r = range(f);
        for v in inside {
            assert!(r.contains(&vkey(p, v.clone())), "{f} should contain {v}");
        }
        for v in outside {
            assert!(
                !r.contains(&vkey(p, v.clone())),
                "{f} should not contain {v}"
            );
        }
        assert_eq!(r.thing_id(&vkey(p, inside[0].clone())), Some("n:t"));
    }
    assert!(range("eq(attributes/n,5)").single_value);
    assert!(range("like(attributes/n,'exact')").single_value);
    assert!(!range("gt(attributes/n,5)").single_value);
    let big = range("gt(attributes/n,9007199254740993)");
    assert!(
        big.contains(&vkey(p, json!(9007199254740992u64))),
        "not exact: boundary encodings stay candidates"
    );
    assert_eq!(src("gt(attributes/n,null)"), Some(Source::empty()));
}

#[test]
fn intersections_of_ranges_on_one_path() {
    let both = |a: &str, b: &str| intersect(&range(a), &range(b));
    let r = both("ge(attributes/n,2)", "lt(attributes/n,5)").unwrap();
    for (v, inside) in [(1.9, false), (2.0, true), (4.9, true), (5.0, false)] {
        assert_eq!(r.contains(&vkey("attributes/n", json!(v))), inside, "{v}");
    }
    let r = both("le(attributes/n,5)", "lt(attributes/n,5)").unwrap();
    assert!(!r.contains(&vkey("attributes/n", json!(5))));
    let r = both("like(attributes/n,'ab*')", "gt(attributes/n,'abc')").unwrap();
    assert!(r.contains(&vkey("attributes/n", json!("abd"))));
    assert!(!r.contains(&vkey("attributes/n", json!("abb"))));
    assert!(!r.contains(&vkey("attributes/n", json!("b"))));
    let r = both("eq(attributes/n,3)", "gt(attributes/n,1)").unwrap();
    assert!(r.single_value && r.contains(&vkey("attributes/n", json!(3))));
    assert!(both("eq(attributes/n,3)", "eq(attributes/n,4)").is_none());
    assert!(both("gt(attributes/n,3)", "gt(attributes/n,'x')").is_none());
    assert!(both("gt(attributes/n,3)", "gt(attributes/m,1)").is_none());
}

#[test]
fn things_ids_exists_and_unions() {
    assert_eq!(
        src("eq(thingId,'a:b')"),
        Some(Source::Ids(vec!["a:b".into()]))
    );
    assert_eq!(
        src("in(thingId,'b:1','a:1','b:1',3)"),
        Some(Source::Ids(vec!["a:1".into(), "b:1".into()]))
    );
    assert_eq!(
        src("in(_namespace,'b','a')"),
        Some(things(vec!["a:".into(), "b:".into()], None, None))
    );
    assert_eq!(
        src("like(thingId,'ns:dev*')"),
        Some(things(vec!["ns:dev".into()], None, None))
    );
    assert_eq!(
        src("ge(thingId,'m')"),
        Some(things(vec![], Some(("m".into(), true)), None))
    );
    let Some(Source::Union(e)) = src("exists(features/f/properties/x)") else {
        panic!("exists: existence or any value")
    };
    let k = keys::path_key(EXISTS, "features/f/properties/x", "n:t");
    assert!(matches!(&e[0], Source::Index(r) if r.kind == EXISTS && r.contains(&k)));
    let k = vkey("features/f/properties/x", json!([]));
    assert!(matches!(&e[1], Source::Index(r) if r.kind == VALUE && r.contains(&k)));
    assert_eq!(src("ne(attributes/a,1)"), src("exists(attributes/a)"));
    assert!(matches!(src("in(attributes/a,1,2)"), Some(Source::Union(v)) if v.len() == 2));
    assert!(matches!(
        src("or(eq(attributes/a,1),exists(policyId))"),
        Some(Source::Union(_))
    ));
    for none in [
        "or(eq(attributes/a,1),not(eq(attributes/b,1)))",
        "not(eq(attributes/a,1))",
        "empty(attributes/a)",
        "exists(thingId)",
        "eq(features/*/properties/x,1)",
        "eq(_metadata/attributes/a,1)",
        "eq(attributes/a,time:now)",
        "exists(features/*)",
        "gt(_revision,1)",
    ] {
        assert_eq!(src(none), None, "{none}");
    }
    assert_eq!(range("gt(_modified,time:now-1h)").path, "_modified");
    let a = src("and(exists(attributes/a),eq(attributes/b,1),gt(attributes/c,1))").unwrap();
    assert!(matches!(a, Source::Index(ref r) if r.single_value && r.path == "attributes/b"));
    assert_eq!(
        conjuncts(
            &parse("and(eq(thingId,'a:b'),and(exists(policyId),exists(definition)))").unwrap()
        )
        .len(),
        3
    );
}
