//! Topic patterns of the no-code mappings: levels that are literals, `+` or one whole-level
//! capture (`{thing}`, `{feature}`, `{property}`); matching a topic into captures, the MQTT
//! subscription filter of a pattern, and rendering command topics from captures.

/// A capture name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    /// the device (twin name, or a whole thing id if it contains `:`)
    Thing,
    /// a feature id
    Feature,
    /// a property key
    Property,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Level {
    Lit(String),
    Any,
    Cap(Cap),
}

/// A parsed pattern / template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    levels: Vec<Level>,
    text: String,
}

/// What a match captured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captures<'a> {
    /// `{thing}`
    pub thing: Option<&'a str>,
    /// `{feature}`
    pub feature: Option<&'a str>,
    /// `{property}`
    pub property: Option<&'a str>,
}

impl Pattern {
    /// Parses `a/{thing}/+/{feature}`; `#`, partial-level captures and unknown capture names
    /// are errors, and so is a capture used twice.
    pub fn parse(text: &str) -> Result<Pattern, String> {
        if text.is_empty() || text.starts_with('/') {
            return Err(format!(
                "topic pattern '{text}' must not be empty or start with '/'"
            ));
        }
        let mut levels = Vec::new();
        for l in text.split('/') {
            let level = match l {
                "+" => Level::Any,
                "{thing}" => Level::Cap(Cap::Thing),
                "{feature}" => Level::Cap(Cap::Feature),
                "{property}" => Level::Cap(Cap::Property),
                _ if l.contains(['{', '}', '+', '#', '\0']) => {
                    return Err(format!(
                        "topic pattern '{text}': level '{l}' (captures take a whole level: {{thing}}, {{feature}}, {{property}}; '#' is not supported)"
                    ))
                }
                "" => return Err(format!("topic pattern '{text}' has an empty level")),
                _ => Level::Lit(l.to_owned()),
            };
            if let Level::Cap(c) = level {
                if levels.contains(&Level::Cap(c)) {
                    return Err(format!("topic pattern '{text}' captures {c:?} twice"));
                }
            }
            levels.push(level);
        }
        Ok(Pattern {
            levels,
            text: text.to_owned(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True if the pattern captures `c`.
    pub fn has(&self, c: Cap) -> bool {
        self.levels.contains(&Level::Cap(c))
    }

    /// The MQTT subscription filter (captures become `+`).
    pub fn filter(&self) -> String {
        let parts: Vec<&str> = self
            .levels
            .iter()
            .map(|l| match l {
                Level::Lit(s) => s.as_str(),
                _ => "+",
            })
            .collect();
        parts.join("/")
    }

    /// Matches a topic; captures are non-empty.
    pub fn matches<'a>(&self, topic: &'a str) -> Option<Captures<'a>> {
        let mut caps = Captures::default();
        let mut parts = topic.split('/');
        for l in &self.levels {
            let p = parts.next()?;
            match l {
                Level::Lit(s) if s != p => return None,
                Level::Lit(_) => {}
                Level::Any => {}
                Level::Cap(_) if p.is_empty() => return None,
                Level::Cap(Cap::Thing) => caps.thing = Some(p),
                Level::Cap(Cap::Feature) => caps.feature = Some(p),
                Level::Cap(Cap::Property) => caps.property = Some(p),
            }
        }
        parts.next().is_none().then_some(caps)
    }

    /// Renders a command topic; `None` if a needed capture is missing or would not be one
    /// topic level (contains `/`, `+`, `#`), or the template has a `+`.
    pub fn render(&self, caps: &Captures) -> Option<String> {
        let mut out = String::with_capacity(self.text.len() + 32);
        for (i, l) in self.levels.iter().enumerate() {
            if i > 0 {
                out.push('/');
            }
            let s = match l {
                Level::Lit(s) => s.as_str(),
                Level::Any => return None,
                Level::Cap(Cap::Thing) => caps.thing?,
                Level::Cap(Cap::Feature) => caps.feature?,
                Level::Cap(Cap::Property) => caps.property?,
            };
            if s.is_empty() || s.contains(['/', '+', '#', '\0']) {
                return None;
            }
            out.push_str(s);
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_match_filter_render() {
        let p = Pattern::parse("homie/{thing}/{feature}/{property}").unwrap();
        assert_eq!(p.filter(), "homie/+/+/+");
        let c = p.matches("homie/dev-1/sensor/temperature").unwrap();
        assert_eq!(
            (c.thing, c.feature, c.property),
            (Some("dev-1"), Some("sensor"), Some("temperature"))
        );
        assert!(p.matches("homie/dev-1/sensor").is_none());
        assert!(p.matches("homie/dev-1/sensor/t/set").is_none());
        assert!(p.matches("homie//sensor/t").is_none());
        assert!(p.matches("other/dev-1/sensor/t").is_none());
        let t = Pattern::parse("homie/{thing}/{feature}/{property}/set").unwrap();
        assert_eq!(t.render(&c).unwrap(), "homie/dev-1/sensor/temperature/set");
        let bad = Captures {
            thing: Some("a/b"),
            ..c.clone()
        };
        assert!(t.render(&bad).is_none());
        let none = Captures {
            property: None,
            ..c
        };
        assert!(t.render(&none).is_none());
        let w = Pattern::parse("x/+/{thing}").unwrap();
        assert!(w.matches("x/anything/d").is_some());
    }

    #[test]
    fn rejects_bad_patterns() {
        for p in [
            "",
            "/a",
            "a/#",
            "a/x{thing}",
            "a/{nope}",
            "a//b",
            "a/{thing}/{thing}",
        ] {
            assert!(Pattern::parse(p).is_err(), "{p}");
        }
    }
}
