//! A body without a `Content-Length` is held to the same cap as one with: refused with 413 once
//! the gateway has read about the cap, while the isolate keeps answering everyone else.

use std::sync::atomic::{AtomicBool, Ordering};

use super::{check, expect, Ctx, Test};
use super::{json, Duration, Failed, Instant};

pub(crate) const TESTS: &[(&str, Test)] = &[(
    "a_chunked_body_is_refused_at_the_cap_without_being_read_whole",
    a_chunked_body_is_refused_at_the_cap_without_being_read_whole,
)];

/// The gateway's cap on a request body, as the API document states it (4 MiB; in the code
/// `worker_kit::http::MAX_BODY_BYTES`).
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Uploads with no `Content-Length`, several at once and far over the cap, are refused with
/// 413 once the gateway has read about the cap, not the whole body; the isolate keeps answering
/// everyone else meanwhile; and the cap is where the document says, to the byte.
fn a_chunked_body_is_refused_at_the_cap_without_being_read_whole(ctx: &Ctx) -> Result<(), Failed> {
    const MB: usize = 1_000_000;
    let cookie = [("cookie", ctx.ann.as_str())];
    let valid = json!({"content": "a chunked upload"}).to_string();
    let upload = |len: usize| {
        ctx.client
            .post_chunked("/api/v1/embeddings", &cookie, &valid, len)
    };
    let running = AtomicBool::new(true);
    let (uploads, ordinary) = std::thread::scope(|scope| {
        let ordinary = scope.spawn(|| ordinary_requests_while(ctx, &running));
        let uploads: Vec<_> = [64 * MB, 64 * MB, 64 * MB, 8 * MB, 8 * MB, 8 * MB]
            .into_iter()
            .map(|len| scope.spawn(move || (len, upload(len))))
            .collect();
        let uploads: Vec<_> = uploads
            .into_iter()
            .map(std::thread::ScopedJoinHandle::join)
            .collect();
        running.store(false, Ordering::SeqCst);
        (uploads, ordinary.join())
    });
    for upload in uploads {
        let (len, result) = upload.map_err(|_| "an upload's thread panicked")?;
        let (reply, sent) = result.map_err(|e| format!("a chunked upload of {len} bytes: {e}"))?;
        // With no reply, the local runtime reset the connection of an upload the gateway gave
        // up on (see `Client::post_chunked`); a reply cut short by that reset has no body.
        if let Some(reply) = reply {
            expect(&reply, 413, &format!("a chunked upload of {len} bytes"))?;
            check(
                reply.body.is_null() || reply.body["error"]["code"] == "payload_too_large",
                || format!("{}", reply.body),
            )?;
        }
        // Buffers on the way hold a few MB the gateway never read; a gateway that read the
        // body whole answers only once all of it is sent.
        if len == 64 * MB {
            check(sent < len / 2, || {
                format!("the upload ended after {sent} of {len} bytes: the body was read whole")
            })?;
        }
    }
    let ordinary = ordinary.map_err(|_| "the ordinary requests' thread panicked")??;
    check(ordinary.iter().all(|(_, status)| *status == 200), || {
        format!("ordinary requests during the uploads: {ordinary:?}")
    })?;

    let (at_cap, _) = upload(MAX_BODY_BYTES)?;
    expect(
        &at_cap.ok_or("no reply to a chunked body of exactly the cap")?,
        202,
        "a chunked body of exactly the cap",
    )?;
    // So little is left unread that the runtime drains it and the reply is sure to come.
    let (over, _) = upload(MAX_BODY_BYTES + 1)?;
    let over = over.ok_or("no reply to a chunked body one byte over the cap")?;
    expect(&over, 413, "a chunked body one byte over the cap")?;
    check(over.body["error"]["code"] == "payload_too_large", || {
        format!("{}", over.body)
    })
}

/// Health and an authenticated list, at least once and then over and over until `running` is
/// false: each path with the status it answered.
fn ordinary_requests_while(
    ctx: &Ctx,
    running: &AtomicBool,
) -> Result<Vec<(&'static str, u16)>, Failed> {
    let mut answered = Vec::new();
    let started = Instant::now();
    loop {
        let health = ctx.client.get("/api/v1/health", None)?;
        answered.push(("health", health.status));
        let listed = ctx.client.get("/api/v1/claims?limit=5", Some(&ctx.ann))?;
        answered.push(("claims", listed.status));
        if !running.load(Ordering::SeqCst) || started.elapsed() > Duration::from_mins(3) {
            return Ok(answered);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
