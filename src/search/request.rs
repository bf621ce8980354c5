//! A search request as every binding receives it (`filter`, `option`, `fields`, `namespaces`),
//! validated into an executable [`Spec`] plus paging, with Ditto's error codes: 400
//! `rql.expression.invalid`, `thing-search:search.option.invalid`,
//! `thing-search:search.namespaces.invalid`, `things:field.selection.invalid`.

use super::cursor::{invalid_cursor, Cursor};
use super::exec::{Position, Spec};
use crate::error::DittoError;
use crate::rql::{parse, parse_options, RqlError, SortKey, DEFAULT_PAGE_SIZE};

/// Most namespaces in one request.
pub const MAX_NAMESPACES: usize = 100;

/// Where a request comes from (what each endpoint accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/api/2/search/things`
    Search,
    /// `/api/2/things` without `ids` (no filter, as in Ditto; the cursor keeps size and fields)
    Listing,
    /// the WebSocket search protocol and the SSE search stream: only `sort` and `size`
    Stream,
}

/// Raw parameters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    /// every `filter` given (several are combined with `and`)
    pub filters: Vec<String>,
    /// `option` values joined with `,`
    pub options: Option<String>,
    /// `fields`
    pub fields: Option<String>,
    /// `namespaces`, split (`None`: not given)
    pub namespaces: Option<Vec<String>>,
}

/// A validated request.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// what to search
    pub spec: Spec,
    /// the filter as text (kept in cursors)
    pub filter_text: Option<String>,
    /// page size
    pub size: usize,
    /// start after this item (from a cursor)
    pub after: Option<Position>,
    /// deprecated `limit(offset,count)`
    pub limit: Option<(u64, u64)>,
    /// `fields` as text (kept in listing cursors)
    pub fields_text: Option<String>,
    /// `size(n)` was given explicitly
    pub explicit_size: bool,
}

impl Resolved {
    /// The cursor pointing after `after` for the next page of this request.
    pub fn cursor_after(&self, after: Position, endpoint: Endpoint) -> Cursor {
        let listing = endpoint == Endpoint::Listing;
        Cursor {
            filter: self.filter_text.clone(),
            namespaces: self.spec.namespaces.clone(),
            sort: self.spec.sort.clone(),
            after,
            size: listing.then_some(self.size),
            fields: self.fields_text.clone().filter(|_| listing),
        }
    }
}

fn option_invalid(message: String) -> DittoError {
    DittoError::new(400, "thing-search:search.option.invalid", message)
        .describe("At least one provided option is invalid.")
}

/// 400 `thing-search:search.namespaces.invalid`.
fn namespaces_invalid(message: String, description: &'static str) -> DittoError {
    DittoError::new(400, "thing-search:search.namespaces.invalid", message).describe(description)
}

/// Parses a search filter: RQL without placeholder properties (those exist only in event filters).
pub fn parse_filter(text: &str) -> Result<crate::rql::Query, DittoError> {
    let q = parse(text).map_err(|e| e.to_ditto())?;
    if let Some(p) = q.properties().into_iter().find(|p| p.placeholder.is_some()) {
        let at = text.find(p.raw.as_str()).unwrap_or(0);
        return Err(RqlError::new(
            at,
            format!("placeholder '{}' is not supported in search filters", p.raw),
        )
        .to_ditto());
    }
    Ok(q)
}

/// Sort keys as the search uses them: cut after the first `thingId` key (it is unique).
pub fn normalize_sort(mut keys: Vec<SortKey>) -> Vec<SortKey> {
    if let Some(i) = keys.iter().position(|k| k.prop.raw == "thingId") {
        keys.truncate(i + 1);
    }
    if keys.len() == 1 && keys[0].ascending && keys[0].prop.raw == "thingId" {
        keys.clear(); // the default order
    }
    keys
}

fn same_sort(a: &[SortKey], b: &[SortKey]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.ascending == y.ascending && x.prop.raw == y.prop.raw)
}

/// Validates namespaces (`None`: all).
pub fn validate_namespaces(ns: Option<&[String]>) -> Result<Vec<String>, DittoError> {
    let Some(ns) = ns else { return Ok(Vec::new()) };
    if ns.len() > MAX_NAMESPACES {
        return Err(namespaces_invalid(
            format!(
                "The list of {} namespaces exceeds the maximum of {MAX_NAMESPACES}.",
                ns.len()
            ),
            "The list of provided namespaces is too long.",
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(ns.len());
    for n in ns.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        if !crate::model::id::is_valid_namespace(n) {
            return Err(namespaces_invalid(
                format!("The namespace '{n}' is not valid."),
                "Namespaces consist of segments of letters, digits and '_' separated by '.', each starting with a letter.",
            ));
        }
        if !out.iter().any(|x| x == n) {
            out.push(n.to_owned());
        }
    }
    Ok(out)
}

/// Validates a request for `endpoint`.
pub fn resolve(p: &Params, endpoint: Endpoint) -> Result<Resolved, DittoError> {
    let filter_text = match (endpoint, p.filters.as_slice()) {
        (Endpoint::Listing, _) | (_, []) => None,
        (_, [one]) => Some(one.clone()),
        (_, many) => Some(format!("and({})", many.join(","))),
    };
    let opts = parse_options(p.options.as_deref().unwrap_or(""))?;
    if endpoint == Endpoint::Stream {
        let bad = match (&opts.cursor, &opts.limit) {
            (Some(c), _) => Some(format!("cursor({c})")),
            (None, Some((o, c))) => Some(format!("limit({o},{c})")),
            _ => None,
        };
        if let Some(b) = bad {
            return Err(option_invalid(format!(
                "The option {b} is not supported at this endpoint."
            )));
        }
    }
    let mut namespaces = validate_namespaces(p.namespaces.as_deref())?;
    let mut sort = normalize_sort(opts.sort.clone());
    let mut fields_text = p.fields.clone().filter(|f| !f.trim().is_empty());
    let mut size = opts.size;
    let mut after = None;
    let mut filter_text = filter_text;
    if let Some(c) = &opts.cursor {
        let cur = Cursor::decode(c)?;
        if filter_text
            .as_ref()
            .is_some_and(|f| Some(f) != cur.filter.as_ref())
        {
            return Err(invalid_cursor(
                "The parameter 'filter' must not differ from the original query of the cursor.",
            ));
        }
        if !opts.sort.is_empty() && !same_sort(&sort, &cur.sort) {
            return Err(invalid_cursor(
                "The option 'sort' must not differ from the original query of the cursor.",
            ));
        }
        filter_text = cur.filter.clone();
        namespaces = cur.namespaces.clone();
        sort = cur.sort.clone();
        if endpoint == Endpoint::Listing {
            size = size.or(cur.size);
            fields_text = fields_text.or(cur.fields.clone());
        }
        after = Some(cur.after);
    }
    let filter = filter_text.as_deref().map(parse_filter).transpose()?;
    let fields = crate::engine::read::parse_fields(fields_text.as_deref(), true)?;
    let explicit_size = size.is_some();
    let size = size
        .or(opts.limit.map(|(_, c)| c as usize))
        .unwrap_or(DEFAULT_PAGE_SIZE);
    Ok(Resolved {
        spec: Spec {
            filter,
            sort,
            namespaces,
            fields,
        },
        filter_text,
        size,
        after,
        limit: opts.limit,
        fields_text,
        explicit_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(filters: &[&str], options: &str) -> Params {
        Params {
            filters: filters.iter().map(|s| s.to_string()).collect(),
            options: Some(options.to_owned()),
            ..Default::default()
        }
    }

    fn err(p: &Params, e: Endpoint) -> String {
        resolve(p, e).unwrap_err().error.to_string()
    }

    #[test]
    fn filters_options_and_errors() {
        let r = resolve(
            &params(
                &["eq(attributes/a,1)", "exists(policyId)"],
                "size(3),sort(-attributes/a,+thingId,+policyId)",
            ),
            Endpoint::Search,
        )
        .unwrap();
        assert_eq!(
            r.filter_text.as_deref(),
            Some("and(eq(attributes/a,1),exists(policyId))")
        );
        assert_eq!(
            (r.size, r.spec.sort.len()),
            (3, 2),
            "sort cut after thingId"
        );
        assert_eq!(
            resolve(&params(&[], "sort(+thingId)"), Endpoint::Search)
                .unwrap()
                .spec
                .sort
                .len(),
            0
        );
        assert_eq!(
            resolve(&params(&[], ""), Endpoint::Search).unwrap().size,
            DEFAULT_PAGE_SIZE
        );
        assert_eq!(
            err(&params(&["eq(a,1)"], ""), Endpoint::Search),
            "rql.expression.invalid"
        );
        assert_eq!(
            err(&params(&["eq(topic:action,'x')"], ""), Endpoint::Search),
            "rql.expression.invalid"
        );
        assert_eq!(
            err(&params(&[], "size(201)"), Endpoint::Search),
            "thing-search:search.option.invalid"
        );
        assert_eq!(
            err(&params(&[], "cursor(abc)"), Endpoint::Stream),
            "thing-search:search.option.invalid"
        );
        assert_eq!(
            err(&params(&[], "limit(0,2)"), Endpoint::Stream),
            "thing-search:search.option.invalid"
        );
        assert_eq!(
            resolve(&params(&[], "limit(4,2)"), Endpoint::Search)
                .unwrap()
                .size,
            2
        );
        let ns = |v: &[&str]| Params {
            namespaces: Some(v.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        };
        assert_eq!(
            resolve(&ns(&["a", "b.c", "a", ""]), Endpoint::Search)
                .unwrap()
                .spec
                .namespaces,
            ["a", "b.c"]
        );
        assert_eq!(
            err(&ns(&["1bad"]), Endpoint::Search),
            "thing-search:search.namespaces.invalid"
        );
        let many: Vec<String> = (0..101).map(|i| format!("n{i}")).collect();
        let p = Params {
            namespaces: Some(many),
            ..Default::default()
        };
        assert_eq!(
            err(&p, Endpoint::Search),
            "thing-search:search.namespaces.invalid"
        );
        let p = Params {
            fields: Some("bogus".into()),
            ..Default::default()
        };
        assert_eq!(err(&p, Endpoint::Search), "things:field.selection.invalid");
        let listing = resolve(&params(&["eq(attributes/a,1)"], ""), Endpoint::Listing).unwrap();
        assert!(
            listing.spec.filter.is_none(),
            "listing ignores filter, as Ditto"
        );
    }

    #[test]
    fn cursors_carry_the_query() {
        let r = resolve(
            &Params {
                namespaces: Some(vec!["n".into()]),
                fields: Some("thingId".into()),
                ..params(&["exists(attributes/a)"], "sort(-attributes/a),size(2)")
            },
            Endpoint::Listing,
        )
        .unwrap();
        let pos = Position {
            values: vec![json!(5)],
            thing_id: "n:x".into(),
        };
        let c = r.cursor_after(pos.clone(), Endpoint::Listing).encode();
        let next = resolve(&params(&[], &format!("cursor({c})")), Endpoint::Listing).unwrap();
        assert_eq!(
            (next.size, next.fields_text.as_deref()),
            (2, Some("thingId"))
        );
        assert_eq!(next.spec.namespaces, ["n"]);
        assert_eq!(next.after, Some(pos.clone()));
        let search = Resolved {
            filter_text: Some("exists(attributes/a)".into()),
            ..r.clone()
        };
        let c = search.cursor_after(pos, Endpoint::Search).encode();
        let next = resolve(&params(&[], &format!("cursor({c})")), Endpoint::Search).unwrap();
        assert_eq!(next.filter_text.as_deref(), Some("exists(attributes/a)"));
        assert_eq!(
            next.size, DEFAULT_PAGE_SIZE,
            "size is not kept on /search (as Ditto)"
        );
        assert!(next.spec.filter.is_some());
        let same = params(
            &["exists(attributes/a)"],
            &format!("sort(-attributes/a),cursor({c})"),
        );
        assert!(resolve(&same, Endpoint::Search).is_ok());
        let other = params(&["exists(attributes/b)"], &format!("cursor({c})"));
        assert_eq!(
            resolve(&other, Endpoint::Search)
                .unwrap_err()
                .description
                .as_deref(),
            Some("The parameter 'filter' must not differ from the original query of the cursor.")
        );
        let sorted = params(&[], &format!("sort(+attributes/a),cursor({c})"));
        assert_eq!(
            resolve(&sorted, Endpoint::Search)
                .unwrap_err()
                .description
                .as_deref(),
            Some("The option 'sort' must not differ from the original query of the cursor.")
        );
    }
}
