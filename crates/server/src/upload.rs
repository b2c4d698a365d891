//! Reading the audio out of a request: a raw body or a multipart form whose
//! `file` field holds it, with the other form fields kept as text.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header::CONTENT_TYPE;

use super::error::ApiError;
use super::limits::{BodyLimits, BodyWatch};

/// The audio bytes of a request and any other form fields.
#[derive(Debug, Default)]
pub struct Upload {
    pub audio: Bytes,
    /// Form fields other than `file`; a field sent twice keeps both values.
    pub fields: HashMap<String, Vec<String>>,
}

impl Upload {
    /// The last value of a field, as forms usually mean it.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(|v| v.last()).map(String::as_str)
    }
}

fn is_multipart(request: &Request) -> bool {
    request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"))
}

/// Reads the request: multipart with a `file` field, or (when `allow_raw`)
/// the body itself as the audio.
pub async fn read(request: Request, allow_raw: bool, limits: &BodyLimits) -> Result<Upload, ApiError> {
    let watch = request.extensions().get::<std::sync::Arc<BodyWatch>>().cloned();
    read_body(request, allow_raw, limits).await.map_err(|e| watch.and_then(|w| w.error(limits)).unwrap_or(e))
}

async fn read_body(request: Request, allow_raw: bool, limits: &BodyLimits) -> Result<Upload, ApiError> {
    if !is_multipart(&request) {
        if !allow_raw {
            return Err(ApiError::bad_request("missing_file", "send a multipart/form-data body with the audio in the field 'file'"));
        }
        let audio = Bytes::from_request(request, &()).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                limits.too_large()
            } else {
                ApiError::bad_request("unreadable_body", e.body_text())
            }
        })?;
        return Ok(Upload { audio, fields: HashMap::new() });
    }
    let multipart_error = |e: axum::extract::multipart::MultipartError| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            limits.too_large()
        } else {
            ApiError::bad_request("malformed_multipart", e.body_text())
        }
    };
    let mut multipart =
        Multipart::from_request(request, &()).await.map_err(|e| ApiError::bad_request("malformed_multipart", e.body_text()))?;
    let mut upload = Upload::default();
    let mut found_file = false;
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            upload.audio = field.bytes().await.map_err(multipart_error)?;
            found_file = true;
        } else {
            let value = field.text().await.map_err(multipart_error)?;
            upload.fields.entry(name).or_default().push(value);
        }
    }
    if !found_file {
        return Err(ApiError::bad_request("missing_file", "the multipart form has no 'file' field holding the audio"));
    }
    Ok(upload)
}
