//! The common shape of an inbound frame read by hand (issue 21): `topic`, `headers` whose
//! values are strings, booleans or lists of strings, `path`, `value`, nothing else, and no
//! escapes in the texts read here. This path only accepts: any other shape, anything unusual
//! and every error gives `None`, and `Envelope::parse` then takes serde's path, which answers
//! it. Iterative; the depth bound is checked before the value is parsed.

use super::envelope::Envelope;
use super::headers::{header_name, Headers, MAX_HEADERS};
use super::topic::Topic;
use crate::bounds::MAX_FRAME_DEPTH;
use serde_json::Value;

/// The envelope of `text`, if it has the common shape; `None` means "ask serde".
pub(super) fn parse(text: &str) -> Option<Envelope> {
    let mut c = Cursor { s: text, i: 0 };
    c.ws();
    c.eat(b'{')?;
    let (mut topic, mut headers, mut path, mut value) = (None, None, None, None);
    c.ws();
    if c.peek()? == b'}' {
        return None; // `{}`: the topic is missing (serde's answer)
    }
    loop {
        c.ws();
        let key = c.plain_str()?;
        c.ws();
        c.eat(b':')?;
        c.ws();
        // a field twice is serde's error: the `is_none` checks send it there
        match key {
            "topic" if topic.is_none() => topic = Some(Topic::parse(c.plain_str()?).ok()?),
            "headers" if headers.is_none() => headers = Some(c.headers()?),
            "path" if path.is_none() => path = Some(c.plain_str()?.to_owned()),
            "value" if value.is_none() => value = Some(c.value()?),
            _ => return None,
        }
        c.ws();
        match c.next()? {
            b',' => {}
            b'}' => break,
            _ => return None,
        }
    }
    c.ws();
    if c.i != text.len() {
        return None;
    }
    let mut env = Envelope::new(topic?, headers.unwrap_or_default(), path?);
    env.value = value;
    Some(env)
}

/// A read position in the frame.
struct Cursor<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.i += 1;
        Some(b)
    }

    fn eat(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    /// Skips JSON whitespace.
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// A string without escapes or control characters (its text is the bytes between the
    /// quotes); `None` for any other.
    fn plain_str(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let b = self.s.as_bytes();
        let start = self.i;
        loop {
            match *b.get(self.i)? {
                b'"' => break,
                b'\\' | 0..=0x1f => return None,
                _ => self.i += 1,
            }
        }
        self.i += 1;
        // both ends are ASCII quotes: char boundaries
        self.s.get(start..self.i - 1)
    }

    /// A literal word (`true`, `false`).
    fn word(&mut self, w: &str) -> Option<()> {
        let end = self.i + w.len();
        (self.s.as_bytes().get(self.i..end)? == w.as_bytes()).then(|| self.i = end)
    }

    /// The headers object: at most `MAX_HEADERS` names, no two alike ignoring case (serde's
    /// path merges those), values as above.
    fn headers(&mut self) -> Option<Headers> {
        self.eat(b'{')?;
        let mut h = Headers::new();
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(h);
        }
        loop {
            self.ws();
            let name = self.plain_str()?;
            if h.len() == MAX_HEADERS || h.get(name).is_some() {
                return None;
            }
            self.ws();
            self.eat(b':')?;
            self.ws();
            let v = match self.peek()? {
                b'"' => Value::String(self.plain_str()?.to_owned()),
                b't' => self.word("true").map(|_| Value::Bool(true))?,
                b'f' => self.word("false").map(|_| Value::Bool(false))?,
                b'[' => self.str_list()?,
                _ => return None,
            };
            h.insert(header_name(name), v);
            self.ws();
            match self.next()? {
                b',' => {}
                b'}' => return Some(h),
                _ => return None,
            }
        }
    }

    /// A list of plain strings (`[]` included).
    fn str_list(&mut self) -> Option<Value> {
        self.eat(b'[')?;
        let mut items = Vec::new();
        self.ws();
        if self.peek()? == b']' {
            self.i += 1;
            return Some(Value::Array(items));
        }
        loop {
            self.ws();
            items.push(Value::String(self.plain_str()?.to_owned()));
            self.ws();
            match self.next()? {
                b',' => {}
                b']' => return Some(Value::Array(items)),
                _ => return None,
            }
        }
    }

    /// The payload: a plain string read here; anything else is delimited by `span` (which
    /// bounds its depth) and parsed by serde_json, which checks it is exactly one JSON value.
    fn value(&mut self) -> Option<Value> {
        if self.peek()? == b'"' {
            let at = self.i;
            if let Some(s) = self.plain_str() {
                return Some(Value::String(s.to_owned()));
            }
            self.i = at;
        }
        let start = self.i;
        let depth = self.span()?;
        // the frame's object around it is one more level
        if depth + 1 > MAX_FRAME_DEPTH {
            return None;
        }
        serde_json::from_str(self.s.get(start..self.i)?).ok()
    }

    /// Moves past one JSON value (not validated: serde_json does that on the span) and gives
    /// its nesting, counted as `bounds::text_depth` counts it; `None` if it does not end.
    fn span(&mut self) -> Option<usize> {
        let b = self.s.as_bytes();
        let (mut depth, mut max) = (0usize, 0usize);
        loop {
            let c = *b.get(self.i)?;
            match c {
                b'"' => {
                    self.i += 1;
                    loop {
                        match *b.get(self.i)? {
                            b'\\' => self.i += 2,
                            b'"' => break,
                            _ => self.i += 1,
                        }
                    }
                }
                b'[' | b'{' => {
                    depth += 1;
                    max = max.max(depth);
                }
                b']' | b'}' if depth > 0 => depth -= 1,
                // a scalar ends at what follows it in the frame
                b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r' if depth == 0 => {
                    return Some(max)
                }
                _ => {}
            }
            self.i += 1;
            if depth == 0 && matches!(c, b'"' | b']' | b'}') {
                return Some(max);
            }
        }
    }
}
