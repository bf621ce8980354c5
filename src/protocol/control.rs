//! WebSocket control messages (`START-SEND-EVENTS?namespaces=..&filter=..&extraFields=..`,
//! the STOP variants, `JWT-TOKEN?jwtToken=..`) and URL query decoding. A text is a control
//! message only if it starts with one of the known identifiers; anything else is JSON.

/// The five pushed streams a session can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// twin events (`START-SEND-EVENTS`)
    Events,
    /// live messages (`START-SEND-MESSAGES`)
    Messages,
    /// live commands (`START-SEND-LIVE-COMMANDS`)
    LiveCommands,
    /// live events (`START-SEND-LIVE-EVENTS`)
    LiveEvents,
    /// policy announcements (`START-SEND-POLICY-ANNOUNCEMENTS`)
    PolicyAnnouncements,
}

impl StreamKind {
    /// All kinds, longest names first where one is a prefix of another.
    pub const ALL: [StreamKind; 5] = [
        StreamKind::LiveCommands,
        StreamKind::LiveEvents,
        StreamKind::PolicyAnnouncements,
        StreamKind::Messages,
        StreamKind::Events,
    ];

    /// The identifier after `START-SEND-` / `STOP-SEND-`.
    pub fn name(self) -> &'static str {
        match self {
            StreamKind::Events => "EVENTS",
            StreamKind::Messages => "MESSAGES",
            StreamKind::LiveCommands => "LIVE-COMMANDS",
            StreamKind::LiveEvents => "LIVE-EVENTS",
            StreamKind::PolicyAnnouncements => "POLICY-ANNOUNCEMENTS",
        }
    }
}

/// Parameters of a START message (raw; the hub validates filter and extraFields).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartParams {
    /// `namespaces=a,b`
    pub namespaces: Vec<String>,
    /// `filter=<rql>` (URL-decoded)
    pub filter: Option<String>,
    /// `extraFields=<selector>`
    pub extra_fields: Option<String>,
    /// `correlation-id=<id>`
    pub correlation_id: Option<String>,
}

/// A parsed control message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// `START-SEND-<KIND>[?params]`
    Start(StreamKind, StartParams),
    /// `STOP-SEND-<KIND>`
    Stop(StreamKind),
    /// `JWT-TOKEN?jwtToken=<jwt>`
    JwtToken(String),
}

impl Control {
    /// The `:ACK` text answering this control message (none for JWT-TOKEN).
    pub fn ack(&self) -> Option<String> {
        match self {
            Control::Start(k, _) => Some(format!("START-SEND-{}:ACK", k.name())),
            Control::Stop(k) => Some(format!("STOP-SEND-{}:ACK", k.name())),
            Control::JwtToken(_) => None,
        }
    }
}

/// Percent-decodes `s` (RFC 3986); with `plus_is_space` a `+` becomes a space (query strings,
/// as Java's `URLDecoder` treats them). `None` for a broken escape or non-UTF-8 result.
pub fn percent_decode(s: &str, plus_is_space: bool) -> Option<String> {
    if !s.contains(['%', '+']) {
        return Some(s.to_owned());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = |c: u8| (c as char).to_digit(16);
                let h = b.get(i + 1).copied().and_then(hex)?;
                let l = b.get(i + 2).copied().and_then(hex)?;
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-decodes a query component (`+` is a space).
pub fn url_decode(s: &str) -> Option<String> {
    percent_decode(s, true)
}

/// Splits `a=1&b=2` into decoded pairs; `None` if some part cannot be decoded.
pub fn parse_query(q: &str) -> Option<Vec<(String, String)>> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((url_decode(k)?, url_decode(v)?))
        })
        .collect()
}

/// Recognises a control message. `None` = not a control message (parse it as JSON).
/// `Some(Err(..))` = a control message with undecodable parameters.
pub fn parse_control(text: &str) -> Option<Result<Control, String>> {
    let text = text.trim_end();
    if let Some(rest) = text.strip_prefix("JWT-TOKEN") {
        let q = rest.strip_prefix('?').unwrap_or("");
        let token = parse_query(q).and_then(|pairs| {
            pairs
                .into_iter()
                .find(|(k, _)| k == "jwtToken")
                .map(|(_, v)| v)
        });
        return Some(
            token
                .map(Control::JwtToken)
                .ok_or_else(|| "JWT-TOKEN requires a jwtToken parameter".to_owned()),
        );
    }
    for (prefix, start) in [("START-SEND-", true), ("STOP-SEND-", false)] {
        let Some(rest) = text.strip_prefix(prefix) else {
            continue;
        };
        let kind = StreamKind::ALL.into_iter().find(|k| {
            rest.strip_prefix(k.name())
                .is_some_and(|r| r.is_empty() || r.starts_with('?'))
        })?;
        if !start {
            return Some(Ok(Control::Stop(kind)));
        }
        let q = rest[kind.name().len()..].strip_prefix('?').unwrap_or("");
        let Some(pairs) = parse_query(q) else {
            return Some(Err(format!(
                "The parameters of '{prefix}{}' could not be decoded.",
                kind.name()
            )));
        };
        let mut p = StartParams::default();
        for (k, v) in pairs {
            match k.as_str() {
                "namespaces" => {
                    p.namespaces = v
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                }
                "filter" if !v.is_empty() => p.filter = Some(v),
                "extraFields" if !v.is_empty() => p.extra_fields = Some(v),
                "correlation-id" => p.correlation_id = Some(v),
                _ => {}
            }
        }
        return Some(Ok(Control::Start(kind, p)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_with_params() {
        let c = parse_control("START-SEND-EVENTS?namespaces=org.eclipse.ditto,x&filter=gt(attributes%2Fcounter,42)&extraFields=attributes")
            .unwrap()
            .unwrap();
        let Control::Start(StreamKind::Events, p) = &c else {
            panic!("{c:?}")
        };
        assert_eq!(p.namespaces, vec!["org.eclipse.ditto", "x"]);
        assert_eq!(p.filter.as_deref(), Some("gt(attributes/counter,42)"));
        assert_eq!(p.extra_fields.as_deref(), Some("attributes"));
        assert_eq!(c.ack().unwrap(), "START-SEND-EVENTS:ACK");
    }

    #[test]
    fn every_kind_and_stop() {
        for k in StreamKind::ALL {
            let start = format!("START-SEND-{}", k.name());
            assert_eq!(
                parse_control(&start),
                Some(Ok(Control::Start(k, StartParams::default())))
            );
            let stop = format!("STOP-SEND-{}", k.name());
            assert_eq!(
                parse_control(&stop).unwrap().unwrap().ack().unwrap(),
                format!("{stop}:ACK")
            );
        }
    }

    #[test]
    fn not_control() {
        assert_eq!(parse_control("START-SEND-FOO"), None);
        assert_eq!(parse_control("START-SEND-EVENTSX"), None);
        assert_eq!(parse_control("{\"topic\":1}"), None);
        assert!(parse_control("START-SEND-EVENTS?filter=%zz")
            .unwrap()
            .is_err());
        assert_eq!(
            parse_control("JWT-TOKEN?jwtToken=abc"),
            Some(Ok(Control::JwtToken("abc".into())))
        );
    }

    #[test]
    fn decoding() {
        assert_eq!(url_decode("a%26b+c").as_deref(), Some("a&b c"));
        assert_eq!(url_decode("%e2%82%ac").as_deref(), Some("€"));
        assert_eq!(url_decode("%2"), None);
        assert_eq!(url_decode("%ff"), None);
    }
}
