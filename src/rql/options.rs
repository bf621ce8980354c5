//! Search options (`option=` of the search API and the WS `subscribe` command):
//! `sort(+a,-b)`, `size(n)`, `cursor(c)`, `limit(offset,count)`, with Ditto's limits and error
//! texts (400 `thing-search:search.option.invalid`); and the sort order of search results.

use std::cmp::Ordering;

use serde_json::Value;

use super::compare::{num_cmp, Num};
use super::eval::lookup;
use super::property::PropertyUse;
use super::scanner::Scanner;
use super::{Literal, Property, RqlError};
use crate::error::DittoError;

/// Page size without a `size` option.
pub const DEFAULT_PAGE_SIZE: usize = 25;
/// Largest accepted `size(n)` and `limit(_, n)`.
pub const MAX_PAGE_SIZE: usize = 200;

const DEFAULT_DESCRIPTION: &str = "At least one provided option is invalid.";

/// One sort key: `+attributes/x` (ascending) or `-thingId` (descending).
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    /// The sorted property (thing field, attribute or feature (desired) property).
    pub prop: Property,
    /// `+` = true, `-` = false.
    pub ascending: bool,
}

/// Parsed search options; absent options are `None` / empty.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SearchOptions {
    /// `sort(...)` keys in order; empty = default `sort(+thingId)`.
    pub sort: Vec<SortKey>,
    /// `size(n)`, 1..=200.
    pub size: Option<usize>,
    /// `cursor(c)`: opaque continuation token.
    pub cursor: Option<String>,
    /// Deprecated `limit(offset,count)`, count 0..=200; never together with `cursor`.
    pub limit: Option<(u64, u64)>,
}

impl SearchOptions {
    /// Items per page: `size`, else the count of `limit`, else 25.
    pub fn page_size(&self) -> usize {
        match (self.size, self.limit) {
            (Some(n), _) => n,
            (None, Some((_, count))) => usize::try_from(count).unwrap_or(MAX_PAGE_SIZE),
            (None, None) => DEFAULT_PAGE_SIZE,
        }
    }
}

fn invalid(message: impl Into<String>) -> DittoError {
    DittoError::new(400, "thing-search:search.option.invalid", message)
        .describe(DEFAULT_DESCRIPTION)
}

fn syntax(input: &str, e: &RqlError) -> DittoError {
    invalid(format!("Invalid option '{input}': {}", e.detail()))
}

fn too_large(param: &str, value: impl std::fmt::Display) -> DittoError {
    invalid(format!(
        "Parameter <{param}> must be less than or equal to <{MAX_PAGE_SIZE}> but it was <{value}>!"
    ))
}

fn negative(param: &str, value: i64) -> DittoError {
    invalid(format!(
        "Parameter <{param}> must be greater than or equal to <0> but it was <{value}>!"
    ))
}

/// Parses a comma-separated option list such as `sort(+thingId,-attributes/n),size(10)`.
/// Blank input gives the defaults. A space where a sort sign belongs counts as `+` (an
/// un-encoded `+` in a URL query decodes to a space).
pub fn parse_options(input: &str) -> Result<SearchOptions, DittoError> {
    let mut s = Scanner::new(input);
    let mut opts = SearchOptions::default();
    let (mut has_sort, mut size_text) = (false, None::<String>);
    s.skip_ws();
    if s.at_end() {
        return Ok(opts);
    }
    loop {
        let start = s.pos;
        let name = s.ident();
        if !matches!(name, "sort" | "size" | "cursor" | "limit") {
            let message = if name.is_empty() {
                "expected an option".to_owned()
            } else {
                format!("unknown option '{name}'")
            };
            return Err(syntax(input, &RqlError::new(start, message)));
        }
        s.skip_ws();
        s.expect(b'(').map_err(|e| syntax(input, &e))?;
        match name {
            "sort" => {
                if has_sort {
                    return Err(invalid("Too many sort options.")
                        .describe("0 or 1 sort option is expected."));
                }
                has_sort = true;
                opts.sort = sort_keys(&mut s).map_err(|e| syntax(input, &e))?;
            }
            "size" => {
                if size_text.is_some() {
                    return Err(invalid("There may not be more than 1 'size' option."));
                }
                s.skip_ws();
                let from = s.pos;
                while s.peek().is_some_and(|b| b.is_ascii_digit()) {
                    s.pos += 1;
                }
                if s.pos == from {
                    return Err(syntax(input, &s.err("expected the page size")));
                }
                size_text = input.get(from..s.pos).map(str::to_owned);
                s.skip_ws();
            }
            "cursor" => {
                if opts.cursor.is_some() {
                    return Err(invalid("There may not be more than 1 'cursor' option."));
                }
                s.skip_ws();
                let (text, at) = s.characters().map_err(|e| syntax(input, &e))?;
                if text.is_empty() {
                    return Err(syntax(input, &RqlError::new(at, "expected a cursor")));
                }
                opts.cursor = Some(text);
            }
            _ => {
                if opts.limit.is_some() {
                    return Err(invalid("There may not be more than 1 'limit' option."));
                }
                s.skip_ws();
                let offset = long(&mut s).map_err(|e| syntax(input, &e))?;
                s.skip_ws();
                s.expect(b',').map_err(|e| syntax(input, &e))?;
                s.skip_ws();
                let count = long(&mut s).map_err(|e| syntax(input, &e))?;
                s.skip_ws();
                let offset = u64::try_from(offset).map_err(|_| negative("skip", offset))?;
                let count_u = u64::try_from(count).map_err(|_| negative("limit", count))?;
                if count_u > MAX_PAGE_SIZE as u64 {
                    return Err(too_large("limit", count));
                }
                opts.limit = Some((offset, count_u));
            }
        }
        s.expect(b')').map_err(|e| syntax(input, &e))?;
        s.skip_ws();
        if s.at_end() {
            break;
        }
        s.expect(b',').map_err(|e| syntax(input, &e))?;
        s.skip_ws();
    }
    if let Some(text) = size_text {
        let n: usize = text.parse().map_err(|_| too_large("size", &text))?;
        if n == 0 {
            return Err(invalid("The option 'size' must be a positive integer."));
        }
        if n > MAX_PAGE_SIZE {
            return Err(too_large("size", n));
        }
        opts.size = Some(n);
    }
    if opts.cursor.is_some() && opts.limit.is_some() {
        return Err(
            invalid("The option 'cursor' is not valid for the search request.")
                .describe("The options 'cursor' and 'limit' must not be used together."),
        );
    }
    Ok(opts)
}

/// `SortKey { "," SortKey }` up to (not including) the closing ')'.
fn sort_keys(s: &mut Scanner) -> Result<Vec<SortKey>, RqlError> {
    let mut keys = Vec::new();
    loop {
        let before = s.pos;
        s.skip_ws();
        let ascending = if s.eat(b'+') {
            true
        } else if s.eat(b'-') {
            false
        } else if s.pos > before {
            true
        } else {
            return Err(s.err("expected '+' or '-' before the sort property"));
        };
        let prop = s.property(PropertyUse::Sort)?;
        keys.push(SortKey { prop, ascending });
        if !s.eat(b',') {
            return Ok(keys);
        }
    }
}

fn long(s: &mut Scanner) -> Result<i64, RqlError> {
    let at = s.pos;
    match s.literal() {
        Ok(Literal::Long(n)) => Ok(n),
        Ok(_) => Err(RqlError::new(at, "expected an integer")),
        Err(e) => Err(e),
    }
}
/// Search order of two documents: each key in turn (values ranked absent/null < numbers <
/// strings < objects < arrays < booleans, as in Ditto's MongoDB index; descending reverses),
/// ties broken by `thingId` ascending.
pub fn compare_for_sort(a: &Value, b: &Value, keys: &[SortKey]) -> Ordering {
    for key in keys {
        let va = lookup(a, &key.prop);
        let vb = lookup(b, &key.prop);
        let o = sort_cmp(
            va.first().map(|v| v.as_ref()),
            vb.first().map(|v| v.as_ref()),
        );
        let o = if key.ascending { o } else { o.reverse() };
        if o != Ordering::Equal {
            return o;
        }
    }
    let id = |d: &Value| d.get("thingId").and_then(Value::as_str).map(str::to_owned);
    id(a).cmp(&id(b))
}

/// The order of two sort-key values (absent/null < numbers < strings < objects < arrays <
/// booleans; same-typed values by value), as [`compare_for_sort`] uses it per key.
pub fn compare_sort_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    sort_cmp(a, b)
}

fn sort_cmp(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    fn rank(v: Option<&Value>) -> u8 {
        match v {
            None | Some(Value::Null) => 0,
            Some(Value::Number(_)) => 1,
            Some(Value::String(_)) => 2,
            Some(Value::Object(_)) => 3,
            Some(Value::Array(_)) => 4,
            Some(Value::Bool(_)) => 5,
        }
    }
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => match (Num::of(x), Num::of(y)) {
            (Some(x), Some(y)) => num_cmp(x, y),
            _ => Ordering::Equal,
        },
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn opts(input: &str) -> SearchOptions {
        parse_options(input).unwrap_or_else(|e| panic!("{input}: {e}"))
    }

    fn bad(input: &str) -> DittoError {
        let e = parse_options(input).expect_err(input);
        assert_eq!(e.status, 400);
        assert_eq!(e.error, "thing-search:search.option.invalid");
        e
    }

    fn keys(o: &SearchOptions) -> Vec<(String, bool)> {
        o.sort
            .iter()
            .map(|k| (k.prop.raw.clone(), k.ascending))
            .collect()
    }

    #[test]
    fn all_options() {
        let o = opts(
            "sort(+thingId,-attributes/counter,+features/f/properties/x),size(10),cursor(AbC-_12)",
        );
        assert_eq!(
            keys(&o),
            [
                ("thingId".into(), true),
                ("attributes/counter".into(), false),
                ("features/f/properties/x".into(), true)
            ]
        );
        assert_eq!(
            (o.size, o.cursor.as_deref(), o.limit),
            (Some(10), Some("AbC-_12"), None)
        );
        assert_eq!(o.page_size(), 10);
        let o = opts("limit(5,20)");
        assert_eq!((o.limit, o.page_size()), (Some((5, 20)), 20));
        assert_eq!(opts(""), SearchOptions::default());
        assert_eq!(opts("  ").page_size(), DEFAULT_PAGE_SIZE);
        assert_eq!(opts("size(1)").size, Some(1));
        assert_eq!(opts("size(200)").size, Some(200));
        assert_eq!(opts("limit(0,200)").limit, Some((0, 200)));
        assert_eq!(opts("limit(0,0)").limit, Some((0, 0)));
        assert_eq!(opts("sort(+thingId),limit(0,5)").limit, Some((0, 5)));
        assert_eq!(opts(" size( 3 ) , sort( -/_modified ) ").size, Some(3));
        assert_eq!(
            keys(&opts("sort( thingId, policyId)")),
            [("thingId".into(), true), ("policyId".into(), true)]
        );
        assert_eq!(opts("cursor(a b)").cursor.as_deref(), Some("a b"));
        assert_eq!(opts("size(10),limit(0,5)").page_size(), 10);
    }

    #[test]
    fn ditto_limits_and_texts() {
        assert_eq!(
            bad("size(201)").message,
            "Parameter <size> must be less than or equal to <200> but it was <201>!"
        );
        assert_eq!(
            bad("size(99999999999999999999999)").message,
            "Parameter <size> must be less than or equal to <200> but it was <99999999999999999999999>!"
        );
        assert_eq!(
            bad("size(0)").message,
            "The option 'size' must be a positive integer."
        );
        assert_eq!(
            bad("limit(0,201)").message,
            "Parameter <limit> must be less than or equal to <200> but it was <201>!"
        );
        assert_eq!(
            bad("limit(-1,2)").message,
            "Parameter <skip> must be greater than or equal to <0> but it was <-1>!"
        );
        assert_eq!(
            bad("limit(1,-2)").message,
            "Parameter <limit> must be greater than or equal to <0> but it was <-2>!"
        );
        let e = bad("cursor(x),limit(0,1)");
        assert_eq!(
            e.message,
            "The option 'cursor' is not valid for the search request."
        );
        assert_eq!(
            e.description.as_deref(),
            Some("The options 'cursor' and 'limit' must not be used together.")
        );
        assert_eq!(
            bad("size(1),size(2)").message,
            "There may not be more than 1 'size' option."
        );
        assert_eq!(
            bad("cursor(a),cursor(b)").message,
            "There may not be more than 1 'cursor' option."
        );
        assert_eq!(
            bad("limit(0,1),limit(0,1)").message,
            "There may not be more than 1 'limit' option."
        );
        assert_eq!(
            bad("sort(+thingId),sort(-thingId)").message,
            "Too many sort options."
        );
        assert_eq!(
            bad("size(1").description.as_deref(),
            Some(DEFAULT_DESCRIPTION)
        );
    }

    #[test]
    fn syntax_errors_name_the_position() {
        assert_eq!(
            bad("foo(1)").message,
            "Invalid option 'foo(1)': unknown option 'foo' at position 0"
        );
        assert_eq!(
            bad("size(1),").message,
            "Invalid option 'size(1),': expected an option at position 8"
        );
        assert_eq!(bad("sort(thingId)").message, "Invalid option 'sort(thingId)': expected '+' or '-' before the sort property at position 5");
        assert_eq!(
            bad("sort(+foo)").message,
            "Invalid option 'sort(+foo)': unknown property name 'foo' at position 6"
        );
        for input in [
            "sort",
            "sort(",
            "sort()",
            "sort(+)",
            "sort(+thingId",
            "sort(+thingId,)",
            "sort(+topic:action)",
            "sort(+features/*/properties/a)",
            "sort(+features/f)",
            "sort(+attributes//a)",
            "size()",
            "size(a)",
            "size(-1)",
            "size(1.5)",
            "size 1",
            "cursor()",
            "cursor(",
            "limit(1)",
            "limit(1,)",
            "limit(a,b)",
            "limit(1.5,2)",
            "limit(0,'1')",
            "Size(1)",
            "size(1)size(2)",
            "size(1);size(2)",
            ",size(1)",
            "(",
            "\\",
            "cursor(\"x\")",
            "cursor(a\\q)",
            "limit(99999999999999999999,1)",
        ] {
            let e = bad(input);
            assert!(
                e.message.starts_with("Invalid option") || e.message.starts_with("Parameter"),
                "{input}: {e}"
            );
        }
        let mut prefix = String::new();
        for c in "sort(+thingId,-attributes/a),size(5),limit(1,2)".chars() {
            let _ = parse_options(&prefix);
            prefix.push(c);
        }
    }

    fn sorted(keys: &str, docs: &[Value]) -> Vec<String> {
        let o = opts(keys);
        let mut docs = docs.to_vec();
        docs.sort_by(|a, b| compare_for_sort(a, b, &o.sort));
        docs.iter()
            .map(|d| d["thingId"].as_str().unwrap_or("").to_owned())
            .collect()
    }

    #[test]
    fn sort_order() {
        let docs = [
            json!({"thingId": "n:c", "attributes": {"v": 2}}),
            json!({"thingId": "n:a", "attributes": {"v": "x"}}),
            json!({"thingId": "n:b", "attributes": {"v": 1.5}}),
            json!({"thingId": "n:d"}),
            json!({"thingId": "n:e", "attributes": {"v": true}}),
            json!({"thingId": "n:f", "attributes": {"v": null}}),
            json!({"thingId": "n:g", "attributes": {"v": 2.0}}),
        ];
        assert_eq!(
            sorted("sort(+attributes/v)", &docs),
            ["n:d", "n:f", "n:b", "n:c", "n:g", "n:a", "n:e"]
        );
        assert_eq!(
            sorted("sort(-attributes/v)", &docs),
            ["n:e", "n:a", "n:c", "n:g", "n:b", "n:d", "n:f"]
        );
        assert_eq!(
            sorted("sort(-thingId)", &docs),
            ["n:g", "n:f", "n:e", "n:d", "n:c", "n:b", "n:a"]
        );
        assert_eq!(
            sorted("", &docs),
            ["n:a", "n:b", "n:c", "n:d", "n:e", "n:f", "n:g"]
        );
    }
}
