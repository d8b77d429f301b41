//! Endpoint URLs under the server's base URL.

use crate::config::Endpoint;

/// The URL of `endpoint` under the server's base URL, keeping any base path
/// (`http://h/proxy` → `http://h/proxy/v1/chat/completions`) and not doubling
/// a base path that already ends in `/v1`.
pub fn endpoint_url(base: &str, endpoint: Endpoint) -> Result<String, String> {
    let path = match endpoint {
        Endpoint::Chat => "chat/completions",
        Endpoint::Completions => "completions",
        Endpoint::Responses => "responses",
        Endpoint::Embeddings => "embeddings",
        Endpoint::Rerank => "rerank",
    };
    api_url(base, path)
}

/// The URL of `/v1/models` under the server's base URL (see [`endpoint_url`]).
pub fn models_url(base: &str) -> Result<String, String> {
    api_url(base, "models")
}

fn api_url(base: &str, path: &str) -> Result<String, String> {
    let base = base.trim();
    let invalid = |why: &str| format!("invalid server URL {base:?}: {why}");
    let (scheme, rest) = base
        .split_once("://")
        .ok_or_else(|| invalid("expected http://host[:port][/path] or https://..."))?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(invalid(&format!(
            "unsupported scheme {scheme:?}, only http and https are supported"
        )));
    }
    if rest.contains(['?', '#']) {
        return Err(invalid("a base URL cannot have a query or a fragment"));
    }
    if rest.contains(char::is_whitespace) {
        return Err(invalid("it contains whitespace"));
    }
    let (authority, base_path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if authority.is_empty() {
        return Err(invalid("no host"));
    }
    let base_path = base_path.trim_end_matches('/');
    let version = if base_path.ends_with("/v1") {
        ""
    } else {
        "/v1"
    };
    Ok(format!("{scheme}://{authority}{base_path}{version}/{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_url_appends_v1_after_any_base_path() {
        let chat = |base| endpoint_url(base, Endpoint::Chat);
        let cases = [
            (
                "http://localhost:8000",
                "http://localhost:8000/v1/chat/completions",
            ),
            (
                "http://localhost:8000/",
                "http://localhost:8000/v1/chat/completions",
            ),
            ("http://h/proxy", "http://h/proxy/v1/chat/completions"),
            ("http://h/proxy//", "http://h/proxy/v1/chat/completions"),
            ("http://h/openai/v1", "http://h/openai/v1/chat/completions"),
            ("http://h/v1/", "http://h/v1/chat/completions"),
            (
                "https://api.example.com",
                "https://api.example.com/v1/chat/completions",
            ),
            (
                "HTTPS://Example.com:8443",
                "https://Example.com:8443/v1/chat/completions",
            ),
            (
                "  http://[::1]:8000  ",
                "http://[::1]:8000/v1/chat/completions",
            ),
            // A host called v1 or a path merely ending in "v1..." is not a version.
            ("http://v1", "http://v1/v1/chat/completions"),
            ("http://h/v10", "http://h/v10/v1/chat/completions"),
            ("http://h/apiv1", "http://h/apiv1/v1/chat/completions"),
        ];
        for (base, want) in cases {
            assert_eq!(chat(base).as_deref(), Ok(want), "base {base:?}");
        }
        assert_eq!(
            endpoint_url("http://h/proxy/", Endpoint::Completions).as_deref(),
            Ok("http://h/proxy/v1/completions")
        );
        assert_eq!(
            models_url("http://h:8080/v1").as_deref(),
            Ok("http://h:8080/v1/models")
        );
        assert_eq!(models_url("http://h").as_deref(), Ok("http://h/v1/models"));
    }

    #[test]
    fn endpoint_url_rejects_what_it_cannot_use() {
        let cases = [
            ("ftp://h", "unsupported scheme \"ftp\""),
            ("unix:///run/vllm.sock", "unsupported scheme \"unix\""),
            ("localhost:8000", "expected http://"),
            ("", "expected http://"),
            ("http://", "no host"),
            ("http:///v1", "no host"),
            ("http://h/v1?api-version=2", "query or a fragment"),
            ("http://h/#x", "query or a fragment"),
            ("http://h /v1", "whitespace"),
        ];
        for (base, why) in cases {
            let err = endpoint_url(base, Endpoint::Chat).unwrap_err();
            assert!(err.contains(why), "{base:?}: {err}");
            assert!(err.contains(&format!("{:?}", base.trim())), "{err}");
            assert!(models_url(base).is_err());
        }
    }
}
