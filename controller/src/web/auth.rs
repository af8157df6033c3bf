//! The write token: read from `token_file` (or handed over in-process by the demo), compared
//! in constant time.

use std::sync::Arc;

use crate::config::Web;

/// Shortest token accepted.
const MIN_TOKEN_CHARS: usize = 8;

/// The write token and, without one, why the page is read-only.
pub(super) fn load_token(cfg: &Web) -> (Option<Arc<[u8]>>, Option<String>) {
    if let Some(t) = cfg.inline_token() {
        return check(t.trim(), "the token given");
    }
    let Some(path) = &cfg.token_file else {
        return (
            None,
            Some("no write token is configured (web.token_file)".into()),
        );
    };
    match std::fs::read_to_string(path) {
        Ok(text) => check(text.trim(), &format!("the token in {path}")),
        Err(e) => {
            let reason = format!("the token file {path} cannot be read: {e}");
            tracing::error!("web page read-only: {reason}");
            (None, Some(reason))
        }
    }
}

fn check(token: &str, what: &str) -> (Option<Arc<[u8]>>, Option<String>) {
    if token.chars().count() < MIN_TOKEN_CHARS || token.chars().any(char::is_whitespace) {
        let reason = format!(
            "{what} is unusable: it must be at least {MIN_TOKEN_CHARS} characters on one line, without spaces"
        );
        tracing::error!("web page read-only: {reason}");
        return (None, Some(reason));
    }
    (Some(Arc::from(token.as_bytes())), None)
}

/// Whether `given` equals `expected`, in time that depends on their lengths only (not on
/// where they first differ).
#[must_use]
pub fn tokens_match(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != expected.len());
    for (i, e) in expected.iter().enumerate() {
        // Past the end of `given`: same work, already different.
        diff |= given.get(i).copied().unwrap_or(0) ^ e;
    }
    std::hint::black_box(diff) == 0
}

/// The token of an `Authorization: Bearer <token>` header value.
pub(super) fn bearer(header: Option<&axum::http::HeaderValue>) -> Option<&[u8]> {
    let v = header?.as_bytes();
    let (scheme, rest) = v.split_at(v.iter().position(|&b| b == b' ')?);
    scheme
        .eq_ignore_ascii_case(b"bearer")
        .then(|| rest.trim_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(tokens_match(b"secret-token", b"secret-token"));
        assert!(!tokens_match(b"secret-tokem", b"secret-token"));
        assert!(!tokens_match(b"secret", b"secret-token"));
        assert!(!tokens_match(b"secret-token-longer", b"secret-token"));
        assert!(!tokens_match(b"", b"secret-token"));
    }

    #[test]
    fn bearer_header() {
        let h = axum::http::HeaderValue::from_static("Bearer abc123xyz");
        assert_eq!(bearer(Some(&h)), Some(&b"abc123xyz"[..]));
        let h = axum::http::HeaderValue::from_static("bearer  abc123xyz ");
        assert_eq!(bearer(Some(&h)), Some(&b"abc123xyz"[..]));
        let h = axum::http::HeaderValue::from_static("Basic abc");
        assert_eq!(bearer(Some(&h)), None);
        assert_eq!(bearer(None), None);
    }

    #[test]
    fn short_or_missing_tokens_leave_the_page_read_only() {
        let mut cfg = Web::default();
        assert!(load_token(&cfg).0.is_none());
        cfg.set_inline_token(Some("short".into()));
        assert!(load_token(&cfg).0.is_none());
        cfg.set_inline_token(Some("long-enough-token".into()));
        assert_eq!(
            load_token(&cfg).0.as_deref(),
            Some(&b"long-enough-token"[..])
        );
        cfg.set_inline_token(None);
        cfg.token_file = Some("/nonexistent/heatctl-web-token".into());
        let (t, why) = load_token(&cfg);
        assert!(t.is_none());
        assert!(why.unwrap_or_default().contains("cannot be read"));
    }
}
