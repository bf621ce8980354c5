//! Search semantics of an RQL filter, on top of the in-memory evaluator: as in Ditto's search
//! index (search.md 1.2 / Ambiguities), `ne(p,v)` only matches things that HAVE `p` (in-memory
//! filters treat an absent field as "not equal"), and `like`/`ilike` only match string values
//! (in memory they also match the string form of numbers and booleans). Everything else is the
//! shared evaluator (`Query::matches`).

use crate::rql::{like_text, lookup, CmpOp, Env, Query};
use serde_json::Value;

/// True if `doc` (a thing's READ view) satisfies `q` with search semantics.
pub fn matches(q: &Query, doc: &Value, env: &Env) -> bool {
    match q {
        Query::And(qs) => qs.iter().all(|q| matches(q, doc, env)),
        Query::Or(qs) => qs.iter().any(|q| matches(q, doc, env)),
        Query::Not(q) => !matches(q, doc, env),
        Query::Cmp {
            op: CmpOp::Ne,
            prop,
            ..
        } => !lookup(doc, prop).is_empty() && q.matches(doc, env),
        Query::Cmp {
            op: op @ (CmpOp::Like | CmpOp::ILike),
            prop,
            value,
        } => {
            let fold = *op == CmpOp::ILike;
            lookup(doc, prop)
                .iter()
                .any(|v| any_string(v, &|s| like_text(value, s, fold, env)))
        }
        _ => q.matches(doc, env),
    }
}

/// True if `pred` holds for a string among `v` (nested arrays flattened, objects skipped).
fn any_string(v: &Value, pred: &dyn Fn(&str) -> bool) -> bool {
    match v {
        Value::String(s) => pred(s),
        Value::Array(items) => items.iter().any(|i| any_string(i, pred)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rql::parse;
    use serde_json::json;

    fn m(filter: &str, doc: Value) -> bool {
        matches(&parse(filter).unwrap(), &doc, &Env::at(0))
    }

    #[test]
    fn ne_needs_the_field() {
        let doc = json!({"attributes": {"a": 1, "tags": ["x", "y"]}});
        assert!(m("ne(attributes/a,2)", doc.clone()));
        assert!(!m("ne(attributes/a,1)", doc.clone()));
        assert!(!m("ne(attributes/missing,1)", doc.clone()));
        assert!(m("not(eq(attributes/missing,1))", doc.clone()));
        assert!(m("ne(attributes/tags,'z')", doc.clone()));
        assert!(!m("ne(attributes/tags,'x')", doc.clone()));
        assert!(m(
            "or(ne(attributes/missing,1),eq(attributes/a,1))",
            doc.clone()
        ));
        assert!(!m("and(ne(attributes/missing,1),eq(attributes/a,1))", doc));
    }

    #[test]
    fn like_matches_strings_only() {
        let doc = json!({"attributes": {"n": 42, "s": "42", "b": true, "l": ["x", ["Abc"]]}});
        assert!(!m("like(attributes/n,'4*')", doc.clone()));
        assert!(m("like(attributes/s,'4*')", doc.clone()));
        assert!(!m("like(attributes/b,'t*')", doc.clone()));
        assert!(m("like(attributes/l,'A?c')", doc.clone()));
        assert!(m("ilike(attributes/l,'a*')", doc.clone()));
        assert!(!m("like(attributes/l,'a*')", doc.clone()));
        assert!(m("not(like(attributes/n,'4*'))", doc.clone()));
        assert!(m("eq(attributes/n,42)", doc));
    }
}
