//! The HTTP service: a thin axum adapter over the [`Recognizer`].
//!
//! Inference runs on tokio's blocking pool, never on the async workers, so
//! health checks and uploads keep flowing while the model computes. The
//! model loads after the socket is bound: `/healthz` answers at once and
//! `/readyz` turns 200 when the model is in.

mod error;
mod openai;
mod upload;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;

use crate::recognizer::{DecodeOptions, Recognizer};
use crate::transcript::Transcript;
pub use error::ApiError;

/// Everything the service is configured with, read once at start-up.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Requests to every route but the health checks must carry
    /// `Authorization: Bearer <key>` when set.
    pub api_key: Option<String>,
    /// Larger request bodies are refused with 413.
    pub max_body_bytes: usize,
}

/// Shared by all handlers.
struct AppState {
    config: ServerConfig,
    /// Set once the model has loaded; empty means not ready.
    recognizer: OnceLock<Arc<Recognizer>>,
}

type SharedState = Arc<AppState>;

impl AppState {
    fn recognizer(&self) -> Result<Arc<Recognizer>, ApiError> {
        self.recognizer.get().cloned().ok_or_else(ApiError::not_ready)
    }
}

/// A bound server whose model may still be loading.
pub struct Server {
    listener: TcpListener,
    state: SharedState,
}

impl Server {
    pub async fn bind(addr: SocketAddr, config: ServerConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Self {
            listener,
            state: Arc::new(AppState { config, recognizer: OnceLock::new() }),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Makes the service ready: requests are answered with this model from now on.
    pub fn readiness(&self) -> Readiness {
        Readiness(self.state.clone())
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        axum::serve(self.listener, router(self.state)).with_graceful_shutdown(shutdown).await
    }
}

/// The handle that installs the loaded model.
#[derive(Clone)]
pub struct Readiness(SharedState);

impl Readiness {
    pub fn set(&self, recognizer: Arc<Recognizer>) {
        let _ = self.0.recognizer.set(recognizer);
    }
}

fn router(state: SharedState) -> Router {
    let api = Router::new()
        .route("/v1/transcribe", post(transcribe))
        .route("/v1/audio/transcriptions", post(openai::transcriptions))
        .route("/v1/models", get(models))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), require_api_key));
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .merge(api)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .with_state(state)
}

async fn require_api_key(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    if let Some(key) = &state.config.api_key {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if presented != Some(key.as_str()) {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or wrong API key: send 'Authorization: Bearer <key>'",
            )
            .into_response();
        }
    }
    next.run(request).await
}

async fn readyz(State(state): State<SharedState>) -> Result<Json<serde_json::Value>, ApiError> {
    let recognizer = state.recognizer()?;
    Ok(Json(json!({"status": "ready", "model": recognizer.model().config().name})))
}

async fn models(State(state): State<SharedState>) -> Result<Json<serde_json::Value>, ApiError> {
    let recognizer = state.recognizer()?;
    let config = recognizer.model().config();
    Ok(Json(json!({
        "object": "list",
        "data": [{
            "id": config.name,
            "object": "model",
            "owned_by": "hark",
            "parameters": recognizer.model().num_parameters(),
            "layers": config.layers,
            "hidden": config.hidden,
        }]
    })))
}

/// Decoding options from a URL-encoded string (a query string, or form
/// fields encoded as one), typed by the same rules everywhere.
fn decode_options(encoded: &str) -> Result<DecodeOptions, ApiError> {
    let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(encoded.as_bytes()));
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let message = match e.path().to_string().as_str() {
            "." => e.inner().to_string(),
            field => format!("{field}: {}", e.inner()),
        };
        ApiError::bad_request("invalid_decoder_options", message)
    })
}

/// Runs the recognizer on the blocking pool.
async fn recognize(
    state: &AppState,
    audio: axum::body::Bytes,
    options: &DecodeOptions,
) -> Result<(Transcript, Arc<Recognizer>), ApiError> {
    let recognizer = state.recognizer()?;
    let decoder = recognizer.decoder(options)?;
    let worker = recognizer.clone();
    let transcript = tokio::task::spawn_blocking(move || worker.transcribe_wav(&audio, decoder.as_ref()))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "inference_failed", e.to_string()))??;
    Ok((transcript, recognizer))
}

/// `POST /v1/transcribe`: the WAV as the raw body or as multipart field
/// `file`; decoding options in the query string.
async fn transcribe(State(state): State<SharedState>, request: Request) -> Result<Json<serde_json::Value>, ApiError> {
    let options = decode_options(request.uri().query().unwrap_or_default())?;
    let upload = upload::read(request, true, state.config.max_body_bytes).await?;
    let (transcript, recognizer) = recognize(&state, upload.audio, &options).await?;
    let mut body = serde_json::to_value(&transcript).expect("transcripts serialize");
    body["model"] = json!(recognizer.model().config().name);
    Ok(Json(body))
}
