//! better-auth session cookies.
//!
//! better-auth stores `token.signature` URL-encoded in the cookie `better-auth.session_token`
//! (`__Secure-better-auth.session_token` over HTTPS), where the signature is the standard base64
//! (with padding, 44 characters) of HMAC-SHA256 of the token under `BETTER_AUTH_SECRET`. The
//! token then names a row of better-auth's `session` table, which the gateway looks up.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The cookie better-auth sets over plain HTTP.
pub const SESSION_COOKIE: &str = "better-auth.session_token";
/// The cookie better-auth sets over HTTPS.
pub const SECURE_SESSION_COOKIE: &str = "__Secure-better-auth.session_token";

/// Length of a base64 HMAC-SHA256 signature, padding included.
const SIGNATURE_LEN: usize = 44;

/// Why a session cookie was refused. The client sees one 401 for all of them; the reason is
/// for the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CookieError {
    #[error("no session cookie")]
    Missing,
    #[error("session cookie is not `token.signature`")]
    Malformed,
    #[error("session cookie signature does not verify")]
    BadSignature,
}

/// Finds the session cookie in a `Cookie` header and returns its URL-decoded value. The
/// `__Secure-` cookie wins when both are present.
pub fn find_session_cookie(cookie_header: &str) -> Result<String, CookieError> {
    let mut plain = None;
    for pair in cookie_header.split(';') {
        let Some((name, value)) = pair.trim().split_once('=') else {
            continue;
        };
        match name.trim() {
            SECURE_SESSION_COOKIE => return percent_decode(value.trim()),
            SESSION_COOKIE => plain = Some(value.trim()),
            _ => {}
        }
    }
    plain.map_or(Err(CookieError::Missing), percent_decode)
}

/// Checks a decoded cookie value's signature and returns the session token it carries.
/// The comparison is constant-time.
pub fn verify_signed_token<'a>(value: &'a str, secret: &[u8]) -> Result<&'a str, CookieError> {
    let (token, signature) = value.rsplit_once('.').ok_or(CookieError::Malformed)?;
    if token.is_empty() || signature.len() != SIGNATURE_LEN {
        return Err(CookieError::Malformed);
    }
    let signature = STANDARD
        .decode(signature)
        .map_err(|_| CookieError::Malformed)?;
    mac(token, secret)
        .verify_slice(&signature)
        .map_err(|_| CookieError::BadSignature)?;
    Ok(token)
}

/// Signs a session token the way better-auth does: `token.signature`, before URL-encoding.
pub fn sign_token(token: &str, secret: &[u8]) -> String {
    let signature = STANDARD.encode(mac(token, secret).finalize().into_bytes());
    format!("{token}.{signature}")
}

/// The `name=value` pair a client sends back for a session token, as better-auth sets it: the
/// signed token, URL-encoded the way `encodeURIComponent` does. Tests and the dev script sign
/// in with it.
pub fn session_cookie(token: &str, secret: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut encoded = String::new();
    for byte in sign_token(token, secret).bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    format!("{SESSION_COOKIE}={encoded}")
}

fn mac(token: &str, secret: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(token.as_bytes());
    mac
}

fn percent_decode(value: &str) -> Result<String, CookieError> {
    crate::percent_decode(value).ok_or(CookieError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"better-auth-secret-123456789012345";

    #[test]
    fn session_cookie_equals_what_better_auth_sets() {
        // `serializeSignedCookie("better-auth.session_token", "tok_ann", "secret-xyz")` from
        // npm better-call 1.4.5, the package better-auth signs its cookies with.
        assert_eq!(
            session_cookie("tok_ann", b"secret-xyz"),
            "better-auth.session_token=tok_ann.k4if8iboWpOz9oDAgy3Yb6nF%2FUVOqX7vv6ITpgeegqs%3D"
        );
        let header = session_cookie("tok_ann", b"secret-xyz");
        let value = find_session_cookie(&header).unwrap();
        assert_eq!(verify_signed_token(&value, b"secret-xyz"), Ok("tok_ann"));
    }

    #[test]
    fn sign_then_verify_returns_the_token() {
        let signed = sign_token("abc123", SECRET);
        assert_eq!(signed.len(), "abc123.".len() + SIGNATURE_LEN);
        assert_eq!(verify_signed_token(&signed, SECRET), Ok("abc123"));
    }

    #[test]
    fn matches_hmac_sha256_known_answer() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let signed = sign_token("what do ya want for nothing?", b"Jefe");
        assert_eq!(
            signed.rsplit_once('.').unwrap().1,
            "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="
        );
    }

    #[test]
    fn refuses_forged_and_malformed_values() {
        let signed = sign_token("abc123", SECRET);
        assert_eq!(
            verify_signed_token(&signed, b"another secret"),
            Err(CookieError::BadSignature)
        );
        let forged = signed.replacen("abc123", "abc124", 1);
        assert_eq!(
            verify_signed_token(&forged, SECRET),
            Err(CookieError::BadSignature)
        );
        let (_, signature) = signed.rsplit_once('.').unwrap();
        assert_eq!(
            verify_signed_token(&format!(".{signature}"), SECRET),
            Err(CookieError::Malformed),
            "no token before the signature"
        );
        assert_eq!(
            verify_signed_token("abc123", SECRET),
            Err(CookieError::Malformed)
        );
        assert_eq!(
            verify_signed_token("abc123.short=", SECRET),
            Err(CookieError::Malformed)
        );
    }

    #[test]
    fn finds_the_cookie_url_decoded_and_prefers_secure() {
        let header = "theme=dark; better-auth.session_token=tok.ab%2Bc%3D; other=1";
        assert_eq!(find_session_cookie(header).unwrap(), "tok.ab+c=");
        let both = "better-auth.session_token=plain; __Secure-better-auth.session_token=secure";
        assert_eq!(find_session_cookie(both).unwrap(), "secure");
        assert_eq!(find_session_cookie("theme=dark"), Err(CookieError::Missing));
        assert_eq!(
            find_session_cookie("better-auth.session_token=%zz"),
            Err(CookieError::Malformed)
        );
    }
}
