//! The web console: static files compiled into the binary, served under `/console/`. The
//! page is a client of the same v1 API as every other client (it holds no server-side state and no
//! route of its own reaches the vault), so every control the service layer enforces holds for it.
//!
//! The page runs under a policy that allows only its own script and style and connections back to
//! this origin. It builds the DOM from text nodes only, so customer data can never become markup,
//! and keeps the session token in memory, never in storage a later script could read.

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use tower_http::set_header::SetResponseHeaderLayer;

const INDEX_HTML: &str = include_str!("../console/index.html");
const APP_CSS: &str = include_str!("../console/app.css");

/// The page's script: ES modules, `app.js` first (it imports the others by absolute path).
const SCRIPTS: [(&str, &str); 7] = [
    ("app.js", include_str!("../console/app.js")),
    ("api.js", include_str!("../console/api.js")),
    ("dom.js", include_str!("../console/dom.js")),
    ("cases.js", include_str!("../console/cases.js")),
    ("exports.js", include_str!("../console/exports.js")),
    ("audit.js", include_str!("../console/audit.js")),
    ("admin.js", include_str!("../console/admin.js")),
];

/// `img-src data:` is for the TOTP enrolment QR code, an SVG the API returns and the page shows in
/// an `<img>` (where SVG cannot run script). Trusted Types with no policy make the browser refuse
/// every HTML and script sink (`innerHTML` and the like), which the page never uses.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'; require-trusted-types-for 'script'; trusted-types 'none'";

/// The console's routes, with the headers that confine the page.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let header_layer = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
    };
    let mut router = Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route(
            "/console/",
            get(|| asset("text/html; charset=utf-8", INDEX_HTML)),
        )
        .route(
            "/console/app.css",
            get(|| asset("text/css; charset=utf-8", APP_CSS)),
        );
    for (name, script) in SCRIPTS {
        router = router.route(
            &format!("/console/{name}"),
            get(move || asset("text/javascript; charset=utf-8", script)),
        );
    }
    router
        .layer(header_layer(
            header::CONTENT_SECURITY_POLICY,
            CONTENT_SECURITY_POLICY,
        ))
        .layer(header_layer(header::X_FRAME_OPTIONS, "DENY"))
        .layer(header_layer(header::REFERRER_POLICY, "no-referrer"))
        .layer(header_layer(
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ))
        .layer(header_layer(
            HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ))
        .layer(header_layer(
            HeaderName::from_static("permissions-policy"),
            "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
        ))
}

async fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, content_type)], body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every API path the page calls, as written in its `path` tagged templates, with each
    /// interpolation replaced by `{}`.
    fn paths_called_by_the_page() -> Vec<String> {
        let mut paths = Vec::new();
        for piece in SCRIPTS
            .iter()
            .flat_map(|(_, script)| script.split("path`").skip(1))
        {
            // Templates only: the file's comments name the tag too.
            let Some(template) = piece.split('`').next().filter(|t| t.starts_with("/v1/")) else {
                continue;
            };
            let mut rest = template.split('?').next().unwrap_or_default();
            let mut normalised = String::new();
            while let Some(start) = rest.find("${") {
                normalised.push_str(&rest[..start]);
                normalised.push_str("{}");
                rest = rest[start..]
                    .find('}')
                    .map_or("", |close| &rest[start + close + 1..]);
            }
            normalised.push_str(rest);
            paths.push(normalised);
        }
        paths
    }

    fn documented_paths() -> Vec<String> {
        let openapi: serde_json::Value =
            serde_json::from_str(crate::OPENAPI).unwrap_or(serde_json::Value::Null);
        let Some(paths) = openapi["paths"].as_object() else {
            return Vec::new();
        };
        paths
            .keys()
            .map(|path| {
                path.split('/')
                    .map(|segment| {
                        if segment.starts_with('{') {
                            "{}"
                        } else {
                            segment
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .collect()
    }

    #[test]
    fn the_page_calls_only_documented_api_paths() {
        let called = paths_called_by_the_page();
        let documented = documented_paths();
        assert!(
            called.len() >= 20,
            "found only {} calls: {called:?}",
            called.len()
        );
        assert!(
            documented.len() >= 40,
            "openapi.json lists {} paths",
            documented.len()
        );
        let unknown: Vec<_> = called.iter().filter(|p| !documented.contains(p)).collect();
        assert!(
            unknown.is_empty(),
            "the console calls undocumented paths: {unknown:?}"
        );
    }

    #[test]
    fn the_page_never_turns_strings_into_markup_or_code() {
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
            "setTimeout('",
            "localStorage",
            "sessionStorage",
            "document.cookie",
        ] {
            for (name, script) in SCRIPTS {
                assert!(!script.contains(sink), "{name} uses {sink}");
            }
        }
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        let html = INDEX_HTML.to_ascii_lowercase();
        assert!(html.contains("<script type=\"module\" src=\"/console/app.js\""));
        assert_eq!(
            html.matches("<script").count(),
            1,
            "one script, from a file"
        );
        assert!(!html.contains("<style"), "no inline style block");
        assert!(!html.contains("style="), "no style attribute");
        let inline_handler = html.split_whitespace().any(|word| {
            word.split_once('=').is_some_and(|(name, _)| {
                name.len() > 2
                    && name.starts_with("on")
                    && name.chars().all(|c| c.is_ascii_alphabetic())
            })
        });
        assert!(!inline_handler, "no inline event handler");
        assert!(!html.contains("javascript:"));
    }
}
