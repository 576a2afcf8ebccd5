//! Just enough of multipart/form-data (RFC 7578) to take one file out of a body: wrangler sends
//! its NDJSON as the `vectors` file of a form.

/// The boundary of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let mime = params.next()?.trim();
    if !mime.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.find_map(|param| {
        let (key, value) = param.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').to_owned())
    })
}

/// The content of the part named `name`.
pub fn file<'a>(body: &'a [u8], boundary: &str, name: &str) -> Option<&'a [u8]> {
    let delimiter = format!("--{boundary}");
    let starts = find_all(body, delimiter.as_bytes());
    starts.windows(2).find_map(|pair| {
        let part = &body[pair[0] + delimiter.len()..pair[1]];
        let part = part.strip_prefix(b"\r\n")?;
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        let split = find_all(part, b"\r\n\r\n").into_iter().next()?;
        let (headers, content) = (&part[..split], &part[split + 4..]);
        let headers = std::str::from_utf8(headers).ok()?;
        headers
            .split("\r\n")
            .any(|header| names(header, name))
            .then_some(content)
    })
}

/// Whether a header line is a Content-Disposition naming `name`.
fn names(header: &str, name: &str) -> bool {
    let Some((key, value)) = header.split_once(':') else {
        return false;
    };
    key.trim().eq_ignore_ascii_case("content-disposition")
        && value.split(';').any(|param| {
            param.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("name") && v.trim().trim_matches('"') == name
            })
        })
}

fn find_all(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = haystack[from..]
        .windows(needle.len())
        .position(|window| window == needle)
    {
        found.push(from + at);
        from += at + needle.len();
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_named_part_out() {
        let content_type = "multipart/form-data; boundary=\"----formdata-undici-0123\"";
        let boundary = boundary(content_type).unwrap();
        assert_eq!(boundary, "----formdata-undici-0123");
        let body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"vectors\"; filename=\"vectors.ndjson\"\r\n\
             Content-Type: application/x-ndjson\r\n\r\n{{\"id\":\"a\"}}\n{{\"id\":\"b\"}}\r\n--{boundary}--\r\n"
        );
        assert_eq!(
            file(body.as_bytes(), &boundary, "vectors"),
            Some(&b"{\"id\":\"a\"}\n{\"id\":\"b\"}"[..])
        );
        assert_eq!(file(body.as_bytes(), &boundary, "missing"), None);
        assert_eq!(super::boundary("application/x-ndjson"), None);
    }
}
