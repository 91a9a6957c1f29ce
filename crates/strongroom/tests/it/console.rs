//! The web console: served by the real binary over HTTPS, confined by its headers, and a client of
//! the same API (its own checks, that it calls only documented paths and never turns strings into
//! markup, are unit tests of the server crate).

use reqwest::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION};

use crate::kit::*;

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header"))
}

#[tokio::test]
async fn the_console_is_served_confined_and_without_a_session() {
    let server = Server::start();
    let client = server.http_client();

    let page = client.get(server.url("/console/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(
        header(&page, CONTENT_TYPE.as_str()),
        "text/html; charset=utf-8"
    );
    let policy = header(&page, CONTENT_SECURITY_POLICY.as_str()).to_owned();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'none'",
        "require-trusted-types-for 'script'",
    ] {
        assert!(
            policy.contains(directive),
            "{directive} missing from {policy}"
        );
    }
    assert!(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"));
    assert_eq!(header(&page, "x-frame-options"), "DENY");
    assert_eq!(header(&page, "x-content-type-options"), "nosniff");
    assert_eq!(header(&page, "referrer-policy"), "no-referrer");
    assert_eq!(header(&page, "cache-control"), "no-store");
    assert!(!header(&page, "request-id").is_empty());
    let html = page.text().await.unwrap();
    assert!(html.contains("<script type=\"module\" src=\"/console/app.js\""));

    for (path, kind) in [
        ("/console/app.js", "text/javascript; charset=utf-8"),
        ("/console/api.js", "text/javascript; charset=utf-8"),
        ("/console/dom.js", "text/javascript; charset=utf-8"),
        ("/console/cases.js", "text/javascript; charset=utf-8"),
        ("/console/exports.js", "text/javascript; charset=utf-8"),
        ("/console/audit.js", "text/javascript; charset=utf-8"),
        ("/console/admin.js", "text/javascript; charset=utf-8"),
        ("/console/app.css", "text/css; charset=utf-8"),
    ] {
        let asset = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(asset.status(), 200, "{path}");
        assert_eq!(header(&asset, CONTENT_TYPE.as_str()), kind, "{path}");
        assert_eq!(
            header(&asset, "x-content-type-options"),
            "nosniff",
            "{path}"
        );
        assert!(
            asset.text().await.unwrap().len() > 1_000,
            "{path} is nearly empty"
        );
    }

    // The root and the bare name lead to the console; anything else under it is the API's 404.
    let no_redirects = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(server.cert_pem()).unwrap()])
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in ["/", "/console"] {
        let r = no_redirects.get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 303, "{path}");
        assert_eq!(header(&r, LOCATION.as_str()), "/console/", "{path}");
    }
    server
        .anon()
        .get("/console/secrets.js")
        .await
        .err(404, "not_found");

    // The API keeps its own answers: JSON, never cached, never sniffed, no console policy needed.
    let api = client.get(server.url("/v1/me")).send().await.unwrap();
    assert_eq!(api.status(), 401);
    assert_eq!(header(&api, "x-content-type-options"), "nosniff");
    assert_eq!(header(&api, "cache-control"), "no-store");
}
