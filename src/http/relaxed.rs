//! Ditto's relaxed request-target parsing (pekko-http `uri-parsing-mode = relaxed`): every
//! visible ASCII character is accepted in the query, so `?filter=eq(attributes/x,"ACME")` works
//! unencoded. The `http` crate refuses `"`, `<` and `>` there with a bare 400; this reader sits
//! between the socket and hyper and percent-encodes exactly those bytes in request-line queries.

use futures_lite::io::{AsyncRead, AsyncWrite};
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

/// Longest header line kept while looking for the framing headers (longer framing headers:
/// the connection is passed through untouched and hyper judges it).
const LINE_MAX: usize = 256;

/// Where the scanner is in the HTTP/1.1 byte stream of requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// before a request line (empty lines are skipped, as httparse does)
    LineStart,
    /// method token
    Method,
    /// request-target before `?`
    Path,
    /// request-target query: `"`, `<`, `>` are percent-encoded here
    Query,
    /// request-target fragment, then the HTTP version up to the line end
    RestOfLine,
    /// header lines up to the empty line
    Header,
    /// a `Content-Length` body with this many bytes left
    Body(u64),
    /// a chunk-size line (with optional extensions)
    ChunkSize,
    /// chunk data with this many bytes left
    ChunkData(u64),
    /// the CRLF after chunk data
    ChunkEnd,
    /// trailer lines after the last chunk
    Trailers,
    /// upgraded, CONNECT, or framing this scanner does not follow: bytes pass untouched
    Passthrough,
}

/// The framing facts of the request head being read.
#[derive(Debug, Default)]
struct Head {
    connect: bool,
    content_length: Option<u64>,
    chunked: bool,
    upgrade: bool,
    bad: bool,
}

/// The byte-stream rewriter (sans IO).
#[derive(Debug)]
pub struct Scanner {
    state: State,
    head: Head,
    method: Vec<u8>,
    line: Vec<u8>,
    line_overflow: bool,
    chunk_size: u64,
    chunk_digits: bool,
    chunk_ext: bool,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner {
            state: State::LineStart,
            head: Head::default(),
            method: Vec::new(),
            line: Vec::new(),
            line_overflow: false,
            chunk_size: 0,
            chunk_digits: false,
            chunk_ext: false,
        }
    }
}

impl Scanner {
    /// True once nothing is rewritten any more (after an upgrade or unknown framing).
    pub fn passthrough(&self) -> bool {
        self.state == State::Passthrough
    }

    /// Appends `input`, rewritten, to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        while let Some((k, replacement)) = self.scan(&input[i..]) {
            out.extend_from_slice(&input[i..i + k]);
            out.extend_from_slice(replacement);
            i += k + 1;
        }
        out.extend_from_slice(&input[i..]);
    }

    /// Advances over `input` up to the first byte that must be rewritten: its index and
    /// replacement (the state is then past that byte); `None` = all of `input` stays as is.
    pub fn scan(&mut self, input: &[u8]) -> Option<(usize, &'static [u8])> {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Passthrough => return None,
                State::Body(left) | State::ChunkData(left) => {
                    let take = (input.len() - i).min(usize::try_from(left).unwrap_or(usize::MAX));
                    i += take;
                    let left = left - take as u64;
                    self.state = match (self.state, left) {
                        (State::Body(_), 0) => State::LineStart,
                        (State::Body(_), l) => State::Body(l),
                        (_, 0) => State::ChunkEnd,
                        (_, l) => State::ChunkData(l),
                    };
                }
                _ => {
                    if let Some(r) = self.step(input[i]) {
                        return Some((i, r));
                    }
                    i += 1;
                }
            }
        }
        None
    }

    /// One byte outside bodies; `Some(replacement)` if it is to be percent-encoded.
    fn step(&mut self, b: u8) -> Option<&'static [u8]> {
        match self.state {
            State::LineStart => {
                if b != b'\r' && b != b'\n' {
                    self.head = Head::default();
                    self.method.clear();
                    self.method.push(b);
                    self.state = State::Method;
                }
            }
            State::Method => match b {
                b' ' => {
                    self.head.connect = self.method.eq_ignore_ascii_case(b"CONNECT");
                    self.state = State::Path;
                }
                b'\r' | b'\n' => self.state = State::Passthrough,
                _ if self.method.len() < 16 => self.method.push(b),
                _ => {}
            },
            State::Path | State::Query => match b {
                b' ' | b'#' => self.state = State::RestOfLine,
                b'\r' | b'\n' => self.state = State::Passthrough,
                b'?' if self.state == State::Path => self.state = State::Query,
                b'"' if self.state == State::Query => return Some(b"%22"),
                b'<' if self.state == State::Query => return Some(b"%3C"),
                b'>' if self.state == State::Query => return Some(b"%3E"),
                _ => {}
            },
            State::RestOfLine => {
                if b == b'\n' {
                    self.start_line(State::Header);
                }
            }
            State::Header | State::Trailers => {
                if b != b'\n' {
                    if self.line.len() < LINE_MAX {
                        self.line.push(b);
                    } else {
                        self.line_overflow = true;
                    }
                    return None;
                }
                if self
                    .line
                    .strip_suffix(b"\r")
                    .unwrap_or(&self.line)
                    .is_empty()
                {
                    self.state = if self.state == State::Trailers {
                        State::LineStart
                    } else {
                        self.after_head()
                    };
                } else if self.state == State::Header {
                    self.header_line();
                }
                self.start_line(self.state);
            }
            State::ChunkSize => match b {
                b'\n' if self.chunk_digits => {
                    let next = match self.chunk_size {
                        0 => State::Trailers,
                        n => State::ChunkData(n),
                    };
                    self.start_line(next);
                }
                b'\n' => self.state = State::Passthrough,
                _ if self.chunk_ext => {}
                _ => match (b as char).to_digit(16) {
                    Some(d) if self.chunk_size >> 56 == 0 => {
                        self.chunk_size = self.chunk_size * 16 + u64::from(d);
                        self.chunk_digits = true;
                    }
                    Some(_) => self.state = State::Passthrough,
                    None => self.chunk_ext = true,
                },
            },
            State::ChunkEnd => {
                if b == b'\n' {
                    self.start_line(State::ChunkSize);
                }
            }
            State::Body(_) | State::ChunkData(_) | State::Passthrough => {}
        }
        None
    }

    fn start_line(&mut self, next: State) {
        self.state = next;
        self.line.clear();
        self.line_overflow = false;
        self.chunk_size = 0;
        self.chunk_digits = false;
        self.chunk_ext = false;
    }

    /// Notes `Content-Length`, `Transfer-Encoding` and `Upgrade` from a header line.
    fn header_line(&mut self) {
        let line = self.line.strip_suffix(b"\r").unwrap_or(&self.line);
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            return;
        };
        let name = &line[..colon];
        let value = String::from_utf8_lossy(&line[colon + 1..])
            .trim()
            .to_owned();
        let framing = name.eq_ignore_ascii_case(b"content-length")
            || name.eq_ignore_ascii_case(b"transfer-encoding");
        if framing && self.line_overflow {
            self.head.bad = true;
        } else if name.eq_ignore_ascii_case(b"content-length") {
            match value.parse::<u64>() {
                Ok(n) if self.head.content_length.is_none_or(|c| c == n) => {
                    self.head.content_length = Some(n)
                }
                _ => self.head.bad = true,
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            let last = value.rsplit(',').next().unwrap_or_default().trim();
            if last.eq_ignore_ascii_case("chunked") {
                self.head.chunked = true;
            } else {
                self.head.bad = true;
            }
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            self.head.upgrade = true;
        }
    }

    /// The state after the empty line that ends a request head.
    fn after_head(&self) -> State {
        let h = &self.head;
        if h.bad || h.upgrade || h.connect {
            State::Passthrough
        } else if h.chunked {
            State::ChunkSize
        } else {
            match h.content_length {
                Some(n) if n > 0 => State::Body(n),
                _ => State::LineStart,
            }
        }
    }
}

/// A connection whose incoming request lines are relaxed by a [`Scanner`]; writes pass through.
/// Reads go straight into the caller's buffer; only a read that needs rewriting keeps the
/// bytes that no longer fit (at most twice that read) until the next read.
pub struct RelaxedIo<S> {
    inner: S,
    scanner: Scanner,
    out: Vec<u8>,
    pos: usize,
}

impl<S> RelaxedIo<S> {
    /// Wraps a fresh connection.
    pub fn new(inner: S) -> Self {
        RelaxedIo {
            inner,
            scanner: Scanner::default(),
            out: Vec::new(),
            pos: 0,
        }
    }

    /// The connection and the rewritten bytes not read yet (for an upgrade hand-over).
    pub fn into_parts(self) -> (S, Vec<u8>) {
        let rest = self.out[self.pos..].to_vec();
        (self.inner, rest)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for RelaxedIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.pos < this.out.len() {
            let n = buf.len().min(this.out.len() - this.pos);
            buf[..n].copy_from_slice(&this.out[this.pos..this.pos + n]);
            this.pos += n;
            if this.pos == this.out.len() {
                this.out = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(n));
        }
        let n = ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let Some((k, replacement)) = this.scanner.scan(&buf[..n]) else {
            return Poll::Ready(Ok(n));
        };
        let mut out = replacement.to_vec();
        this.scanner.feed(&buf[k + 1..n], &mut out);
        let fit = out.len().min(buf.len() - k);
        buf[k..k + fit].copy_from_slice(&out[..fit]);
        if fit < out.len() {
            this.out = out;
            this.pos = fit;
        }
        Poll::Ready(Ok(k + fit))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for RelaxedIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `step` bytes.
    fn run(input: &str, step: usize) -> String {
        let mut s = Scanner::default();
        let mut out = Vec::new();
        for piece in input.as_bytes().chunks(step) {
            s.feed(piece, &mut out);
        }
        String::from_utf8(out).unwrap()
    }

    fn all_steps(input: &str, expected: &str) {
        for step in [1, 2, 3, 7, 64, input.len().max(1)] {
            assert_eq!(run(input, step), expected, "step {step}");
        }
    }

    #[test]
    fn quotes_and_angles_in_the_query_are_encoded() {
        all_steps(
            "GET /api/2/search/things?filter=eq(attributes/m,\"ACME\")&x=<a> HTTP/1.1\r\nhost: h\r\n\r\n",
            "GET /api/2/search/things?filter=eq(attributes/m,%22ACME%22)&x=%3Ca%3E HTTP/1.1\r\nhost: h\r\n\r\n",
        );
    }

    #[test]
    fn path_headers_and_fragments_are_untouched() {
        let req = "GET /a\"b<c>?q=1#\"x\" HTTP/1.1\r\nx-h: \"v\"?<>\r\n\r\n";
        all_steps(req, req);
    }

    #[test]
    fn bodies_are_never_rewritten_and_pipelined_requests_are() {
        let body = "GET /x?a=\"b\" HTTP/1.1\r\n";
        let input = format!(
            "\r\nPOST /p?q=\"1\" HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}GET /g?q=\"2\" HTTP/1.1\r\n\r\n",
            body.len()
        );
        let expected = format!(
            "\r\nPOST /p?q=%221%22 HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}GET /g?q=%222%22 HTTP/1.1\r\n\r\n",
            body.len()
        );
        all_steps(&input, &expected);
    }

    #[test]
    fn chunked_bodies_with_extensions_and_trailers_are_followed() {
        let chunk = "PUT /c?v=\"x\" HTTP/1.1\r\n";
        let input = format!(
            "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{:x};ext=\"a\"\r\n{chunk}\r\n0\r\ntrailer: \"t\"\r\n\r\nGET /n?\"q\" HTTP/1.1\r\n\r\n",
            chunk.len()
        );
        let expected = input.replace("/n?\"q\"", "/n?%22q%22");
        all_steps(&input, &expected);
    }

    #[test]
    fn upgrades_and_unknown_framing_pass_through() {
        let input =
            "GET /ws/2?a=\"1\" HTTP/1.1\r\nUpgrade: websocket\r\n\r\nGET /x?\"y\" HTTP/1.1\r\n";
        let expected = input.replacen("a=\"1\"", "a=%221%22", 1);
        all_steps(input, &expected);
        let mut s = Scanner::default();
        s.feed(input.as_bytes(), &mut Vec::new());
        assert!(s.passthrough());
        for bad in [
            "POST /p HTTP/1.1\r\nContent-Length: x\r\n\r\nGET /?\"a\" HTTP/1.1\r\n",
            "POST /p HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nGET /?\"a\" HTTP/1.1\r\n",
            "POST /p HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nGET /?\"a\" HTTP/1.1\r\n",
            "CONNECT h:1 HTTP/1.1\r\n\r\nGET /?\"a\" HTTP/1.1\r\n",
        ] {
            all_steps(bad, bad);
        }
    }

    #[test]
    fn long_header_lines_are_bounded() {
        let long = "v".repeat(10_000);
        let input =
            format!("GET /?\"a\" HTTP/1.1\r\nx-long: {long}\r\n\r\nGET /?\"b\" HTTP/1.1\r\n\r\n");
        let out = run(&input, 100);
        assert_eq!(out, input.replace('"', "%22"));
        let mut s = Scanner::default();
        s.feed(input.as_bytes(), &mut Vec::new());
        assert!(s.line.capacity() <= 2 * LINE_MAX, "{}", s.line.capacity());
        // an overlong framing header is not trusted: the rest passes through untouched
        let cl = format!(
            "POST / HTTP/1.1\r\ncontent-length: {}1\r\n\r\nGET /?\"a\" HTTP/1.1\r\n",
            "0".repeat(300)
        );
        all_steps(&cl, &cl);
    }

    fn read(io: &mut RelaxedIo<futures_lite::io::Cursor<Vec<u8>>>, b: &mut [u8]) -> usize {
        futures_lite::future::block_on(futures_lite::io::AsyncReadExt::read(io, b)).unwrap()
    }

    #[test]
    fn the_reader_rewrites_in_place_and_keeps_only_the_overflow() {
        let input = b"GET /q?x=\"1\" HTTP/1.1\r\nupgrade: websocket\r\n\r\n\x81\x05hello".to_vec();
        let expected = b"GET /q?x=%221%22 HTTP/1.1\r\nupgrade: websocket\r\n\r\n\x81\x05hello";
        for size in [1, 3, 10, input.len(), 200] {
            let mut io = RelaxedIo::new(futures_lite::io::Cursor::new(input.clone()));
            let (mut got, mut b) = (Vec::new(), vec![0u8; size]);
            loop {
                let n = read(&mut io, &mut b);
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&b[..n]);
            }
            assert_eq!(got, expected, "buffer {size}");
            assert!(io.out.capacity() == 0, "nothing kept once read");
        }
        // a read that does not fit keeps the overflow, handed over with the connection
        let mut io = RelaxedIo::new(futures_lite::io::Cursor::new(input.clone()));
        let mut b = vec![0u8; input.len()];
        let n = read(&mut io, &mut b);
        assert_eq!(n, input.len());
        assert!(io.scanner.passthrough());
        let (cursor, rest) = io.into_parts();
        assert_eq!(cursor.position() as usize, input.len());
        assert_eq!([&b[..n], &rest[..]].concat(), expected);
    }
}
