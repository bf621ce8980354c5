//! Command-line options of the generator: `--key value` pairs read into typed values with
//! defaults; an option no subcommand reads is an error, so typos never go unnoticed.

use std::collections::HashMap;
use std::str::FromStr;

/// Parsed `--key value` options.
pub struct Opts {
    map: HashMap<String, String>,
    used: std::cell::RefCell<Vec<String>>,
}

impl Opts {
    /// Parses `--key value` pairs (`--flag` alone means `true`).
    pub fn parse(args: &[String]) -> Result<Opts, String> {
        let mut map = HashMap::new();
        let mut it = args.iter().peekable();
        while let Some(a) = it.next() {
            let key = a
                .strip_prefix("--")
                .ok_or_else(|| format!("expected --option, got '{a}'"))?;
            let val = match it.peek() {
                Some(v) if !v.starts_with("--") => it.next().cloned().unwrap_or_default(),
                _ => "true".to_owned(),
            };
            map.insert(key.to_owned(), val);
        }
        Ok(Opts {
            map,
            used: Default::default(),
        })
    }

    /// The value of `--key`, parsed, or `default`.
    pub fn get<T: FromStr>(&self, key: &str, default: T) -> Result<T, String> {
        self.used.borrow_mut().push(key.to_owned());
        match self.map.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("--{key}: bad value '{v}'")),
        }
    }

    /// The raw value of `--key`, if given.
    pub fn opt(&self, key: &str) -> Option<String> {
        self.used.borrow_mut().push(key.to_owned());
        self.map.get(key).cloned()
    }

    /// Errors on options nobody read.
    pub fn check_all_used(&self) -> Result<(), String> {
        let used = self.used.borrow();
        match self.map.keys().find(|k| !used.contains(k)) {
            Some(k) => Err(format!("unknown option --{k}")),
            None => Ok(()),
        }
    }
}
