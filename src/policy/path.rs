//! Paths of policy commands (`/entries/<label>/subjects/<subjectId>` ...). After `/subjects/`
//! and `/resources/` the REST of the path is the subject ID / resource key, slashes included,
//! exactly as Ditto's protocol adapter reads them.

use crate::error::DittoError;

/// The part of a policy a command addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyPath {
    /// `/`
    Root,
    /// `/entries`
    Entries,
    /// `/entries/<label>`
    Entry(String),
    /// `/entries/<label>/<namespaces|importable|allowedAdditions|references>`
    EntryField(String, &'static str),
    /// `/entries/<label>/subjects`
    Subjects(String),
    /// `/entries/<label>/subjects/<subjectId>`
    Subject(String, String),
    /// `/entries/<label>/resources`
    Resources(String),
    /// `/entries/<label>/resources/<type>:<path>`
    Resource(String, String),
    /// `/imports`
    Imports,
    /// `/imports/<policyId>`
    Import(String),
    /// `/imports/<policyId>/<entries|transitiveImports>`
    ImportField(String, &'static str),
}

const ENTRY_FIELDS: [&str; 4] = ["namespaces", "importable", "allowedAdditions", "references"];
const IMPORT_FIELDS: [&str; 2] = ["entries", "transitiveImports"];

/// 400 `protocoladapter:unknown.path` for a policy path.
fn unknown(path: &str) -> DittoError {
    crate::protocol::unknown_path(path)
}

fn segment(s: &str) -> (&str, Option<&str>) {
    match s.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    }
}

impl PolicyPath {
    /// Parses a policy command path.
    pub fn parse(path: &str) -> Result<PolicyPath, DittoError> {
        let rest = path.strip_prefix('/').unwrap_or(path);
        if rest.is_empty() {
            return Ok(PolicyPath::Root);
        }
        let (first, tail) = segment(rest);
        let tail = tail.filter(|t| !t.is_empty());
        match first {
            "entries" => {
                let Some(tail) = tail else {
                    return Ok(PolicyPath::Entries);
                };
                let (label, tail) = segment(tail);
                if label.is_empty() {
                    return Err(unknown(path));
                }
                let label = label.to_owned();
                let Some(tail) = tail.filter(|t| !t.is_empty()) else {
                    return Ok(PolicyPath::Entry(label));
                };
                let (what, tail) = segment(tail);
                let tail = tail.filter(|t| !t.is_empty());
                Ok(match (what, tail) {
                    ("subjects", None) => PolicyPath::Subjects(label),
                    ("subjects", Some(id)) => PolicyPath::Subject(label, id.to_owned()),
                    ("resources", None) => PolicyPath::Resources(label),
                    ("resources", Some(k)) => PolicyPath::Resource(label, k.to_owned()),
                    (f, None) => match ENTRY_FIELDS.iter().find(|x| **x == f) {
                        Some(f) => PolicyPath::EntryField(label, f),
                        None => return Err(unknown(path)),
                    },
                    _ => return Err(unknown(path)),
                })
            }
            "imports" => {
                let Some(tail) = tail else {
                    return Ok(PolicyPath::Imports);
                };
                let (id, tail) = segment(tail);
                if id.is_empty() {
                    return Err(unknown(path));
                }
                match tail.filter(|t| !t.is_empty()) {
                    None => Ok(PolicyPath::Import(id.to_owned())),
                    Some(f) => match IMPORT_FIELDS
                        .iter()
                        .find(|x| **x == f.trim_end_matches('/'))
                    {
                        Some(f) => Ok(PolicyPath::ImportField(id.to_owned(), f)),
                        None => Err(unknown(path)),
                    },
                }
            }
            _ => Err(unknown(path)),
        }
    }

    /// Segments of the `policy:` resource this path is checked against (subject IDs and
    /// resource keys stay one segment each).
    pub fn resource(&self) -> Vec<String> {
        let e = |l: &str| vec!["entries".to_owned(), l.to_owned()];
        let mut v = match self {
            PolicyPath::Root => vec![],
            PolicyPath::Entries => vec!["entries".to_owned()],
            PolicyPath::Entry(l) => e(l),
            PolicyPath::EntryField(l, f) => {
                let mut v = e(l);
                v.push((*f).to_owned());
                v
            }
            PolicyPath::Subjects(l) | PolicyPath::Subject(l, _) => {
                let mut v = e(l);
                v.push("subjects".into());
                v
            }
            PolicyPath::Resources(l) | PolicyPath::Resource(l, _) => {
                let mut v = e(l);
                v.push("resources".into());
                v
            }
            PolicyPath::Imports => vec!["imports".to_owned()],
            PolicyPath::Import(i) => vec!["imports".to_owned(), i.clone()],
            PolicyPath::ImportField(i, f) => {
                vec!["imports".to_owned(), i.clone(), (*f).to_owned()]
            }
        };
        match self {
            PolicyPath::Subject(_, s) => v.push(s.clone()),
            PolicyPath::Resource(_, k) => v.push(k.clone()),
            _ => {}
        }
        v
    }

    /// The entry label this path lies in, if any.
    pub fn label(&self) -> Option<&str> {
        match self {
            PolicyPath::Entry(l)
            | PolicyPath::EntryField(l, _)
            | PolicyPath::Subjects(l)
            | PolicyPath::Subject(l, _)
            | PolicyPath::Resources(l)
            | PolicyPath::Resource(l, _) => Some(l),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_path() {
        let p = |s: &str| PolicyPath::parse(s).unwrap();
        assert_eq!(p("/"), PolicyPath::Root);
        assert_eq!(p("/entries"), PolicyPath::Entries);
        assert_eq!(p("/entries/a"), PolicyPath::Entry("a".into()));
        assert_eq!(p("/entries/a/subjects"), PolicyPath::Subjects("a".into()));
        assert_eq!(
            p("/entries/user5/subjects/issuer:/json/pointer/as/subject///id//"),
            PolicyPath::Subject(
                "user5".into(),
                "issuer:/json/pointer/as/subject///id//".into()
            )
        );
        assert_eq!(
            p("/entries/a/resources/thing:/x/y"),
            PolicyPath::Resource("a".into(), "thing:/x/y".into())
        );
        assert_eq!(
            p("/entries/a/references"),
            PolicyPath::EntryField("a".into(), "references")
        );
        assert_eq!(p("/imports"), PolicyPath::Imports);
        assert_eq!(p("/imports/a:b"), PolicyPath::Import("a:b".into()));
        assert_eq!(
            p("/imports/a:b/transitiveImports"),
            PolicyPath::ImportField("a:b".into(), "transitiveImports")
        );
        for bad in [
            "/import/a:b",
            "/entries/a/foo",
            "/foo",
            "/entries//subjects",
        ] {
            assert_eq!(
                PolicyPath::parse(bad).unwrap_err().error,
                "protocoladapter:unknown.path",
                "{bad}"
            );
        }
    }
}
