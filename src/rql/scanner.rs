//! The lexical layer of RQL shared by filters and options: whitespace, properties (Ditto's
//! `Characters` with backslash escapes), quoted strings with JSON escapes incl. `\uXXXX`,
//! Long/Double numbers, `true`/`false`/`null` and `time:` placeholder values.

use super::property::{self, PropertyUse};
use super::time::TimePlaceholder;
use super::{Literal, Property, RqlError};

/// A byte cursor over the input with the lexical rules shared by filters and options.
pub(crate) struct Scanner<'a> {
    src: &'a str,
    pub(crate) pos: usize,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0x0c)
}

impl<'a> Scanner<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Scanner { src, pos: 0 }
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.pos).copied()
    }

    pub(crate) fn err(&self, message: impl Into<String>) -> RqlError {
        RqlError::new(self.pos, message)
    }

    pub(crate) fn skip_ws(&mut self) {
        while self.peek().is_some_and(is_ws) {
            self.pos += 1;
        }
    }

    /// Consumes `c` or fails with "expected 'c'".
    pub(crate) fn expect(&mut self, c: u8) -> Result<(), RqlError> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else if self.at_end() {
            Err(self.err(format!("expected '{}' but the input ended", c as char)))
        } else {
            Err(self.err(format!("expected '{}'", c as char)))
        }
    }

    /// Consumes `c` if it is next.
    pub(crate) fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.pos += 1;
        }
        hit
    }

    /// An identifier made of ASCII letters, digits and '_' (possibly empty).
    pub(crate) fn ident(&mut self) -> &'a str {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            self.pos += 1;
        }
        &self.src[start..self.pos]
    }

    /// Ditto's `Characters`: anything except `,` `)` `"`, with backslash escapes; unescaped
    /// trailing whitespace is dropped. Returns the text and the position it started at.
    pub(crate) fn characters(&mut self) -> Result<(String, usize), RqlError> {
        let start = self.pos;
        let mut out = String::new();
        let mut keep = 0;
        while let Some(c) = self.next_char_if(|c| !matches!(c, ',' | ')' | '"')) {
            if c == '\\' {
                self.escape(&mut out)?;
                keep = out.len();
            } else {
                out.push(c);
                if !(c.is_ascii() && is_ws(c as u8)) {
                    keep = out.len();
                }
            }
        }
        out.truncate(keep);
        Ok((out, start))
    }

    fn next_char_if(&mut self, accept: impl Fn(char) -> bool) -> Option<char> {
        let c = self.src.get(self.pos..)?.chars().next()?;
        if !accept(c) {
            return None;
        }
        self.pos += c.len_utf8();
        Some(c)
    }

    /// A property for `usage`; errors point at its first character.
    pub(crate) fn property(&mut self, usage: PropertyUse) -> Result<Property, RqlError> {
        let (text, start) = self.characters()?;
        property::build(&text, usage).map_err(|m| RqlError::new(start, m))
    }

    /// After a backslash: one escape as in JSON (`\" \' \\ \/ \b \f \n \r \t \uXXXX`).
    fn escape(&mut self, out: &mut String) -> Result<(), RqlError> {
        let at = self.pos.saturating_sub(1);
        let c = match self.peek() {
            Some(b'"') => '"',
            Some(b'\'') => '\'',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                self.pos += 1;
                let unit = self.hex4(at)?;
                out.push(self.utf16_char(unit));
                return Ok(());
            }
            _ => return Err(RqlError::new(at, "invalid escape sequence")),
        };
        self.pos += 1;
        out.push(c);
        Ok(())
    }

    fn hex4(&mut self, at: usize) -> Result<u32, RqlError> {
        let hex = self.src.get(self.pos..self.pos + 4).unwrap_or("");
        if hex.len() != 4 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(RqlError::new(
                at,
                "invalid unicode escape, expected 4 hex digits",
            ));
        }
        self.pos += 4;
        u32::from_str_radix(hex, 16).map_err(|_| RqlError::new(at, "invalid unicode escape"))
    }

    /// Turns a UTF-16 unit into a char, joining a following `\uDC00`-style low surrogate;
    /// a lone surrogate becomes U+FFFD (Java would keep it, Rust strings cannot).
    fn utf16_char(&mut self, unit: u32) -> char {
        if (0xD800..0xDC00).contains(&unit) {
            let rest = self.src.get(self.pos..).unwrap_or("");
            if let Some(hex) = rest.strip_prefix("\\u").and_then(|r| r.get(..4)) {
                if let Ok(low @ 0xDC00..=0xDFFF) = u32::from_str_radix(hex, 16) {
                    self.pos += 6;
                    let cp = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                    return char::from_u32(cp).unwrap_or('\u{FFFD}');
                }
            }
        }
        char::from_u32(unit).unwrap_or('\u{FFFD}')
    }

    /// A quoted string; `self.peek()` is the opening quote.
    fn string(&mut self, quote: char) -> Result<String, RqlError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.next_char_if(|_| true) {
                None => return Err(RqlError::new(start, "unterminated string")),
                Some('\\') => self.escape(&mut out)?,
                Some(c) if c == quote => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    /// `["+"|"-"] ("0" | [1-9][0-9]*)`; returns the end of the integer part, if any.
    fn integer_end(&self) -> Option<usize> {
        let b = self.src.as_bytes();
        let mut i = self.pos;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        match b.get(i) {
            Some(b'0') => Some(i + 1),
            Some(b'1'..=b'9') => {
                i += 1;
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
                Some(i)
            }
            _ => None,
        }
    }

    fn number(&mut self) -> Result<Literal, RqlError> {
        let start = self.pos;
        let b = self.src.as_bytes();
        let int_end = self
            .integer_end()
            .ok_or_else(|| RqlError::new(start, "invalid number"))?;
        if b.get(int_end) == Some(&b'.') {
            let mut end = int_end + 1;
            while b.get(end).is_some_and(u8::is_ascii_digit) {
                end += 1;
            }
            if end == int_end + 1 {
                return Err(RqlError::new(int_end + 1, "expected digits after '.'"));
            }
            let text = &self.src[start..end];
            let v: f64 = text
                .parse()
                .map_err(|_| RqlError::new(start, "invalid number"))?;
            if !v.is_finite() {
                return Err(RqlError::new(start, "number out of range"));
            }
            self.pos = end;
            return Ok(Literal::Double(v));
        }
        let text = &self.src[start..int_end];
        if text == "-0" {
            return Err(RqlError::new(start, "'-0' is not a valid number"));
        }
        let v: i64 = text
            .parse()
            .map_err(|_| RqlError::new(start, "number out of range"))?;
        self.pos = int_end;
        Ok(Literal::Long(v))
    }

    /// A value: number, quoted string, `true`/`false`/`null` or a `time:` placeholder.
    pub(crate) fn literal(&mut self) -> Result<Literal, RqlError> {
        let start = self.pos;
        let rest = self.src.get(self.pos..).unwrap_or("");
        match self.peek() {
            Some(b'"') => return self.string('"').map(Literal::Str),
            Some(b'\'') => return self.string('\'').map(Literal::Str),
            Some(b'+' | b'-' | b'0'..=b'9') => return self.number(),
            _ => {}
        }
        for (word, lit) in [
            ("true", Literal::Bool(true)),
            ("false", Literal::Bool(false)),
            ("null", Literal::Null),
        ] {
            if rest.starts_with(word) {
                self.pos += word.len();
                return Ok(lit);
            }
        }
        if rest.starts_with("time:") {
            self.pos += 5;
            let (name, _) = self.characters()?;
            return TimePlaceholder::parse(&name)
                .map(Literal::Time)
                .map_err(|m| RqlError::new(start, m));
        }
        Err(RqlError::new(
            start,
            "expected a value (number, string, true, false, null or time placeholder)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `text` as exactly one literal.
    fn lit(text: &str) -> Result<Literal, RqlError> {
        let mut s = Scanner::new(text);
        let l = s.literal()?;
        if !s.at_end() {
            return Err(s.err("trailing"));
        }
        Ok(l)
    }

    fn err_at(text: &str) -> usize {
        lit(text).expect_err(text).position
    }

    #[test]
    fn longs() {
        assert_eq!(lit("0"), Ok(Literal::Long(0)));
        assert_eq!(lit("+0"), Ok(Literal::Long(0)));
        assert_eq!(lit("42"), Ok(Literal::Long(42)));
        assert_eq!(lit("+42"), Ok(Literal::Long(42)));
        assert_eq!(lit("-42"), Ok(Literal::Long(-42)));
        assert_eq!(lit("9223372036854775807"), Ok(Literal::Long(i64::MAX)));
        assert_eq!(lit("-9223372036854775808"), Ok(Literal::Long(i64::MIN)));
        assert_eq!(
            lit("9223372036854775808").unwrap_err().message,
            "number out of range"
        );
        assert_eq!(lit("-0").unwrap_err().message, "'-0' is not a valid number");
        assert_eq!(err_at("05"), 1); // "0" then trailing "5"
        assert_eq!(err_at("-"), 0);
        assert_eq!(err_at("+"), 0);
        assert_eq!(err_at("--1"), 0);
        assert_eq!(err_at("1e5"), 1);
    }

    #[test]
    fn doubles() {
        assert_eq!(lit("4.2"), Ok(Literal::Double(4.2)));
        assert_eq!(lit("-0.5"), Ok(Literal::Double(-0.5)));
        assert_eq!(lit("+0.5"), Ok(Literal::Double(0.5)));
        assert_eq!(lit("-0.0"), Ok(Literal::Double(-0.0)));
        assert_eq!(lit("10.25"), Ok(Literal::Double(10.25)));
        assert_eq!(lit("7.0"), Ok(Literal::Double(7.0)));
        assert_eq!(lit("1.").unwrap_err().message, "expected digits after '.'");
        assert_eq!(err_at("1."), 2);
        assert_eq!(err_at(".5"), 0);
        assert_eq!(err_at("01.5"), 1);
        assert_eq!(err_at("1.5.2"), 3);
        assert_eq!(err_at("1.5e3"), 3);
    }

    #[test]
    fn strings_and_escapes() {
        let s = |t: &str| {
            lit(t).map(|l| match l {
                Literal::Str(s) => s,
                other => panic!("{other:?}"),
            })
        };
        assert_eq!(s(r#""hello""#), Ok("hello".into()));
        assert_eq!(s("'hello'"), Ok("hello".into()));
        assert_eq!(s(r#""""#), Ok(String::new()));
        assert_eq!(s(r#""it's""#), Ok("it's".into()));
        assert_eq!(s(r#"'say "hi"'"#), Ok("say \"hi\"".into()));
        assert_eq!(s(r#""a,b)c(""#), Ok("a,b)c(".into()));
        assert_eq!(
            s(r#""\"\'\\\/\b\f\n\r\t""#),
            Ok("\"'\\/\u{8}\u{c}\n\r\t".into())
        );
        assert_eq!(s(r"'\'\\'"), Ok("'\\".into()));
        assert_eq!(s(r#""\u00e4\u00C4x""#), Ok("äÄx".into()));
        assert_eq!(s(r#""\uD83D\uDE00""#), Ok("😀".into()));
        assert_eq!(s(r#""\uD83Dx""#), Ok("\u{FFFD}x".into()));
        assert_eq!(s(r#""\uDE00""#), Ok("\u{FFFD}".into()));
        assert_eq!(s("\"ünï 😀\""), Ok("ünï 😀".into()));
        assert_eq!(s("\"tab\there\""), Ok("tab\there".into()));
        // errors: position of the opening quote or of the backslash
        assert_eq!(
            lit(r#""abc"#).unwrap_err(),
            RqlError::new(0, "unterminated string")
        );
        assert_eq!(lit("'abc").unwrap_err().position, 0);
        assert_eq!(
            lit(r#""ab\x""#).unwrap_err(),
            RqlError::new(3, "invalid escape sequence")
        );
        assert_eq!(err_at(r#""\u12""#), 1);
        assert_eq!(err_at(r#""\u12G4""#), 1);
        assert_eq!(err_at(r#""x\"#), 2);
        assert_eq!(err_at(r#""\u"#), 1);
        assert_eq!(err_at("\"ü\\q\""), 3);
    }

    #[test]
    fn keywords_and_time() {
        assert_eq!(lit("true"), Ok(Literal::Bool(true)));
        assert_eq!(lit("false"), Ok(Literal::Bool(false)));
        assert_eq!(lit("null"), Ok(Literal::Null));
        assert_eq!(err_at("True"), 0);
        assert_eq!(err_at("NULL"), 0);
        assert_eq!(err_at("nul"), 0);
        assert_eq!(err_at("truex"), 4);
        assert_eq!(err_at("unquoted"), 0);
        match lit("time:now-7d[h]") {
            Ok(Literal::Time(t)) => {
                assert_eq!(t.name, "now-7d[h]");
                assert_eq!(t.offset_millis, -7 * 86_400_000);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(lit("time:now_epoch_millis"), Ok(Literal::Time(t)) if t.epoch_millis));
        assert_eq!(lit("time:yesterday").unwrap_err().position, 0);
        assert_eq!(lit("time:").unwrap_err().position, 0);
        assert_eq!(err_at("topic:action"), 0);
        // a placeholder value ends before ',' or ')', trailing whitespace dropped
        let mut s = Scanner::new("time:now+1h  )");
        assert!(matches!(s.literal(), Ok(Literal::Time(_))));
        assert_eq!(s.peek(), Some(b')'));
        assert_eq!(err_at(""), 0);
    }

    #[test]
    fn characters_for_properties() {
        let chars = |t: &str| {
            let mut s = Scanner::new(t);
            let r = s.characters().map(|(text, _)| text);
            (r, s.pos)
        };
        assert_eq!(
            chars("attributes/a b  ,1"),
            (Ok("attributes/a b".into()), 16)
        );
        assert_eq!(chars("a\\/b)"), (Ok("a/b".into()), 4));
        // ',' cannot be escaped (Ditto's escape set is the JSON one)
        assert_eq!(
            chars("a\\,b)").0.unwrap_err(),
            RqlError::new(1, "invalid escape sequence")
        );
        assert_eq!(chars("x\\t)"), (Ok("x\t".into()), 3));
        assert_eq!(chars("x\"y"), (Ok("x".into()), 1));
        assert_eq!(chars("(a)'b'"), (Ok("(a".into()), 2));
        assert_eq!(chars("ä\\z").0.unwrap_err().position, 2);
        let mut s = Scanner::new("attributes//x)");
        assert_eq!(
            s.property(PropertyUse::Compare).unwrap_err(),
            RqlError::new(0, "empty segment in property 'attributes//x'")
        );
    }

    #[test]
    fn expect_and_ident() {
        let mut s = Scanner::new("ab_1(");
        assert_eq!(s.ident(), "ab_1");
        assert_eq!(s.expect(b')'), Err(RqlError::new(4, "expected ')'")));
        assert_eq!(s.expect(b'('), Ok(()));
        assert_eq!(
            s.expect(b')'),
            Err(RqlError::new(5, "expected ')' but the input ended"))
        );
        assert!(!s.eat(b'x'));
        assert_eq!(s.ident(), "");
    }
}
