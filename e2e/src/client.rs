//! A small HTTP client for the suite: every status is an answer, never an error.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Client {
    base_url: String,
    agent: ureq::Agent,
}

/// A response: status and JSON body (`null` when the body is not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    /// Each `Set-Cookie` header's `name=value`, without its attributes.
    pub cookies: Vec<String>,
}

impl Client {
    pub fn new(base_url: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Client {
            base_url: base_url.to_owned(),
            agent,
        }
    }

    /// Backfills `table` as the caller of `cookie`, call after call until no cursor is left;
    /// returns each call's backfill id.
    pub fn backfill_all(&self, cookie: &str, table: &str) -> Result<Vec<String>, String> {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let body = serde_json::json!({"table": table, "cursor": cursor}).to_string();
            let reply = self
                .post("/api/v1/embeddings/backfill", Some(cookie), &body)
                .map_err(|e| e.to_string())?;
            if reply.status != 202 {
                return Err(format!("backfill answered {} {}", reply.status, reply.body));
            }
            let id = reply.body["backfillId"].as_str().ok_or("no backfillId")?;
            ids.push(id.to_owned());
            match reply.body["nextCursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return Ok(ids),
            }
        }
    }

    pub fn get(&self, path: &str, cookie: Option<&str>) -> Result<Reply, ureq::Error> {
        let mut request = self.agent.get(format!("{}{path}", self.base_url));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        Self::reply(request.call()?)
    }

    pub fn post(&self, path: &str, cookie: Option<&str>, body: &str) -> Result<Reply, ureq::Error> {
        let mut request = self
            .agent
            .post(format!("{}{path}", self.base_url))
            .header("content-type", "application/json");
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        Self::reply(request.send(body)?)
    }

    /// Any method, with any headers (`cookie`, `authorization`) and an optional JSON body.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Result<Reply, ureq::Error> {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base_url));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = match body {
            Some(body) => self.agent.run(
                request
                    .header("content-type", "application/json")
                    .body(body.to_owned())
                    .map_err(ureq::Error::from)?,
            )?,
            None => self
                .agent
                .run(request.body(()).map_err(ureq::Error::from)?)?,
        };
        Self::reply(response)
    }

    pub fn put(&self, path: &str, body: &str) -> Result<Reply, ureq::Error> {
        let request = self
            .agent
            .put(format!("{}{path}", self.base_url))
            .header("content-type", "application/json");
        Self::reply(request.send(body)?)
    }

    /// POSTs `json` padded with spaces to `len` bytes, in chunked transfer encoding with no
    /// `Content-Length`. Returns the reply, if one came, and how many bytes of the body had been
    /// sent when it began (or, without one, when the connection ended).
    ///
    /// Raw HTTP/1.1 on a connection of its own, read by one thread while another writes: a
    /// server may answer before the body is all sent and then close, and an HTTP client that
    /// meets the broken pipe drops the reply. A reply cut short by a reset keeps its status, with
    /// a `null` body. No reply at all is `None`: the local runtime resets a connection whose
    /// upload the worker cancelled with much of it still to come, often before the reply is out
    /// (workers-sdk#15709).
    pub fn post_chunked(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        json: &str,
        len: usize,
    ) -> io::Result<(Option<Reply>, usize)> {
        let address = self.base_url.trim_start_matches("http://");
        let mut stream = TcpStream::connect(address)?;
        // Short, so the writer notices a reply while the server reads no more.
        stream.set_write_timeout(Some(Duration::from_millis(200)))?;
        stream.set_read_timeout(Some(Duration::from_mins(2)))?;
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n"
        );
        for (name, value) in headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;

        let sent = Arc::new(AtomicUsize::new(0));
        let answered = Arc::new(AtomicBool::new(false));
        let reader = {
            let (mut stream, sent, answered) =
                (stream.try_clone()?, sent.clone(), answered.clone());
            std::thread::spawn(move || read_reply(&mut stream, &sent, &answered))
        };
        let body = json.as_bytes();
        let mut chunk = Vec::new();
        let mut offset = 0;
        let deadline = Instant::now() + Duration::from_mins(2);
        while offset < len {
            let end = (offset + 64 * 1024).min(len);
            chunk.clear();
            chunk.extend_from_slice(format!("{:x}\r\n", end - offset).as_bytes());
            chunk.extend((offset..end).map(|i| body.get(i).copied().unwrap_or(b' ')));
            chunk.extend_from_slice(b"\r\n");
            if !write_unless_answered(&mut stream, &chunk, &answered, deadline) {
                break;
            }
            offset = end;
            sent.store(offset, Ordering::SeqCst);
        }
        if offset == len {
            write_unless_answered(&mut stream, b"0\r\n\r\n", &answered, deadline);
        }
        let (raw, sent) = reader
            .join()
            .map_err(|_| io::Error::other("the reply's reader panicked"))??;
        Ok((parse_reply(&raw, true).map(|(reply, _)| reply), sent))
    }

    fn reply(mut response: ureq::http::Response<ureq::Body>) -> Result<Reply, ureq::Error> {
        let status = response.status().as_u16();
        let cookies = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .filter_map(|value| value.split(';').next())
            .map(str::to_owned)
            .collect();
        let text = response.body_mut().read_to_string()?;
        Ok(Reply {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            cookies,
        })
    }
}

/// Writes all of `bytes` unless the reply begins first, the connection fails (a server that
/// answered may close it), or `deadline` passes; true if all was written.
fn write_unless_answered(
    stream: &mut TcpStream,
    mut bytes: &[u8],
    answered: &AtomicBool,
    deadline: Instant,
) -> bool {
    while !bytes.is_empty() {
        if answered.load(Ordering::SeqCst) || Instant::now() > deadline {
            return false;
        }
        match stream.write(bytes) {
            Ok(0) => return false,
            Ok(n) => bytes = &bytes[n..],
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// Reads one reply until it is whole or the connection ends (a reset is an end: it may follow
/// a reply given before the request was); returns what came, and the body bytes sent when the
/// first of it came, or when the connection ended without any.
fn read_reply(
    stream: &mut TcpStream,
    sent: &AtomicUsize,
    answered: &AtomicBool,
) -> io::Result<(Vec<u8>, usize)> {
    let mut bytes = Vec::new();
    let mut sent_then = None;
    let mut buffer = [0; 16 * 1024];
    let ended = loop {
        match stream.read(&mut buffer) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                sent_then.get_or_insert_with(|| sent.load(Ordering::SeqCst));
                answered.store(true, Ordering::SeqCst);
                bytes.extend_from_slice(&buffer[..n]);
                if parse_reply(&bytes, false).is_some_and(|(_, whole)| whole) {
                    break Ok(());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    answered.store(true, Ordering::SeqCst);
    match ended {
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Err(io::Error::new(e.kind(), "no reply within the read timeout"))
        }
        Err(e) if !is_reset(&e) => Err(e),
        _ => Ok((
            bytes,
            sent_then.unwrap_or_else(|| sent.load(Ordering::SeqCst)),
        )),
    }
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// The HTTP/1.1 reply in `raw` once its head has come, and whether its body (by
/// `Content-Length`, chunked, or to the end of a connection that has `ended`) has come whole; a
/// body cut short reads as `null`.
fn parse_reply(raw: &[u8], ended: bool) -> Option<(Reply, bool)> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let header = |name: &str| {
        head.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    let rest = &raw[end + 4..];
    let body = if let Some(length) = header("content-length") {
        rest.get(..length.parse::<usize>().ok()?)
            .map(<[u8]>::to_vec)
    } else if header("transfer-encoding") == Some("chunked") {
        dechunk(rest)
    } else {
        ended.then(|| rest.to_vec())
    };
    let reply = Reply {
        status,
        body: body
            .as_deref()
            .and_then(|body| serde_json::from_slice(body).ok())
            .unwrap_or(Value::Null),
        cookies: Vec::new(),
    };
    Some((reply, body.is_some()))
}

/// A chunked body, once its last chunk has come.
fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = rest.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&rest[..line]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}
