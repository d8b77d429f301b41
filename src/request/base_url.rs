//! `--url` is the server's base URL; a URL that already holds the API route (a common slip:
//! copying the full `/v1/chat/completions` address) is understood as the base before it
//! (pure).

use crate::config::Endpoint;

/// The routes a base URL must not end in, with the endpoint each one is.
const ROUTES: [(&str, Endpoint); 5] = [
    ("/v1/chat/completions", Endpoint::Chat),
    ("/v1/completions", Endpoint::Completions),
    ("/v1/responses", Endpoint::Responses),
    ("/v1/embeddings", Endpoint::Embeddings),
    ("/v1/rerank", Endpoint::Rerank),
];

/// The base URL to use for `url`, and a line for the user when it was cut from a route. An
/// error when the route names the other endpoint than `endpoint`: guessing would send requests
/// the user did not ask for.
pub fn normalize(url: &str, endpoint: Endpoint) -> Result<(String, Option<String>), String> {
    let trimmed = url.trim().trim_end_matches('/');
    let Some((route, named)) = ROUTES.iter().find(|(r, _)| trimmed.ends_with(r)) else {
        return Ok((url.to_string(), None));
    };
    let base = &trimmed[..trimmed.len() - route.len()];
    if !base.contains("://") || base.ends_with(':') || base.ends_with('/') {
        // Nothing before the route but a scheme: leave it to the URL checks.
        return Ok((url.to_string(), None));
    }
    if *named != endpoint {
        let flag = named.flag();
        return Err(format!(
            "--url {url} is the {route} route, not the server's base URL: give --url {base} \
             (and --endpoint {flag} for that route)"
        ));
    }
    let note = format!(
        "--url {url} holds the API route {route}: taken as the base URL {base} (give the base \
         URL, e.g. http://host:8000, to silence this)"
    );
    Ok((base.to_string(), Some(note)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_holding_the_route_is_taken_as_its_base() {
        for (url, base) in [
            ("http://h:8000/v1/chat/completions", "http://h:8000"),
            ("http://h:8000/v1/chat/completions/", "http://h:8000"),
            (
                "https://gw.example.com/proxy/v1/chat/completions",
                "https://gw.example.com/proxy",
            ),
        ] {
            let (got, note) = normalize(url, Endpoint::Chat).unwrap();
            assert_eq!(got, base, "{url}");
            assert!(note.unwrap().contains(&format!("base URL {base}")));
        }
        let (got, _) = normalize("http://h/v1/completions", Endpoint::Completions).unwrap();
        assert_eq!(got, "http://h");
    }

    #[test]
    fn base_urls_are_kept_and_the_other_route_is_refused() {
        for url in [
            "http://h:8000",
            "http://h/v1",
            "http://h/proxy",
            "http:///v1/completions",
        ] {
            assert_eq!(
                normalize(url, Endpoint::Chat).unwrap(),
                (url.to_string(), None)
            );
        }
        let err = normalize("http://h:8000/v1/completions", Endpoint::Chat).unwrap_err();
        assert!(
            err.contains("--url http://h:8000") && err.contains("--endpoint completions"),
            "{err}"
        );
    }
}
