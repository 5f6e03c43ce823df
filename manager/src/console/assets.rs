//! The console's files, built into the binary: no CDN, nothing fetched at run time.

use axum::http::header;
use axum::response::IntoResponse;

/// The page: everything else is the bundle's doing.
const INDEX: &str = include_str!("../../../console/static/index.html");
/// The style sheet.
const STYLE: &str = include_str!("../../../console/static/style.css");
/// `console/dist/console.js` (see build.rs).
const BUNDLE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/console.js"));

/// Scripts and styles from this origin only, no inline code, connections to this origin and
/// to WebSocket listeners (the nodes), never framed: a script injected into an alert field
/// would not run.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    connect-src 'self' wss:; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; \
    form-action 'none'";

fn headers(content_type: &'static str) -> [(header::HeaderName, &'static str); 5] {
    [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-cache"),
    ]
}

pub(super) async fn index() -> impl IntoResponse {
    (headers("text/html; charset=utf-8"), INDEX)
}

pub(super) async fn style() -> impl IntoResponse {
    (headers("text/css; charset=utf-8"), STYLE)
}

pub(super) async fn bundle() -> impl IntoResponse {
    (headers("text/javascript; charset=utf-8"), BUNDLE)
}
