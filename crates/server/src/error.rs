//! The one place where failures become HTTP status codes and JSON bodies:
//! `{"error": {"code": "...", "message": "..."}}`. Errors arrive with an
//! [`ErrorKind`] and a stable code (hark-core's errors through [`Coded`]);
//! the kind alone decides the status here, as it decides the gRPC code and
//! the WebSocket close code in their adapters.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use hark_core::align::AlignError;
pub use hark_core::error::{Coded, ErrorKind};
use hark_core::recognizer::{DecodeOptionsError, RecognizeError};
use hark_core::stream::StreamError;

use crate::scheduler::SchedulerError;

/// An error a handler returns: its kind, a stable machine-readable code and
/// a message a caller can act on.
#[derive(Debug)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub code: &'static str,
    pub message: String,
    /// Sent as `Retry-After` with 503s.
    pub retry_after_s: u64,
}

impl ApiError {
    pub fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        Self { kind, code, message: message.into(), retry_after_s: 1 }
    }

    pub fn timed_out(limit: std::time::Duration) -> Self {
        Self::new(
            ErrorKind::DeadlineExceeded,
            "timeout",
            format!("the transcription took longer than the server's {:.1} s limit; retry, or send shorter audio", limit.as_secs_f64()),
        )
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, code, message)
    }

    pub fn body_too_large(limit_bytes: usize) -> Self {
        Self::new(ErrorKind::TooLarge, "body_too_large", format!("the request body is over the {limit_bytes}-byte limit"))
    }

    pub fn not_ready() -> Self {
        Self::new(ErrorKind::Unavailable, "not_ready", "the model is still loading; retry shortly")
    }

    fn coded(e: &impl Coded) -> Self {
        Self::new(e.kind(), e.code(), e.to_string())
    }

    /// The HTTP status of each kind.
    pub fn status(&self) -> StatusCode {
        match self.kind {
            ErrorKind::Invalid => StatusCode::BAD_REQUEST,
            ErrorKind::Unsupported => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::ClientTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Unavailable | ErrorKind::DeadlineExceeded => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<RecognizeError> for ApiError {
    fn from(e: RecognizeError) -> Self {
        Self::coded(&e)
    }
}

impl From<AlignError> for ApiError {
    fn from(e: AlignError) -> Self {
        Self::coded(&e)
    }
}

impl From<DecodeOptionsError> for ApiError {
    fn from(e: DecodeOptionsError) -> Self {
        Self::coded(&e)
    }
}

impl From<StreamError> for ApiError {
    fn from(e: StreamError) -> Self {
        Self::coded(&e)
    }
}

impl From<SchedulerError> for ApiError {
    fn from(e: SchedulerError) -> Self {
        let retry_after_s = match e {
            SchedulerError::Overloaded { retry_after_s, .. } => retry_after_s,
            SchedulerError::Stopped => 1,
        };
        Self { retry_after_s, ..Self::coded(&e) }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if self.kind == ErrorKind::Internal {
            tracing::error!(code = self.code, message = %self.message, "request failed");
        }
        let body = Json(json!({"error": {"code": self.code, "message": self.message}}));
        let mut response = (status, body).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(self.retry_after_s));
        }
        response
    }
}
