//! The RQL filter parser: text -> [`Query`], with byte positions in every error. Grammar as in
//! Ditto's RqlPredicateParser (normalized call syntax only, lower-case operators); whitespace is
//! also accepted after operator names, '(' and ',', before ')' and around properties.

use super::property::PropertyUse;
use super::scanner::Scanner;
use super::{CmpOp, Property, Query, RqlError};

/// Deepest nesting of `and`/`or`/`not` accepted (keeps recursion bounded on hostile input).
const MAX_DEPTH: usize = crate::bounds::MAX_RQL_DEPTH;

/// Parses an RQL filter such as `and(eq(thingId,"ns:a"),gt(attributes/n,4.2))`.
pub fn parse(input: &str) -> Result<Query, RqlError> {
    let mut s = Scanner::new(input);
    s.skip_ws();
    let q = query(&mut s, 0)?;
    s.skip_ws();
    if !s.at_end() {
        return Err(s.err("unexpected input after the end of the query"));
    }
    Ok(q)
}

/// Parses a whole string as one property (escapes allowed) for the given use, e.g. a sort key
/// or a field selector that must be a valid RQL property.
pub fn parse_property(input: &str, usage: PropertyUse) -> Result<Property, RqlError> {
    let mut s = Scanner::new(input);
    s.skip_ws();
    let p = s.property(usage)?;
    if !s.at_end() {
        return Err(s.err("unexpected character in property"));
    }
    Ok(p)
}

/// One query at nesting `depth`.
fn query(s: &mut Scanner, depth: usize) -> Result<Query, RqlError> {
    if depth > MAX_DEPTH {
        return Err(s.err(format!("query nested deeper than {MAX_DEPTH} levels")));
    }
    let start = s.pos;
    let name = s.ident();
    let cmp = match name {
        "eq" => Some(CmpOp::Eq),
        "ne" => Some(CmpOp::Ne),
        "gt" => Some(CmpOp::Gt),
        "ge" => Some(CmpOp::Ge),
        "lt" => Some(CmpOp::Lt),
        "le" => Some(CmpOp::Le),
        "like" => Some(CmpOp::Like),
        "ilike" => Some(CmpOp::ILike),
        "in" | "and" | "or" | "not" | "exists" | "empty" => None,
        "" => return Err(RqlError::new(start, "expected an RQL operator")),
        other => return Err(RqlError::new(start, format!("unknown operator '{other}'"))),
    };
    s.skip_ws();
    s.expect(b'(')?;
    s.skip_ws();
    let q = if let Some(op) = cmp {
        let prop = s.property(PropertyUse::Compare)?;
        s.expect(b',')?;
        s.skip_ws();
        let value = s.literal()?;
        s.skip_ws();
        Query::Cmp { op, prop, value }
    } else {
        match name {
            "in" => {
                let prop = s.property(PropertyUse::Compare)?;
                s.expect(b',')?;
                let mut values = Vec::new();
                loop {
                    s.skip_ws();
                    values.push(s.literal()?);
                    s.skip_ws();
                    if !s.eat(b',') {
                        break;
                    }
                }
                Query::In { prop, values }
            }
            "and" | "or" => {
                let mut operands = Vec::new();
                loop {
                    operands.push(query(s, depth + 1)?);
                    s.skip_ws();
                    if !s.eat(b',') {
                        break;
                    }
                    s.skip_ws();
                }
                if name == "and" {
                    Query::And(operands)
                } else {
                    Query::Or(operands)
                }
            }
            "not" => {
                let q = query(s, depth + 1)?;
                s.skip_ws();
                if s.peek() == Some(b',') {
                    return Err(s.err("'not' takes exactly one query"));
                }
                Query::Not(Box::new(q))
            }
            "exists" => Query::Exists(s.property(PropertyUse::Exists)?),
            _ => Query::Empty(s.property(PropertyUse::Exists)?),
        }
    };
    s.expect(b')')?;
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rql::Literal;

    fn prop(raw: &str) -> Property {
        parse_property(raw, PropertyUse::Exists).unwrap()
    }

    fn err(input: &str) -> RqlError {
        parse(input).expect_err(input)
    }

    const VALID: [&str; 14] = [
        r#"eq(thingId,"org.eclipse.ditto:fancy-thing")"#,
        "ne(attributes/counter,42)",
        "gt(/attributes/temp,-3.5)",
        "and(ge(_revision,+1),le(_revision,10),lt(_modified,time:now-1d[h]))",
        "or(like(attributes/name,'th*ng?'),ilike(definition,\"*Sensor:1.*\"))",
        r#"in(policyId,"a:b",'c:d',null,true,false,0,1.5)"#,
        "not(exists(features/lamp))",
        "empty(features/*/properties/tags)",
        "and(or(not(eq(attributes/a,1)),exists(_metadata/x)),empty(namespace))",
        "  eq( attributes/room name , 'k\\u00fcche' )  ",
        "and(\n\teq(topic:action,'modified'),\r\n  eq(resource:path,'/attributes')\u{c})",
        "eq (attributes/x,\"a\\\"b\")",
        "eq(entity:id,'ns:x')",
        "gt(time:now_epoch_millis,5)",
    ];

    #[test]
    fn comparisons_build_the_ast() {
        assert_eq!(
            parse("eq(attributes/a/b,\"x\")"),
            Ok(Query::Cmp {
                op: CmpOp::Eq,
                prop: prop("attributes/a/b"),
                value: Literal::Str("x".into())
            })
        );
        assert_eq!(
            parse("le(/_revision,7)"),
            Ok(Query::Cmp {
                op: CmpOp::Le,
                prop: prop("_revision"),
                value: Literal::Long(7)
            })
        );
        assert_eq!(
            parse("in(thingId,'a',2,null)"),
            Ok(Query::In {
                prop: prop("thingId"),
                values: vec![Literal::Str("a".into()), Literal::Long(2), Literal::Null],
            })
        );
        assert_eq!(
            parse("exists(features/f)"),
            Ok(Query::Exists(prop("features/f")))
        );
        assert_eq!(
            parse("empty(attributes/x)"),
            Ok(Query::Empty(prop("attributes/x")))
        );
        assert_eq!(
            parse("in(thingId,1)"),
            Ok(Query::In {
                prop: prop("thingId"),
                values: vec![Literal::Long(1)]
            })
        );
    }

    #[test]
    fn logic_nests() {
        let q =
            parse("and(eq(thingId,'a'),or(not(exists(attributes/x)),eq(policyId,'p')))").unwrap();
        let Query::And(ops) = q else { panic!("and") };
        assert_eq!(ops.len(), 2);
        let Query::Or(inner) = &ops[1] else {
            panic!("or")
        };
        assert!(matches!(&inner[0], Query::Not(n) if matches!(**n, Query::Exists(_))));
        assert!(matches!(parse("and(eq(thingId,1))"), Ok(Query::And(v)) if v.len() == 1));
        assert!(matches!(parse("or(eq(thingId,1))"), Ok(Query::Or(v)) if v.len() == 1));
        let deep = format!("{}eq(thingId,1){}", "not(".repeat(100), ")".repeat(100));
        assert!(parse(&deep).is_ok());
    }

    #[test]
    fn valid_inputs_parse() {
        for q in VALID {
            assert!(parse(q).is_ok(), "{q}: {:?}", parse(q));
        }
        let q = parse(VALID[9]).unwrap();
        assert_eq!(
            q,
            Query::Cmp {
                op: CmpOp::Eq,
                prop: prop("attributes/room name"),
                value: Literal::Str("küche".into())
            }
        );
    }

    #[test]
    fn error_positions() {
        assert_eq!(err(""), RqlError::new(0, "expected an RQL operator"));
        assert_eq!(err("   "), RqlError::new(3, "expected an RQL operator"));
        assert_eq!(err("foo(a,1)"), RqlError::new(0, "unknown operator 'foo'"));
        assert_eq!(
            err("Eq(thingId,1)"),
            RqlError::new(0, "unknown operator 'Eq'")
        );
        assert_eq!(
            err("and(EQ(thingId,1))"),
            RqlError::new(4, "unknown operator 'EQ'")
        );
        assert_eq!(
            err("eq"),
            RqlError::new(2, "expected '(' but the input ended")
        );
        assert_eq!(err("eq thingId"), RqlError::new(3, "expected '('"));
        assert_eq!(
            err("eq(thingId,1"),
            RqlError::new(12, "expected ')' but the input ended")
        );
        assert_eq!(err("eq(thingId,1,2)"), RqlError::new(12, "expected ')'"));
        assert_eq!(err("eq(thingId)"), RqlError::new(10, "expected ','"));
        assert_eq!(err("eq(,1)"), RqlError::new(3, "expected a property"));
        assert_eq!(
            err("eq(foo,1)"),
            RqlError::new(3, "unknown property name 'foo'")
        );
        assert_eq!(
            err("eq( foo ,1)"),
            RqlError::new(4, "unknown property name 'foo'")
        );
        assert_eq!(err("eq(attributes//a,1)").position, 3);
        assert_eq!(err("eq(features/f,1)").position, 3);
        assert_eq!(err("eq(thingId,)").position, 11);
        assert_eq!(err("eq(thingId,abc)").position, 11);
        assert_eq!(err("eq(thingId,\"x)").position, 11);
        assert_eq!(err("eq(thingId,'x\\q')").position, 13);
        assert_eq!(
            err("eq(thingId,1) x"),
            RqlError::new(14, "unexpected input after the end of the query")
        );
        assert_eq!(err("eq(thingId,1))").position, 13);
        assert_eq!(err("and()"), RqlError::new(4, "expected an RQL operator"));
        assert_eq!(err("or(eq(thingId,1),)").position, 17);
        assert_eq!(err("or(eq(thingId,1) eq(thingId,2))").position, 17);
        assert_eq!(err("not()").position, 4);
        assert_eq!(
            err("not(eq(thingId,1),eq(thingId,2))"),
            RqlError::new(17, "'not' takes exactly one query")
        );
        assert_eq!(err("in(thingId)").position, 10);
        assert_eq!(err("in(thingId,)").position, 11);
        assert_eq!(err("exists()"), RqlError::new(7, "expected a property"));
        assert_eq!(err("exists(thingId,1)").position, 14);
        assert_eq!(err("exists(topic:foo)").position, 7);
        assert_eq!(err("eq(thingId,-0)").position, 11);
        assert_eq!(err("eq(thingId,time:then)").position, 11);
        assert_eq!(
            err("thingId=1"),
            RqlError::new(0, "unknown operator 'thingId'")
        );
        assert_eq!(
            err("eq(attributes/ä,1) ü"),
            RqlError::new(20, "unexpected input after the end of the query")
        );
        let deep = format!("{}eq(thingId,1){}", "not(".repeat(101), ")".repeat(101));
        assert_eq!(err(&deep).message, "query nested deeper than 100 levels");
    }

    #[test]
    fn parse_property_alone() {
        assert_eq!(
            parse_property("/attributes/a", PropertyUse::Compare)
                .unwrap()
                .raw,
            "attributes/a"
        );
        assert_eq!(
            parse_property("thingId x)", PropertyUse::Sort)
                .unwrap_err()
                .position,
            0
        );
        assert_eq!(
            parse_property("thingId)", PropertyUse::Sort)
                .unwrap_err()
                .position,
            7
        );
    }

    /// A small deterministic pseudo-random generator for the robustness test.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((self.0 >> 33) as usize) % n.max(1)
        }
    }

    fn check_no_panic(input: &str) {
        if let Err(e) = parse(input) {
            assert!(e.position <= input.len(), "{input:?}: {e:?}");
            assert!(input.is_char_boundary(e.position), "{input:?}: {e:?}");
            let _ = e.to_ditto();
        }
    }

    #[test]
    fn malformed_inputs_never_panic() {
        for q in VALID {
            let trimmed = q.trim_end();
            for (i, _) in trimmed.char_indices().skip(1) {
                let prefix = &trimmed[..i];
                assert!(parse(prefix).is_err(), "prefix {prefix:?} of {q:?}");
                check_no_panic(prefix);
            }
            for (i, _) in q.char_indices() {
                check_no_panic(&q[i..]);
            }
        }
        let fixed = [
            "(", ")", ",", "\"", "'", "\\", "eq(", "eq((", "eq(\\", "eq(\\u", "eq(a\\u12", "eq(thingId,\\",
            "eq(thingId,\"\\u", "eq(thingId,'\\uD800", "eq(thingId,\"\\uD800\\u", "in(", "in(thingId,",
            "and(", "and(,", "not(not(", "time:", "eq(thingId,time:", "eq(thingId,time:now[",
            "eq(thingId,time:now-", "eq(thingId,99999999999999999999999)", "eq(thingId,1.7976931348623157e308)",
            "eq(thingId,179769313486231570000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000.0)",
            "\u{0}", "eq(\u{0},1)", "😀", "eq(😀,1)", "eq(thingId,'😀", "exists(/)", "exists(//)",
            "eq(attributes/\u{fffd},1", "and(eq(thingId,1),", "or(eq(thingId,1)),", ",eq(thingId,1)",
        ];
        for f in fixed {
            check_no_panic(f);
        }
        let alphabet: Vec<char> = "eqnotandorinlikexists(),'\"\\/:*?-+.0123456789 tfu[]ä😀"
            .chars()
            .collect();
        let mut rng = Lcg(7);
        for round in 0..4000 {
            let base: Vec<char> = VALID[round % VALID.len()].chars().collect();
            let mut chars = base.clone();
            for _ in 0..1 + rng.next(3) {
                let at = rng.next(chars.len() + 1);
                match rng.next(3) {
                    0 if at < chars.len() => {
                        chars.remove(at);
                    }
                    1 if at < chars.len() => chars[at] = alphabet[rng.next(alphabet.len())],
                    _ => chars.insert(at, alphabet[rng.next(alphabet.len())]),
                }
            }
            let mutated: String = chars.into_iter().collect();
            check_no_panic(&mutated);
            let random: String = (0..rng.next(24))
                .map(|_| alphabet[rng.next(alphabet.len())])
                .collect();
            check_no_panic(&random);
        }
        check_no_panic(&"and(".repeat(100_000));
        check_no_panic(&"not(".repeat(100_000));
        check_no_panic(&format!("in(thingId{})", ",1".repeat(50_000)));
    }
}
