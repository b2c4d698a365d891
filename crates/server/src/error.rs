//! The one place where failures become HTTP status codes and JSON bodies:
//! `{"error": {"code": "...", "message": "..."}}`.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::scheduler::SchedulerError;
use hark_core::audio::AudioError;
use hark_core::recognizer::{DecodeOptionsError, RecognizeError};

/// An error a handler returns: a status, a stable machine-readable code and
/// a message a caller can act on.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Sent as `Retry-After` with 503s.
    pub retry_after_s: u64,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after_s: 1 }
    }

    pub fn timed_out(limit: std::time::Duration) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!("the transcription took longer than the server's {:.1} s limit; retry, or send shorter audio", limit.as_secs_f64()),
        )
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn body_too_large(limit_bytes: usize) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", format!("the request body is over the {limit_bytes}-byte limit"))
    }

    pub fn not_ready() -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", "the model is still loading; retry shortly")
    }
}

impl From<RecognizeError> for ApiError {
    fn from(e: RecognizeError) -> Self {
        let message = e.to_string();
        let (status, code) = match e {
            RecognizeError::Audio(audio) => match audio {
                AudioError::UnknownFormat { .. } => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_format"),
                AudioError::UnsupportedCodec { .. } => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_codec"),
                AudioError::UnsupportedSampleRate { .. } => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_sample_rate"),
                AudioError::Truncated { .. } => (StatusCode::BAD_REQUEST, "truncated_audio"),
                AudioError::Malformed { .. } => (StatusCode::BAD_REQUEST, "malformed_audio"),
                AudioError::NoSamples { .. } | AudioError::Empty => (StatusCode::UNPROCESSABLE_ENTITY, "no_samples"),
                AudioError::TooLong { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "audio_too_long"),
                AudioError::NonFiniteSample { .. } => (StatusCode::BAD_REQUEST, "invalid_samples"),
                AudioError::TooManyChannels { .. } => (StatusCode::BAD_REQUEST, "too_many_channels"),
            },
        };
        Self::new(status, code, message)
    }
}

impl From<SchedulerError> for ApiError {
    fn from(e: SchedulerError) -> Self {
        let message = e.to_string();
        match e {
            SchedulerError::Overloaded { retry_after_s, .. } => {
                Self { retry_after_s, ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", message) }
            }
            SchedulerError::Stopped => Self::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", message),
        }
    }
}

impl From<DecodeOptionsError> for ApiError {
    fn from(e: DecodeOptionsError) -> Self {
        let code = match e {
            DecodeOptionsError::Hotwords(_) => "invalid_hotwords",
            _ => "invalid_decoder_options",
        };
        Self::bad_request(code, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() && self.status != StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(code = self.code, message = %self.message, "request failed");
        }
        let body = Json(json!({"error": {"code": self.code, "message": self.message}}));
        let mut response = (self.status, body).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(self.retry_after_s));
        }
        response
    }
}
