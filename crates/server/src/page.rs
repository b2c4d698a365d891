//! `GET /`: a page to try the service from a browser — drop a file and see
//! its words follow playback, or speak and watch partials settle into
//! finals. One self-contained HTML file embedded in the binary (no CDN, no
//! build step); it calls the same public API as any client, with the API
//! key it asks for when the server answers 401.

use axum::http::header;
use axum::response::{Html, IntoResponse};

const PAGE: &str = include_str!("../page/index.html");

/// Scripts, styles and media only from the page itself (the microphone's
/// AudioWorklet is loaded from a `blob:` URL, the played file too).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'unsafe-inline' blob:; style-src 'unsafe-inline'; \
     media-src 'self' blob:; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

pub(super) async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        Html(PAGE),
    )
}
