//! `edgetwin check-config`: validates a TOML config and reports EVERY problem with its line —
//! syntax errors, unknown keys, bad values (serde's own messages, so new `Config` fields are
//! covered without touching this file) and the semantic checks of `Config::problems()`.

use crate::config::Config;
use serde::de::IntoDeserializer;
use serde::Deserialize;
use toml::de::{DeArray, DeTable, DeValue};
use toml::Spanned;

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line in the file, if the problem can be pinned to one
    pub line: Option<usize>,
    /// what is wrong
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Upper bound on problems reported (each one removes a node from the document, so a file of
/// N keys needs at most N rounds; this only stops pathological input from looping long).
const MAX_PROBLEMS: usize = 200;

/// Checks config text. Returns the config (defaults for anything missing or dropped) when it
/// had no problem at all, and the list of problems in file order otherwise.
///
/// How: parse once keeping spans; deserialize `Config`; on an error, record it at its span's
/// line, remove the innermost entry holding that span, and deserialize again — until clean.
/// Then `Config::problems()` on what is left; each of those messages starts with the dotted
/// key path it concerns (`listen: ...`, `limits: ...`), which is looked up for its line.
pub fn check_text(text: &str) -> (Option<Config>, Vec<Problem>) {
    let line_of = |pos: usize| text[..pos.min(text.len())].matches('\n').count() + 1;
    let (mut doc, syntax) = DeTable::parse_recoverable(text);
    let mut problems: Vec<Problem> = syntax
        .iter()
        .map(|e| Problem {
            line: e.span().map(|s| line_of(s.start)),
            message: e.message().trim().to_owned(),
        })
        .collect();
    let cfg = loop {
        match Config::deserialize(doc.clone().into_deserializer()) {
            Ok(cfg) => break Some(cfg),
            Err(e) => {
                let span = e.span();
                let removed = span
                    .as_ref()
                    .and_then(|s| remove_at(doc.get_mut(), s.start));
                let message = match &removed {
                    Some(path) => format!("{path}: {}", e.message().trim()),
                    None => e.message().trim().to_owned(),
                };
                problems.push(Problem {
                    line: span.as_ref().map(|s| line_of(s.start)),
                    message,
                });
                if removed.is_none() || problems.len() >= MAX_PROBLEMS {
                    break None;
                }
            }
        }
    };
    if let Some(cfg) = &cfg {
        for p in cfg.problems() {
            let line = p
                .split_once(": ")
                .and_then(|(path, _)| key_pos(doc.get_ref(), path))
                .map(line_of);
            problems.push(Problem { line, message: p });
        }
    }
    problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
    let ok = problems.is_empty();
    (cfg.filter(|_| ok), problems)
}

/// Byte position of the key at a dotted path (`limits.outbound_queue`), first array element
/// for arrays of tables; `None` if the file does not set it.
fn key_pos(doc: &DeTable<'_>, path: &str) -> Option<usize> {
    let mut table = doc;
    let mut pos = None;
    for seg in path.split('.') {
        let (k, v) = table.get_key_value(seg)?;
        pos = Some(k.span().start);
        table = match v.get_ref() {
            DeValue::Table(t) => t,
            DeValue::Array(a) => match a.first().map(Spanned::get_ref) {
                Some(DeValue::Table(t)) => t,
                _ => return pos,
            },
            _ => return pos,
        };
    }
    pos
}

/// A step on the way to a node.
enum Seg {
    Key(String),
    Index(usize),
}

/// Removes the innermost key (or array element) whose key or value spans `at`; returns its
/// path (`limits.outbound_queue`, `users[1]`).
fn remove_at(doc: &mut DeTable<'_>, at: usize) -> Option<String> {
    let mut best: Option<Vec<Seg>> = None;
    find_in_table(doc, at, &mut Vec::new(), &mut best);
    let path = best?;
    if !remove_path(doc, &path) {
        return None;
    }
    let mut name = String::new();
    for seg in &path {
        match seg {
            Seg::Key(k) if name.is_empty() => name.push_str(k),
            Seg::Key(k) => {
                name.push('.');
                name.push_str(k);
            }
            Seg::Index(i) => name.push_str(&format!("[{i}]")),
        }
    }
    Some(name)
}

fn find_in_table(t: &DeTable<'_>, at: usize, path: &mut Vec<Seg>, best: &mut Option<Vec<Seg>>) {
    for (k, v) in t.iter() {
        path.push(Seg::Key(k.get_ref().to_string()));
        if k.span().contains(&at) || v.span().contains(&at) {
            consider(path, best);
        }
        find_in_value(v.get_ref(), at, path, best);
        path.pop();
    }
}

fn find_in_value(v: &DeValue<'_>, at: usize, path: &mut Vec<Seg>, best: &mut Option<Vec<Seg>>) {
    match v {
        DeValue::Table(t) => find_in_table(t, at, path, best),
        DeValue::Array(a) => {
            for (i, e) in a.iter().enumerate() {
                path.push(Seg::Index(i));
                if e.span().contains(&at) {
                    consider(path, best);
                }
                find_in_value(e.get_ref(), at, path, best);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Keeps the deepest match.
fn consider(path: &[Seg], best: &mut Option<Vec<Seg>>) {
    if best.as_ref().is_none_or(|b| path.len() > b.len()) {
        *best = Some(
            path.iter()
                .map(|s| match s {
                    Seg::Key(k) => Seg::Key(k.clone()),
                    Seg::Index(i) => Seg::Index(*i),
                })
                .collect(),
        );
    }
}

fn remove_path(t: &mut DeTable<'_>, path: &[Seg]) -> bool {
    let Some((Seg::Key(k), rest)) = path.split_first() else {
        return false;
    };
    if rest.is_empty() {
        return t.remove(k.as_str()).is_some();
    }
    match t.get_mut(k.as_str()) {
        Some(v) => remove_in_value(v.get_mut(), rest),
        None => false,
    }
}

fn remove_in_value(v: &mut DeValue<'_>, path: &[Seg]) -> bool {
    match (v, path.split_first()) {
        (DeValue::Table(t), Some(_)) => remove_path(t, path),
        (DeValue::Array(a), Some((Seg::Index(i), rest))) => {
            if rest.is_empty() {
                if *i >= a.len() {
                    return false;
                }
                let kept: DeArray<'_> = std::mem::replace(a, DeArray::new())
                    .into_iter()
                    .enumerate()
                    .filter(|(j, _)| j != i)
                    .map(|(_, e)| e)
                    .collect();
                *a = kept;
                true
            } else {
                a.get_mut(*i)
                    .is_some_and(|e| remove_in_value(e.get_mut(), rest))
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<(Option<usize>, String)> {
        let (cfg, p) = check_text(text);
        assert_eq!(cfg.is_some(), p.is_empty(), "config only when clean: {p:?}");
        p.into_iter().map(|p| (p.line, p.message)).collect()
    }

    #[test]
    fn clean_file_yields_the_config() {
        let (cfg, p) = check_text("listen = \"127.0.0.1:9000\"\n[limits]\noutbound_queue = 8\n");
        assert!(p.is_empty(), "{p:?}");
        let cfg = cfg.unwrap();
        assert_eq!(cfg.listen.port(), 9000);
        assert_eq!(cfg.limits.outbound_queue, 8);
    }

    #[test]
    fn reports_every_unknown_key_and_bad_value_with_its_line() {
        let text = "\
listen = \"nowhere\"
bogus = 1
store = \"redb\"
cache_mib = \"big\"
[limits]
outbound_queue = -1
typo_key = 2
[[users]]
name = \"a\"
password_hash = \"$argon2id$x\"
colour = \"red\"
";
        let p = lines(text);
        let at: Vec<Option<usize>> = p.iter().map(|x| x.0).collect();
        assert_eq!(
            at,
            vec![Some(1), Some(2), Some(4), Some(6), Some(7), Some(11)],
            "{p:#?}"
        );
        assert!(p[0].1.starts_with("listen: "), "{p:?}");
        assert!(p[1].1.contains("bogus"), "{p:?}");
        assert!(p[3].1.starts_with("limits.outbound_queue: "), "{p:?}");
        assert!(p[4].1.contains("typo_key"), "{p:?}");
        assert!(p[5].1.contains("colour"), "{p:?}");
    }

    #[test]
    fn reports_missing_fields_of_a_table_array_element() {
        let p = lines(
            "[[users]]\nname = \"a\"\npassword_hash = \"$argon2id$x\"\n\n[[users]]\nname = \"b\"\n",
        );
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, Some(5), "{p:?}");
        assert!(p[0].1.starts_with("users[1]: "), "{p:?}");
        assert!(p[0].1.contains("password_hash"), "{p:?}");
    }

    #[test]
    fn semantic_problems_carry_the_line_of_their_key() {
        let text = "log_level = \"info\"\n\nstore = \"rocks\"\nlisten = \"0.0.0.0:8080\"\n";
        let p = lines(text);
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(p[0].0, Some(3));
        assert!(p[0].1.starts_with("store:"), "{p:?}");
        assert_eq!(p[1].0, Some(4));
        assert!(p[1].1.starts_with("listen:"), "{p:?}");
    }

    #[test]
    fn syntax_errors_are_reported_with_lines() {
        let p = lines("listen = \"127.0.0.1:1\"\nstore = \n");
        assert!(!p.is_empty());
        assert_eq!(p[0].0, Some(2), "{p:?}");
    }

    #[test]
    fn never_panics_on_odd_input() {
        for t in [
            "",
            "=",
            "[[",
            "limits = 3",
            "users = 5",
            "users = [1, 2]",
            "[limits]\n[limits]",
            "a.b.c.d = 1",
            "\u{0}",
            "[[users]]\n[[users]]\n[[users]]",
        ] {
            let _ = check_text(t);
        }
    }
}
