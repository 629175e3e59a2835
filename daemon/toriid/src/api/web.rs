//! The pages toriid serves: the traveler kiosk (`/kiosk`), the officer console
//! (`/console`, also `/`) and their assets (`/web/…`), all embedded in the binary from
//! `daemon/toriid/web/` (a gate has no internet and no web server: no CDN, no build
//! step, plain ES modules).
//!
//! The pages hold no secrets and no personal data; they get everything through the API
//! with the session their token opens (`/kiosk#token=…`, see `web/api.js`). Every
//! answer forbids framing and loading anything from elsewhere
//! (`Content-Security-Policy: default-src 'self'`): the pages have no inline scripts or
//! styles, and never parse API data as HTML.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The policy for every page and asset. `default-src 'self'` covers scripts, styles,
/// images, fonts and `connect-src` (the API and the event stream are same-origin).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'; object-src 'none'";

/// One embedded file.
struct Asset {
    /// Path under `/web/`.
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JSON: &str = "application/json";

macro_rules! asset {
    ($path:literal, $type:expr) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_str!(concat!("../../web/", $path)),
        }
    };
}

const KIOSK: Asset = asset!("kiosk.html", HTML);
const CONSOLE: Asset = asset!("console.html", HTML);

/// Everything under `/web/`. The kiosk's languages: Japanese, English, Simplified and
/// Traditional Chinese, Korean.
const ASSETS: &[Asset] = &[
    asset!("style.css", CSS),
    asset!("api.js", JS),
    asset!("kiosk.js", JS),
    asset!("console.js", JS),
    asset!("i18n/ja.json", JSON),
    asset!("i18n/en.json", JSON),
    asset!("i18n/zh-Hans.json", JSON),
    asset!("i18n/zh-Hant.json", JSON),
    asset!("i18n/ko.json", JSON),
];

/// The pages' routes, for any router state (merged into the read-only routes: the pages
/// themselves are public; what they may do depends on the session).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(console))
        .route("/console", get(console))
        .route("/kiosk", get(kiosk))
        .route("/web/{*path}", get(asset))
}

async fn kiosk() -> Response {
    serve(&KIOSK)
}

async fn console() -> Response {
    serve(&CONSOLE)
}

async fn asset(Path(path): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.path == path) {
        Some(asset) => serve(asset),
        None => with_headers(
            (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
            "text/plain; charset=utf-8",
        ),
    }
}

fn serve(asset: &Asset) -> Response {
    with_headers(asset.body.into_response(), asset.content_type)
}

fn with_headers(mut response: Response, content_type: &'static str) -> Response {
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name: HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(headers, header::CONTENT_TYPE, content_type);
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        CONTENT_SECURITY_POLICY,
    );
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    // Embedded in the binary: a daemon upgrade must never leave old scripts cached.
    set(headers, header::CACHE_CONTROL, "no-cache");
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt as _;
    use std::collections::BTreeSet;
    use tower::ServiceExt as _;

    async fn get(uri: &str) -> (StatusCode, axum::http::HeaderMap, String) {
        let response = routes::<()>()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn pages_and_assets_are_served_with_their_type_and_the_policy() {
        let mut cases = vec![
            ("/".to_owned(), HTML),
            ("/console".to_owned(), HTML),
            ("/kiosk".to_owned(), HTML),
        ];
        cases.extend(
            ASSETS
                .iter()
                .map(|a| (format!("/web/{}", a.path), a.content_type)),
        );
        for (uri, content_type) in cases {
            let (status, headers, body) = get(&uri).await;
            assert_eq!(status, StatusCode::OK, "{uri}");
            assert!(!body.is_empty(), "{uri}");
            assert_eq!(headers[header::CONTENT_TYPE], content_type, "{uri}");
            let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
            assert!(csp.starts_with("default-src 'self'"), "{uri}: {csp}");
            assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY", "{uri}");
            assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{uri}");
        }
        let (_, _, kiosk) = get("/kiosk").await;
        assert!(kiosk.contains("/web/kiosk.js"));
    }

    #[tokio::test]
    async fn anything_else_under_web_is_404() {
        for uri in [
            "/web/nope.js",
            "/web/../Cargo.toml",
            "/web/i18n/fr.json",
            "/web/",
        ] {
            let (status, headers, _) = get(uri).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
            if status == StatusCode::NOT_FOUND && headers.contains_key(header::X_FRAME_OPTIONS) {
                assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
            }
        }
    }

    fn dictionary(lang: &str) -> serde_json::Map<String, serde_json::Value> {
        let asset = ASSETS
            .iter()
            .find(|a| a.path == format!("i18n/{lang}.json"))
            .unwrap_or_else(|| panic!("no i18n/{lang}.json"));
        match serde_json::from_str(asset.body) {
            Ok(serde_json::Value::Object(map)) => map,
            other => panic!("i18n/{lang}.json is not a JSON object: {other:?}"),
        }
    }

    #[test]
    fn every_language_translates_every_string() {
        let english = dictionary("en");
        let keys: BTreeSet<&String> = english.keys().collect();
        for lang in ["ja", "zh-Hans", "zh-Hant", "ko"] {
            let other = dictionary(lang);
            let theirs: BTreeSet<&String> = other.keys().collect();
            assert_eq!(
                keys.difference(&theirs).collect::<Vec<_>>(),
                Vec::<&&String>::new(),
                "missing in {lang}"
            );
            assert_eq!(
                theirs.difference(&keys).collect::<Vec<_>>(),
                Vec::<&&String>::new(),
                "unknown in {lang}"
            );
            for (key, value) in &other {
                let text = value.as_str().unwrap_or_default();
                assert!(!text.trim().is_empty(), "{lang}: {key} is empty");
                // Translated, not copied (product names and the flight example aside).
                if !matches!(key.as_str(), "ed.flight.example") && text.is_ascii() {
                    panic!("{lang}: {key} looks untranslated: {text:?}");
                }
            }
        }
    }

    /// Every text between two double quotes of `text`: a superset of its `"…"` string
    /// literals (keys are recognised by their shape below).
    fn quoted(text: &str) -> Vec<&str> {
        text.split('"').collect()
    }

    #[test]
    fn every_key_the_kiosk_uses_exists() {
        let english = dictionary("en");
        let prefixes: BTreeSet<&str> = english.keys().filter_map(|k| k.split('.').next()).collect();
        let html = KIOSK.body;
        let script = ASSETS.iter().find(|a| a.path == "kiosk.js").unwrap().body;
        let mut used: Vec<&str> = html
            .split("data-i18n=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect();
        used.extend(quoted(script).into_iter().filter(|s| {
            s.split_once('.').is_some_and(|(prefix, rest)| {
                prefixes.contains(prefix)
                    && !rest.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_')
            })
        }));
        assert!(used.len() > 40, "{used:?}");
        for key in used {
            assert!(
                english.contains_key(key),
                "kiosk uses {key:?}, not in en.json"
            );
        }
    }

    #[test]
    fn pages_have_nothing_inline_for_the_policy_to_block() {
        for page in [&KIOSK, &CONSOLE] {
            for forbidden in [
                " style=\"",
                " onclick=",
                " onload=",
                "javascript:",
                "<script>",
            ] {
                assert!(
                    !page.body.contains(forbidden),
                    "{} contains {forbidden:?}",
                    page.path
                );
            }
            // Every script and stylesheet is one of ours.
            for reference in page.body.split("=\"/web/").skip(1) {
                let path = reference.split('"').next().unwrap();
                assert!(
                    ASSETS.iter().any(|a| a.path == path),
                    "{} references /web/{path}, which is not embedded",
                    page.path
                );
            }
        }
    }
}
