//! A plain request and response for handlers.
//!
//! Handlers take an [`HttpRequest`] and return an [`HttpResponse`]; the `#[event(fetch)]` glue
//! converts from and to `worker` types at the edge. That keeps every route testable with fake
//! bindings, and puts body limits and error rendering in one place.

use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use shared::{ApiError, ErrorCode};

/// Largest request body any route accepts: 4 MiB, room for every body the API document calls
/// valid. The largest is a record of three text fields of 65,536 characters each, every one
/// written as a JSON escaped surrogate pair (12 bytes): 2.3 MiB.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Patch,
    Delete,
    Other,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Other => "OTHER",
        }
    }

    /// A request's method as sent. `worker::Method` reads any method it does not know (QUERY,
    /// PROPFIND, …) as GET, which would answer it as a GET; here it is `Other`, refused with
    /// 405.
    pub fn parse(raw: &str) -> Method {
        match raw.to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            _ => Method::Other,
        }
    }
}

#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: Method,
    /// The URL path, without query.
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    /// Header names in lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpRequest {
    pub fn new(method: Method, path: &str) -> Self {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        HttpRequest {
            method,
            path: path.to_owned(),
            query: query.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    #[must_use]
    pub fn with_json(mut self, body: &serde_json::Value) -> Self {
        self.body = body.to_string().into_bytes();
        self.with_header("content-type", "application/json")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter, percent-decoded; the first when it is given twice.
    pub fn query(&self, name: &str) -> Option<String> {
        worker::url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.into_owned())
    }

    /// Refuses a query parameter not in `allowed`, naming it.
    pub fn only_query(&self, allowed: &[&str]) -> Result<(), ApiError> {
        for (name, _) in worker::url::form_urlencoded::parse(self.query.as_bytes()) {
            if !allowed.contains(&name.as_ref()) {
                return Err(ApiError::invalid(format!(
                    "unknown query parameter `{name}` (known: {})",
                    allowed.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// The path split on `/`, without empty segments, each percent-decoded (`clm%3A1` is
    /// `clm:1`, as a client encoding the id must be understood); a segment that does not decode
    /// is kept as sent, for the route's own check to refuse.
    pub fn segments(&self) -> Vec<String> {
        self.path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| shared::percent_decode(s).unwrap_or_else(|| s.to_owned()))
            .collect()
    }

    /// Decodes the JSON body into `T`: 400 `malformed_json` when it is not JSON, 400
    /// `invalid_request` naming the field when it does not fit `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        if self.body.is_empty() {
            return Err(ApiError::new(
                ErrorCode::MalformedJson,
                "a JSON body is required",
            ));
        }
        let value: serde_json::Value = serde_json::from_slice(&self.body).map_err(|e| {
            ApiError::new(
                ErrorCode::MalformedJson,
                format!("body is not valid JSON: {e}"),
            )
        })?;
        serde_json::from_value(value).map_err(|e| ApiError::invalid(e.to_string()))
    }

    /// Converts a runtime request, refusing a body over [`MAX_BODY_BYTES`] with 413.
    pub async fn from_worker(mut req: worker::Request) -> Result<Self, ApiError> {
        let method = Method::parse(&req.inner().method());
        let url = req
            .url()
            .map_err(|_| ApiError::invalid("request URL is not valid"))?;
        let headers: Vec<(String, String)> = req.headers().entries().collect();
        let declared = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
            return Err(too_large());
        }
        let body = match method {
            Method::Get | Method::Delete => Vec::new(),
            _ => read_capped(&mut req).await?,
        };
        Ok(HttpRequest {
            method,
            path: url.path().to_owned(),
            query: url.query().unwrap_or_default().to_owned(),
            headers,
            body,
        })
    }
}

/// The request's body, read chunk by chunk and given up the moment it passes
/// [`MAX_BODY_BYTES`].
///
/// Why not `Request::bytes`: it has the runtime buffer the whole body and copy it into wasm
/// before anything here can count it, and a chunked upload declares no length to refuse it by.
/// All the requests of an isolate share its 128 MB, so a few such uploads at once would reset
/// every request in it.
///
/// What this holds at most: the bytes accepted so far, never more than the cap (see
/// [`append_capped`]), and the one chunk just copied out of the runtime. The runtime sets a
/// chunk's size, not the sender: under `wrangler dev` none was over 4 KiB, even from a sender
/// framing 16 MB chunks. It counts the bytes that arrive, not what `Content-Length` claims, so a
/// declared length that lies lets nothing more through. Returning early drops the stream, which
/// cancels it: the rest of the body is never read. (The local runtime may then reset the
/// connection before the 413 is out, workers-sdk#15709; leaving the stream locked instead
/// answered 500.)
async fn read_capped(req: &mut worker::Request) -> Result<Vec<u8>, ApiError> {
    let unreadable = |_| ApiError::invalid("request body could not be read");
    // `stream` fails on a request with no body at all, which a POST may be (a job's retry).
    if req.inner().body().is_none() {
        return Ok(Vec::new());
    }
    let mut stream = req.stream().map_err(unreadable)?;
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        append_capped(&mut body, &chunk.map_err(unreadable)?)?;
    }
    Ok(body)
}

/// Appends `chunk` to `body`, or refuses with 413 if that would make it longer than
/// [`MAX_BODY_BYTES`]. The buffer grows to the next power of two but never past the cap:
/// `Vec`'s own growth doubles whatever capacity it has, so chunks of odd sizes could give a body
/// just under the cap a buffer of nearly twice the cap. While it grows, the old buffer, at most
/// half the new one, is alive beside it for the copy.
fn append_capped(body: &mut Vec<u8>, chunk: &[u8]) -> Result<(), ApiError> {
    let len = body.len() + chunk.len();
    if len > MAX_BODY_BYTES {
        return Err(too_large());
    }
    if len > body.capacity() {
        body.reserve_exact(len.next_power_of_two().min(MAX_BODY_BYTES) - body.len());
    }
    body.extend_from_slice(chunk);
    Ok(())
}

fn too_large() -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("request body is over {MAX_BODY_BYTES} bytes"),
    )
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    pub status: u16,
    pub body: serde_json::Value,
    /// Headers beyond the JSON content type, lowercase names.
    pub headers: Vec<(String, String)>,
}

impl HttpResponse {
    pub fn json(status: u16, body: &impl Serialize) -> Self {
        HttpResponse {
            status,
            body: serde_json::to_value(body).expect("response bodies serialize"),
            headers: Vec::new(),
        }
    }

    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    pub fn ok(body: &impl Serialize) -> Self {
        Self::json(200, body)
    }

    /// 204, for a delete.
    pub fn no_content() -> Self {
        HttpResponse {
            status: 204,
            body: serde_json::Value::Null,
            headers: Vec::new(),
        }
    }

    pub fn error(error: &ApiError) -> Self {
        HttpResponse {
            status: error.status(),
            body: error.body(),
            headers: Vec::new(),
        }
    }

    /// The log line of a request answered with an error, if it was. A success writes none: the
    /// platform logs every invocation with its status already, and a console line is not free:
    /// each is a billed log event in production, and under `wrangler dev` each one took about
    /// 2 ms of the request's time (measured beside a worker that logs nothing).
    pub fn log(&self, request: &HttpRequest) {
        if self.status >= 400 {
            tracing::info!(
                method = request.method.as_str(),
                path = %request.path,
                status = self.status,
                "request"
            );
        }
    }

    pub fn into_worker(self) -> worker::Result<worker::Response> {
        let response = if self.status == 204 {
            worker::Response::empty()?.with_status(204)
        } else {
            worker::Response::from_json(&self.body)?.with_status(self.status)
        };
        for (name, value) in &self.headers {
            response.headers().set(name, value)?;
        }
        Ok(response)
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod log_tests {
    use std::io;
    use std::sync::{Arc, Mutex, PoisonError};

    use shared::ApiError;

    use super::{HttpRequest, HttpResponse, Method};

    /// What the workers' subscriber writes, kept.
    #[derive(Clone, Default)]
    struct Kept(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Kept {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn logged(response: &HttpResponse) -> String {
        let kept = Kept::default();
        let writer = kept.clone();
        let subscriber = crate::telemetry::subscriber(move || writer.clone());
        let request = HttpRequest {
            method: Method::Post,
            path: "/api/v1/claims".into(),
            query: String::new(),
            headers: Vec::new(),
            body: Vec::new(),
        };
        tracing::subscriber::with_default(subscriber, || response.log(&request));
        let bytes = kept
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        String::from_utf8(bytes).expect("the subscriber writes UTF-8")
    }

    #[test]
    fn a_success_writes_no_line_and_an_error_writes_its_status() {
        assert_eq!(logged(&HttpResponse::ok(&serde_json::json!({}))), "");
        assert_eq!(logged(&HttpResponse::no_content()), "");
        let line = logged(&HttpResponse::error(&ApiError::invalid("no content")));
        let line: serde_json::Value = serde_json::from_str(line.trim_end()).expect("one JSON line");
        assert_eq!(line["fields"]["status"], 400, "{line}");
        assert_eq!(line["fields"]["path"], "/api/v1/claims", "{line}");
    }
}

#[cfg(all(test, target_arch = "wasm32"))]
mod tests {
    use super::{append_capped, Method, MAX_BODY_BYTES};
    use shared::ErrorCode;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn a_body_of_the_cap_is_kept_whole_and_one_byte_more_is_refused() {
        // Chunks of an odd size, so the last one straddles the cap.
        let chunk = vec![b' '; 65_537];
        let mut body = Vec::new();
        while body.len() + chunk.len() <= MAX_BODY_BYTES {
            append_capped(&mut body, &chunk).expect("under the cap");
            assert!(body.capacity() <= MAX_BODY_BYTES, "{}", body.capacity());
        }
        let rest = MAX_BODY_BYTES - body.len();
        append_capped(&mut body, &chunk[..rest]).expect("exactly the cap");
        assert_eq!(body.len(), MAX_BODY_BYTES);
        assert_eq!(body.capacity(), MAX_BODY_BYTES);
        let refused = append_capped(&mut body, b" ").expect_err("one byte over the cap");
        assert_eq!(refused.code, ErrorCode::PayloadTooLarge);
        assert_eq!(body.len(), MAX_BODY_BYTES, "a refused chunk is not kept");
    }

    #[wasm_bindgen_test]
    fn one_chunk_larger_than_the_cap_is_refused_before_it_is_kept() {
        let mut body = Vec::new();
        let refused = append_capped(&mut body, &vec![0; MAX_BODY_BYTES + 1]);
        assert!(refused.is_err());
        assert_eq!(body.capacity(), 0);
    }

    #[wasm_bindgen_test]
    fn a_method_the_routes_do_not_know_is_never_read_as_get() {
        assert_eq!(Method::parse("GET"), Method::Get);
        assert_eq!(Method::parse("patch"), Method::Patch);
        for unknown in ["QUERY", "PROPFIND", "HEAD", "PUT", "OPTIONS", ""] {
            assert_eq!(Method::parse(unknown), Method::Other, "{unknown}");
        }
    }
}
