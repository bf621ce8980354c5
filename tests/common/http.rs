//! A small raw HTTP/1.1 client over real sockets for the black-box tests: one request per
//! connection (`Http`), a raw connection for keep-alive / pipelining / trickling (`Conn`), and
//! a Server-Sent Events reader (`Sse`) decoding the chunked stream into events.

use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use serde_json::Value;
use smol::net::TcpStream;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{basic, WAIT};

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    /// First header value by name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All values of a header.
    pub fn headers_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Body as JSON (panics with the body if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }

    /// The Ditto error code of an error body.
    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }
}

/// A raw connection with a read buffer.
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

async fn within<T>(wait: Duration, f: impl std::future::Future<Output = T>) -> Option<T> {
    future::or(async { Some(f.await) }, async {
        smol::Timer::after(wait).await;
        None
    })
    .await
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Writes raw bytes (false if the peer closed).
    pub async fn send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).await.is_ok() && self.stream.flush().await.is_ok()
    }

    /// Reads more bytes into the buffer; false on EOF, error or after `wait`.
    async fn fill(&mut self, wait: Duration) -> bool {
        let mut chunk = [0u8; 8192];
        match within(wait, self.stream.read(&mut chunk)).await {
            Some(Ok(n)) if n > 0 => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            _ => false,
        }
    }

    /// True once the peer closed the connection (EOF or reset) within `wait`.
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            let mut chunk = [0u8; 8192];
            let left = deadline.saturating_duration_since(Instant::now());
            match within(left, self.stream.read(&mut chunk)).await {
                None => return false,
                Some(Ok(0)) | Some(Err(_)) => return true,
                Some(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    async fn take_line(&mut self, deadline: Instant) -> Option<String> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return Some(line);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.fill(left).await {
                return None;
            }
        }
    }

    async fn take_exact(&mut self, n: usize, deadline: Instant) -> Option<Vec<u8>> {
        while self.buf.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.fill(left).await {
                return None;
            }
        }
        Some(self.buf.drain(..n).collect())
    }

    /// Reads a response head (status + headers), skipping 1xx responses.
    pub async fn read_head(&mut self, wait: Duration) -> Option<(u16, Vec<(String, String)>)> {
        let deadline = Instant::now() + wait;
        loop {
            let status_line = self.take_line(deadline).await?;
            let status: u16 = status_line.split(' ').nth(1)?.parse().ok()?;
            let mut headers = Vec::new();
            loop {
                let line = self.take_line(deadline).await?;
                if line.is_empty() {
                    break;
                }
                let (k, v) = line.split_once(':')?;
                headers.push((k.trim().to_owned(), v.trim().to_owned()));
            }
            if status >= 200 {
                return Some((status, headers));
            }
        }
    }

    /// One chunk of a chunked body (`None` at the end chunk or on timeout).
    pub async fn read_chunk(&mut self, wait: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + wait;
        let size_line = self.take_line(deadline).await?;
        let size = usize::from_str_radix(size_line.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            self.take_line(deadline).await;
            return None;
        }
        let data = self.take_exact(size, deadline).await?;
        self.take_exact(2, deadline).await?;
        Some(data)
    }

    /// Reads one complete response (`head_request`: no body follows).
    pub async fn read_response(&mut self, head_request: bool) -> Option<Resp> {
        let (status, headers) = self.read_head(WAIT).await?;
        let mut r = Resp {
            status,
            headers,
            body: Vec::new(),
        };
        if head_request || status == 204 || status == 304 {
            return Some(r);
        }
        let deadline = Instant::now() + WAIT;
        if let Some(n) = r
            .header("content-length")
            .and_then(|v| v.parse::<usize>().ok())
        {
            r.body = self.take_exact(n, deadline).await?;
        } else if r
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            while let Some(c) = self.read_chunk(WAIT).await {
                r.body.extend(c);
            }
        } else {
            while self
                .fill(deadline.saturating_duration_since(Instant::now()))
                .await
            {}
            r.body = std::mem::take(&mut self.buf);
        }
        Some(r)
    }
}

/// Serializes a request (adds `Host`, `Content-Length` for bodies).
pub fn request_bytes(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        out.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if let Some(b) = body {
        bytes.extend_from_slice(b);
    }
    bytes
}

/// A client sending each request on a fresh connection, with optional Basic credentials.
#[derive(Clone)]
pub struct Http {
    pub addr: SocketAddr,
    pub auth: Option<String>,
}

impl Http {
    /// As the development user `ditto`/`ditto`.
    pub fn new(addr: SocketAddr) -> Http {
        Http {
            addr,
            auth: Some(basic("ditto", "ditto")),
        }
    }

    /// Without credentials.
    pub fn anonymous(addr: SocketAddr) -> Http {
        Http { addr, auth: None }
    }

    /// Sends one request and reads the response.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Resp {
        let mut hs: Vec<(&str, &str)> = headers.to_vec();
        if let Some(a) = &self.auth {
            hs.push(("Authorization", a.as_str()));
        }
        hs.push(("Connection", "close"));
        let mut c = Conn::connect(self.addr).await;
        assert!(
            c.send(&request_bytes(method, path, &hs, body)).await,
            "send"
        );
        c.read_response(method == "HEAD")
            .await
            .unwrap_or_else(|| panic!("no response to {method} {path}"))
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send("GET", path, &[], None).await
    }

    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        self.send("GET", path, headers, None).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Resp {
        self.put_with(path, body, &[]).await
    }

    pub async fn put_with(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> Resp {
        let mut hs = vec![("Content-Type", "application/json")];
        hs.extend_from_slice(headers);
        self.send("PUT", path, &hs, Some(body.to_string().as_bytes()))
            .await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Resp {
        let hs = [("Content-Type", "application/merge-patch+json")];
        self.send("PATCH", path, &hs, Some(body.to_string().as_bytes()))
            .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        let hs = [("Content-Type", "application/json")];
        self.send("POST", path, &hs, Some(body.to_string().as_bytes()))
            .await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send("DELETE", path, &[], None).await
    }

    /// Open sessions (WS + SSE) as `/status/health` reports them.
    pub async fn sessions(&self) -> u64 {
        self.get("/status/health").await.json()["sessions"]
            .as_u64()
            .expect("sessions count")
    }

    /// Opens an SSE stream (`Accept: text/event-stream`); returns the response head on errors.
    pub async fn sse(&self, path: &str) -> Result<Sse, Resp> {
        self.sse_with(path, &[]).await
    }

    /// [`Http::sse`] with extra request headers.
    pub async fn sse_with(&self, path: &str, headers: &[(&str, &str)]) -> Result<Sse, Resp> {
        let mut hs = vec![("Accept", "text/event-stream")];
        hs.extend_from_slice(headers);
        if let Some(a) = &self.auth {
            hs.push(("Authorization", a.as_str()));
        }
        let mut conn = Conn::connect(self.addr).await;
        assert!(conn.send(&request_bytes("GET", path, &hs, None)).await);
        let (status, headers) = conn.read_head(WAIT).await.expect("SSE response head");
        if status != 200 {
            let mut r = Resp {
                status,
                headers,
                body: Vec::new(),
            };
            if let Some(n) = r.header("content-length").and_then(|v| v.parse().ok()) {
                r.body = conn
                    .take_exact(n, Instant::now() + WAIT)
                    .await
                    .unwrap_or_default();
            }
            return Err(r);
        }
        Ok(Sse {
            conn,
            headers,
            text: String::new(),
        })
    }
}

/// A Server-Sent Events stream being read.
pub struct Sse {
    pub conn: Conn,
    pub headers: Vec<(String, String)>,
    text: String,
}

impl Sse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The next raw event block (lines up to the blank line), comments included; `None` on
    /// timeout or end of stream.
    pub async fn next_block(&mut self, wait: Duration) -> Option<String> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(i) = self.text.find("\n\n") {
                let block = self.text[..i].to_owned();
                self.text.drain(..i + 2);
                return Some(block);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let chunk = self.conn.read_chunk(left).await?;
            self.text.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The `data` of the next event (comment-only blocks are skipped).
    pub async fn next_data(&mut self, wait: Duration) -> Option<String> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let block = self.next_block(left).await?;
            let data: Vec<&str> = block
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .collect();
            if !data.is_empty() {
                return Some(data.join("\n"));
            }
        }
    }

    /// The next event's data as JSON.
    pub async fn next_json(&mut self, wait: Duration) -> Option<Value> {
        let d = self.next_data(wait).await?;
        Some(serde_json::from_str(&d).unwrap_or_else(|e| panic!("SSE data not JSON ({e}): {d}")))
    }
}
