//! RQL (Ditto's "resource query language"): the filter AST, its parser, the in-memory evaluator
//! over serde_json documents and the search-option parser. Pure code, no IO and no clock: the
//! caller passes "now" in [`Env`]. Used by search, WS/SSE subscription filters and the
//! `condition` / `live-channel-condition` headers.

mod compare;
mod eval;
mod options;
mod parser;
mod property;
mod scanner;
mod time;

pub use compare::like_text;
pub use eval::lookup;
pub use options::{
    compare_for_sort, compare_sort_values, parse_options, SearchOptions, SortKey,
    DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE,
};
pub use parser::{parse, parse_property};
pub use property::PropertyUse;
pub use time::{TimePlaceholder, TimeUnit};

use crate::error::DittoError;

/// Ditto's message of `rql.expression.invalid`.
const RQL_INVALID_MESSAGE: &str = "The given RQL expression was invalid";
/// Ditto's description of `rql.expression.invalid`.
const RQL_INVALID_DESCRIPTION: &str =
    "Ensure that all opening parentheses have also closing ones and that the RQL expression is valid.";
/// Ditto's default description of `things:condition.invalid`.
const CONDITION_INVALID_DESCRIPTION: &str =
    "The provided condition is not valid. Please check the value of your condition header.";

/// A parse failure: where (byte offset into the input) and what went wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct RqlError {
    /// Byte offset into the input where parsing failed.
    pub position: usize,
    /// What was wrong, e.g. `expected ')'` or `unknown property 'foo'`.
    pub message: String,
}

impl RqlError {
    /// Creates an error at `position`.
    pub fn new(position: usize, message: impl Into<String>) -> Self {
        RqlError {
            position,
            message: message.into(),
        }
    }

    /// The detail with its position: `expected ')' at position 12`.
    pub fn detail(&self) -> String {
        format!("{} at position {}", self.message, self.position)
    }

    /// 400 `rql.expression.invalid` (filters of search and subscriptions):
    /// `The given RQL expression was invalid: <detail> at position N`.
    pub fn to_ditto(&self) -> DittoError {
        DittoError::new(
            400,
            "rql.expression.invalid",
            format!("{RQL_INVALID_MESSAGE}: {}", self.detail()),
        )
        .describe(RQL_INVALID_DESCRIPTION)
    }

    /// 400 `things:condition.invalid` for the `condition` header when the condition text is not
    /// at hand: `The specified condition is invalid: <detail> at position N`.
    pub fn to_condition_error(&self) -> DittoError {
        DittoError::new(
            400,
            "things:condition.invalid",
            format!("The specified condition is invalid: {}", self.detail()),
        )
        .describe(CONDITION_INVALID_DESCRIPTION)
    }

    /// 400 `things:condition.invalid` exactly as Ditto renders it: message
    /// `The specified condition '<condition>' is invalid.`, the parser detail as description.
    pub fn to_condition_error_for(&self, condition: &str) -> DittoError {
        DittoError::new(
            400,
            "things:condition.invalid",
            format!("The specified condition '{condition}' is invalid."),
        )
        .describe(self.detail())
    }
}

impl std::fmt::Display for RqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail())
    }
}

impl std::error::Error for RqlError {}

/// A parsed RQL filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// `eq ne gt ge lt le like ilike (prop, value)`.
    Cmp {
        /// The operator.
        op: CmpOp,
        /// The compared property.
        prop: Property,
        /// The literal compared against.
        value: Literal,
    },
    /// `in(prop, v1, v2, ...)` = `or(eq(prop,v1), eq(prop,v2), ...)`.
    In {
        /// The compared property.
        prop: Property,
        /// At least one literal.
        values: Vec<Literal>,
    },
    /// `and(q1, ...)`, at least one operand.
    And(Vec<Query>),
    /// `or(q1, ...)`, at least one operand.
    Or(Vec<Query>),
    /// `not(q)`.
    Not(Box<Query>),
    /// `exists(prop)`: present with any value, including null.
    Exists(Property),
    /// `empty(prop)`: absent, null, `[]`, `{}` or `""`.
    Empty(Property),
}

/// Single-value comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `eq`
    Eq,
    /// `ne` (negation of `eq`, so it also matches absent fields in memory)
    Ne,
    /// `gt`
    Gt,
    /// `ge`
    Ge,
    /// `lt`
    Lt,
    /// `le`
    Le,
    /// `like`: `*` / `?` wildcards, whole-value match
    Like,
    /// `ilike`: case-insensitive `like`
    ILike,
}

impl CmpOp {
    /// The RQL operator name (`eq`, `ilike`, ...).
    pub fn name(self) -> &'static str {
        match self {
            CmpOp::Eq => "eq",
            CmpOp::Ne => "ne",
            CmpOp::Gt => "gt",
            CmpOp::Ge => "ge",
            CmpOp::Lt => "lt",
            CmpOp::Le => "le",
            CmpOp::Like => "like",
            CmpOp::ILike => "ilike",
        }
    }
}

/// A property (field path) of a filter or sort key.
#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    /// As written (escapes resolved, surrounding whitespace and one leading '/' stripped).
    pub raw: String,
    /// `raw` split on '/' (a placeholder property is one segment: `["topic:action"]`).
    pub segments: Vec<String>,
    /// `("topic", "action")` for `topic:action`; also `resource:`, `entity:` and `time:`.
    pub placeholder: Option<(String, String)>,
}

impl Property {
    /// The first segment (`attributes`, `features`, `thingId`, `topic:action`, ...).
    pub fn root(&self) -> &str {
        self.segments.first().map(String::as_str).unwrap_or("")
    }

    /// The property as a JSON pointer (`/attributes/x`); placeholders are returned as written.
    pub fn pointer(&self) -> String {
        if self.placeholder.is_some() {
            return self.raw.clone();
        }
        format!("/{}", self.raw)
    }
}

/// A comparison value.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// `42`, `-7`, `+3`
    Long(i64),
    /// `4.2` (no exponent syntax)
    Double(f64),
    /// `"text"` or `'text'`
    Str(String),
    /// `time:now...` / `time:now_epoch_millis...`, resolved at evaluation time
    Time(TimePlaceholder),
}

/// Evaluation environment: the current time and resolvers for placeholder properties.
#[derive(Clone, Copy, Default)]
pub struct Env<'a> {
    /// Epoch millis used for `time:now` placeholders; the core never reads the clock itself.
    pub now_millis: i64,
    /// Resolves placeholder properties: `("topic","action")` -> `"modified"` etc.
    /// `None` (or a `None` result) means the placeholder is absent.
    pub placeholders: Option<PlaceholderResolver<'a>>,
}

/// Resolves a placeholder property `(prefix, name)`, e.g. `("topic", "action")`, to its value.
pub type PlaceholderResolver<'a> = &'a dyn Fn(&str, &str) -> Option<serde_json::Value>;

impl<'a> Env<'a> {
    /// An environment at `now_millis` without placeholder resolvers.
    pub fn at(now_millis: i64) -> Self {
        Env {
            now_millis,
            placeholders: None,
        }
    }
}

impl std::fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("now_millis", &self.now_millis)
            .field("placeholders", &self.placeholders.is_some())
            .finish()
    }
}

impl Query {
    /// Every property referenced, in order of appearance (permission checks, index planning).
    pub fn properties(&self) -> Vec<&Property> {
        let mut out = Vec::new();
        collect_properties(self, &mut out);
        out
    }

    /// True if any property is a placeholder (`topic:`, `resource:`, `entity:`, `time:`);
    /// search must reject such filters. Time placeholder *values* do not count.
    pub fn uses_placeholders(&self) -> bool {
        self.properties().iter().any(|p| p.placeholder.is_some())
    }
}

fn collect_properties<'q>(q: &'q Query, out: &mut Vec<&'q Property>) {
    match q {
        Query::Cmp { prop, .. } | Query::In { prop, .. } => out.push(prop),
        Query::Exists(prop) | Query::Empty(prop) => out.push(prop),
        Query::And(qs) | Query::Or(qs) => qs.iter().for_each(|q| collect_properties(q, out)),
        Query::Not(q) => collect_properties(q, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_render_ditto_texts() {
        let e = RqlError::new(12, "expected ')'");
        let d = e.to_ditto();
        assert_eq!(d.status, 400);
        assert_eq!(d.error, "rql.expression.invalid");
        assert_eq!(
            d.message,
            "The given RQL expression was invalid: expected ')' at position 12"
        );
        assert_eq!(d.description.as_deref(), Some(RQL_INVALID_DESCRIPTION));
        let c = e.to_condition_error();
        assert_eq!(c.error, "things:condition.invalid");
        assert_eq!(
            c.message,
            "The specified condition is invalid: expected ')' at position 12"
        );
        let c = e.to_condition_error_for("eq(a");
        assert_eq!(c.message, "The specified condition 'eq(a' is invalid.");
        assert_eq!(
            c.description.as_deref(),
            Some("expected ')' at position 12")
        );
        assert_eq!(e.to_string(), "expected ')' at position 12");
    }

    #[test]
    fn properties_and_placeholders() {
        let q = parse("and(eq(attributes/a,1),or(exists(topic:action),not(gt(thingId,\"x\"))))")
            .unwrap();
        let raws: Vec<&str> = q.properties().iter().map(|p| p.raw.as_str()).collect();
        assert_eq!(raws, ["attributes/a", "topic:action", "thingId"]);
        assert!(q.uses_placeholders());
        let q = parse("gt(_modified,time:now-1h)").unwrap();
        assert!(!q.uses_placeholders());
        assert_eq!(q.properties()[0].pointer(), "/_modified");
        assert_eq!(q.properties()[0].root(), "_modified");
        let q = parse("in(resource:path,'/a','/b')").unwrap();
        assert!(q.uses_placeholders());
        assert_eq!(q.properties()[0].pointer(), "resource:path");
    }

    #[test]
    fn cmp_op_names() {
        let ops = [
            CmpOp::Eq,
            CmpOp::Ne,
            CmpOp::Gt,
            CmpOp::Ge,
            CmpOp::Lt,
            CmpOp::Le,
            CmpOp::Like,
            CmpOp::ILike,
        ];
        for op in ops {
            let q = parse(&format!("{}(thingId,'x')", op.name())).unwrap();
            assert!(matches!(q, Query::Cmp { op: o, .. } if o == op));
        }
    }

    #[test]
    fn env_debug_and_default() {
        let f = |_: &str, _: &str| None;
        let env = Env {
            now_millis: 5,
            placeholders: Some(&f),
        };
        assert_eq!(
            format!("{env:?}"),
            "Env { now_millis: 5, placeholders: true }"
        );
        assert_eq!(Env::default().now_millis, 0);
        assert_eq!(Env::at(7).now_millis, 7);
    }
}
