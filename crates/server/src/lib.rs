//! The HTTP service: a thin axum adapter over the [`Recognizer`].
//!
//! A request's audio decoding, features and CTC decoding run on tokio's
//! blocking pool, and the network on the [`Scheduler`]'s workers, which
//! batch requests that arrive together; never on the async workers, so
//! health checks and uploads keep flowing while the model computes. When
//! the scheduler's queue is full a request is refused at once with 503 and
//! `Retry-After`; a request that takes longer than the configured timeout
//! is dropped (its queued work with it) and answered 503.
//!
//! The model loads after the socket is bound: `/healthz` answers at once
//! and `/readyz` turns 200 when the model is in. `/metrics` is Prometheus'.
//!
//! Every request carries an ID (the caller's `x-request-id`, or a new one)
//! that comes back in the response and tags its log lines. On shutdown the
//! server stops accepting and lets in-flight requests finish, for at most
//! the drain timeout.

mod align;
mod connections;
mod error;
mod grpc;
mod limits;
pub mod metrics;
mod openai;
mod page;
pub mod scheduler;
mod streaming;
mod upload;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::metrics::{Held, Metrics};
use crate::scheduler::{Scheduler, SchedulerConfig};
pub use error::{ApiError, ErrorKind};
use hark_core::pipeline::Heard;
use hark_core::recognizer::{DecodeOptions, Decoding, Recognizer};
use hark_core::stream::StreamConfig;
use hark_core::transcript::{Segment, SegmentRules, Transcript};

/// Everything the service is configured with, read once at start-up.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Requests to every route but the health checks must carry
    /// `Authorization: Bearer <key>` when set.
    pub api_key: Option<String>,
    /// Larger request bodies are refused with 413.
    pub max_body_bytes: usize,
    /// A transcription not finished in this time is abandoned with 503.
    pub request_timeout: Duration,
    /// After the shutdown signal, in-flight requests get this long to finish.
    pub drain_timeout: Duration,
    /// Connections open at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// A request's headers must arrive within this, and a kept-alive
    /// connection that sends nothing for this long is closed; a body gets
    /// it as grace before [`Self::min_body_rate`] counts.
    pub read_timeout: Duration,
    /// Bytes per second a request body must average after the grace.
    pub min_body_rate: f64,
    /// Request bodies and their decoded audio held in memory at once, over
    /// all connections.
    pub max_body_memory_bytes: usize,
    /// Live streams open at once, and from one client address.
    pub max_streams: usize,
    pub max_streams_per_client: usize,
    /// A live stream that sends no audio for this long is closed.
    pub stream_idle_timeout: Duration,
    /// The largest WebSocket message; larger ones close the stream with 1009.
    pub max_stream_message_bytes: usize,
    pub scheduler: SchedulerConfig,
    /// When live streams give partial and final results.
    pub stream: StreamConfig,
    /// Where the gRPC API listens; None serves HTTP only.
    pub grpc_addr: Option<SocketAddr>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            api_key: None,
            max_body_bytes: 25 * 1024 * 1024,
            request_timeout: Duration::from_secs(120),
            drain_timeout: Duration::from_secs(25),
            max_connections: 1024,
            read_timeout: Duration::from_secs(10),
            min_body_rate: 1024.0,
            max_body_memory_bytes: 256 * 1024 * 1024,
            max_streams: 256,
            max_streams_per_client: 16,
            stream_idle_timeout: Duration::from_secs(30),
            max_stream_message_bytes: 1024 * 1024,
            scheduler: SchedulerConfig::default(),
            stream: StreamConfig::default(),
            grpc_addr: None,
        }
    }
}

/// The loaded model and the scheduler in front of it.
struct Ready {
    recognizer: Arc<Recognizer>,
    scheduler: Scheduler,
}

/// Shared by all handlers.
struct AppState {
    config: ServerConfig,
    metrics: Arc<Metrics>,
    /// Set once the model has loaded; empty means not ready.
    ready: OnceLock<Ready>,
    /// The gRPC health service's statuses.
    health: tonic_health::server::HealthReporter,
    body_limits: limits::BodyLimits,
    streams: streaming::StreamSlots,
    /// Decodings of audio whose length is unknown until decoded.
    decode_slots: tokio::sync::Semaphore,
    /// Turns true when the server starts shutting down.
    stopping: tokio::sync::watch::Sender<bool>,
}

type SharedState = Arc<AppState>;

impl AppState {
    fn ready(&self) -> Result<&Ready, ApiError> {
        self.ready.get().ok_or_else(ApiError::not_ready)
    }

    fn recognizer(&self) -> Result<Arc<Recognizer>, ApiError> {
        self.ready().map(|ready| ready.recognizer.clone())
    }
}

/// A bound server whose model may still be loading.
pub struct Server {
    listener: TcpListener,
    grpc: Option<(TcpListener, tonic::service::Routes)>,
    state: SharedState,
}

impl Server {
    /// Binds the HTTP API to `addr`, and the gRPC API to `config.grpc_addr`
    /// when set.
    pub async fn bind(addr: SocketAddr, config: ServerConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let grpc_listener = match config.grpc_addr {
            Some(grpc_addr) => Some(TcpListener::bind(grpc_addr).await?),
            None => None,
        };
        let (health, health_service) = grpc::health().await;
        let body_limits =
            limits::BodyLimits::new(config.max_body_bytes, config.max_body_memory_bytes, config.read_timeout, config.min_body_rate);
        let streams = streaming::StreamSlots::new(config.max_streams, config.max_streams_per_client);
        let state = Arc::new(AppState {
            config,
            metrics: Arc::new(Metrics::new()),
            ready: OnceLock::new(),
            health,
            body_limits,
            streams,
            decode_slots: tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())),
            stopping: tokio::sync::watch::Sender::new(false),
        });
        let grpc = grpc_listener.map(|listener| (listener, grpc::routes(state.clone(), health_service)));
        Ok(Self { listener, grpc, state })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Where the gRPC API listens, when it is served.
    pub fn grpc_local_addr(&self) -> Option<std::io::Result<SocketAddr>> {
        self.grpc.as_ref().map(|(listener, _)| listener.local_addr())
    }

    /// Makes the service ready: requests are answered with this model from now on.
    pub fn readiness(&self) -> Readiness {
        Readiness(self.state.clone())
    }

    /// Serves until `shutdown` completes, then stops accepting and returns
    /// once the requests in flight are answered, or when the drain timeout
    /// runs out, whichever is first.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let (config, metrics) = (&self.state.config, self.state.metrics.clone());
        let (drain_timeout, in_flight) = (config.drain_timeout, metrics.requests_in_flight.clone());
        let listener = connections::LimitedListener::new(self.listener, config.max_connections, metrics.connections.clone());
        let (draining, drain_started) = tokio::sync::oneshot::channel();
        let (stop, mut stopping) = (self.state.stopping.clone(), self.state.stopping.subscribe());
        let signal = async move {
            shutdown.await;
            tracing::info!(
                in_flight = in_flight.get(),
                drain_timeout_s = drain_timeout.as_secs_f64(),
                "shutting down: no new connections; finishing the requests in flight"
            );
            let _ = stop.send(true);
            let _ = draining.send(());
        };
        let grpc = self.grpc.map(|(listener, routes)| {
            grpc::serve(listener, routes, async move {
                let _ = stopping.wait_for(|stop| *stop).await;
            })
        });
        let http = connections::serve(listener, router(self.state.clone()), config.read_timeout, signal);
        let streams = &self.state.streams;
        let serving = async move {
            match grpc {
                Some(grpc) => tokio::try_join!(http, async { grpc.await.map_err(std::io::Error::other) }).map(|((), ())| ())?,
                None => http.await?,
            }
            // Live streams outlive their upgraded connections: each sends
            // its last final and closes with 1001 once it sees the stop.
            streams.all_closed().await;
            Ok(())
        };
        let deadline = async {
            match drain_started.await {
                Ok(()) => tokio::time::sleep(drain_timeout).await,
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            result = serving => result,
            () = deadline => {
                tracing::warn!(unfinished = metrics.requests_in_flight.get(), "drain timeout: exiting with requests unfinished");
                Ok(())
            }
        }
    }
}

/// The handle that installs the loaded model.
#[derive(Clone)]
pub struct Readiness(SharedState);

impl Readiness {
    /// Starts the inference workers on this model and opens the API.
    pub fn set(&self, recognizer: Arc<Recognizer>) {
        let state = &self.0;
        let scheduler = Scheduler::new(recognizer.shared_model(), state.config.scheduler.clone(), state.metrics.clone());
        let _ = state.ready.set(Ready { recognizer, scheduler });
        // Called on the runtime (its blocking pool included).
        let state = state.clone();
        tokio::spawn(async move { grpc::set_serving(&state.health).await });
    }
}

fn router(state: SharedState) -> Router {
    let api = Router::new()
        .route("/v1/transcribe", post(transcribe))
        .route("/v1/align", post(align::align))
        .route("/v1/audio/transcriptions", post(openai::transcriptions))
        .route("/v1/models", get(models))
        .route("/v1/stream", get(streaming::websocket))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), limits::guard_body))
        .layer(middleware::from_fn_with_state(state.clone(), require_api_key));
    Router::new()
        .route("/", get(page::page))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(api)
        .fallback(|| async { ApiError::new(ErrorKind::NotFound, "not_found", "no such route") })
        .method_not_allowed_fallback(|request: Request| async move {
            ApiError::new(
                ErrorKind::MethodNotAllowed,
                "method_not_allowed",
                format!("{} is not served on {}", request.method(), request.uri().path()),
            )
        })
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The caller's request ID when it is one a log line can carry: 1 to 128
/// visible ASCII characters.
fn caller_request_id(value: &HeaderValue) -> Option<String> {
    let id = value.to_str().ok()?;
    (!id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic())).then(|| id.to_string())
}

/// Gives every request its ID, runs it inside a tracing span that carries
/// the ID, logs its outcome, counts it by route and status, and times it.
async fn observe(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request.headers().get(&REQUEST_ID).and_then(caller_request_id).unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_string();
    let span = tracing::info_span!("request", request_id = %id, method = %request.method(), route = %route);
    let in_flight = Held::new(&state.metrics.requests_in_flight);
    let mut response = next.run(request).instrument(span.clone()).await;
    drop(in_flight);
    let (status, elapsed_s) = (response.status(), started.elapsed().as_secs_f64());
    let metrics = &state.metrics;
    metrics.requests.with_label_values(&[route.as_str(), status.as_str()]).inc();
    metrics.request_seconds.with_label_values(&[route.as_str()]).observe(elapsed_s);
    span.in_scope(|| {
        let ms = (elapsed_s * 1000.0).round() as u64;
        // Probes and scrapes come every few seconds: only worth a line when debugging.
        if matches!(route.as_str(), "/healthz" | "/readyz" | "/metrics") {
            tracing::debug!(status = status.as_u16(), ms, "answered");
        } else if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), ms, "answered");
        } else {
            tracing::info!(status = status.as_u16(), ms, "answered");
        }
    });
    response.headers_mut().insert(REQUEST_ID.clone(), HeaderValue::from_str(&id).expect("request IDs are visible ASCII"));
    response
}

async fn metrics(State(state): State<SharedState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

/// Whether an `Authorization` value is `Bearer <key>`.
fn presents_key(authorization: Option<&[u8]>, key: &str) -> bool {
    authorization.and_then(|v| v.strip_prefix(b"Bearer ")).is_some_and(|presented| is_key(presented, key))
}

/// Whether `presented` is the key, compared in time that does not depend
/// on where it differs, so the key cannot be found byte by byte from
/// response times.
fn is_key(presented: &[u8], key: &str) -> bool {
    let key = key.as_bytes();
    presented.len() == key.len() && std::hint::black_box(presented.iter().zip(key).fold(0u8, |differ, (a, b)| differ | (a ^ b))) == 0
}

/// Browsers cannot set headers on a WebSocket: a live stream may carry
/// its key as the query parameter `access_token` instead (RFC 6750 §2.3).
/// Query strings are not logged.
fn stream_access_token(request: &Request) -> Option<std::borrow::Cow<'_, str>> {
    if request.uri().path() != "/v1/stream" {
        return None;
    }
    let query = request.uri().query()?;
    form_urlencoded::parse(query.as_bytes()).find(|(name, _)| name == "access_token").map(|(_, token)| token)
}

async fn require_api_key(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    if let Some(key) = &state.config.api_key {
        let presented = match request.headers().get(header::AUTHORIZATION) {
            Some(authorization) => presents_key(Some(authorization.as_bytes()), key),
            None => stream_access_token(&request).is_some_and(|token| is_key(token.as_bytes(), key)),
        };
        if !presented {
            return ApiError::new(
                ErrorKind::Unauthenticated,
                "unauthorized",
                "missing or wrong API key: send 'Authorization: Bearer <key>' (a WebSocket may send '?access_token=<key>')",
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

/// Recognizes one upload: audio, cutting at pauses and features on the
/// blocking pool, the network through the scheduler ([`hear`]), CTC
/// decoding on the blocking pool again; all within the request timeout.
async fn recognize(state: &AppState, audio: axum::body::Bytes, options: &DecodeOptions) -> Result<(Transcript, Arc<Recognizer>), ApiError> {
    let started = Instant::now();
    let recognizer = state.recognizer()?;
    // Hotwords can be long (an OpenAI `prompt` becomes hotwords): built off
    // the async workers.
    let (worker, options) = (recognizer.clone(), options.clone());
    let decoding = Arc::new(blocking(move || worker.decoding(&options)).await??);
    let work = async { transcript(&recognizer, hear(state, &recognizer, audio).await?, decoding).await };
    let transcript = in_time(state, work).await?;
    state.metrics.audio_seconds.inc_by(transcript.duration_s);
    if transcript.duration_s > 0.0 {
        state.metrics.real_time_factor.observe(started.elapsed().as_secs_f64() / transcript.duration_s);
    }
    Ok((transcript, recognizer))
}

/// A request's work, cut off at the request timeout.
async fn in_time<T>(state: &AppState, work: impl std::future::Future<Output = Result<T, ApiError>>) -> Result<T, ApiError> {
    let timeout = state.config.request_timeout;
    tokio::time::timeout(timeout, work).await.map_err(|_| ApiError::timed_out(timeout))?
}

/// One upload through the network: its audio decoded, cut at pauses and
/// each piece's features computed on the blocking pool, then the pieces
/// through the scheduler, batched with other requests.
async fn hear(state: &AppState, recognizer: &Arc<Recognizer>, audio: axum::body::Bytes) -> Result<Heard, ApiError> {
    let scheduler = &state.ready()?.scheduler;
    // When the header states the duration, the request is admitted (or
    // refused) before any decoding. Audio of unknown length is decoded
    // first, a few files at a time, so a flood of small files that unpack
    // into hours cannot take every core from the requests that were
    // admitted.
    let (worker, header) = (recognizer.clone(), audio.clone());
    let stated_s = blocking(move || worker.header_duration_s(&header)).await??;
    let early = stated_s.map(|duration_s| scheduler.admit(duration_s)).transpose()?;
    // Room for the samples and features, taken before they exist.
    let _memory = state.body_limits.reserve_decoded(recognizer.working_bytes(stated_s)).await?;
    let _decoding = match early {
        Some(_) => None,
        None => Some(state.decode_slots.acquire().await.expect("the semaphore is never closed")),
    };
    let worker = recognizer.clone();
    let cut = blocking(move || Ok::<_, ApiError>(worker.cut(&worker.read_audio(&audio)?))).await??;
    // A header that misstated the length is not taken at its word.
    let admission = match (early, stated_s) {
        (Some(admission), Some(stated_s)) if (cut.duration_s() - stated_s).abs() <= 1.0 => admission,
        (early, _) => {
            drop(early);
            scheduler.admit(cut.duration_s())?
        }
    };
    Ok(admission.hear(cut).await?)
}

/// The transcript of what the network heard, decoded and written on the
/// blocking pool.
async fn transcript(recognizer: &Arc<Recognizer>, heard: Heard, decoding: Arc<Decoding>) -> Result<Transcript, ApiError> {
    let worker = recognizer.clone();
    blocking(move || worker.transcript(heard, &decoding)).await
}

/// Runs request work on the blocking pool. A panic there is a bug: it is
/// logged with its text, and the client gets a 500 that does not leak it.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        let panic = e.try_into_panic().ok();
        let text =
            panic.as_deref().and_then(|p| p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned()));
        tracing::error!(panic = text.as_deref().unwrap_or("(cancelled)"), "request work failed");
        ApiError::new(ErrorKind::Internal, "internal_error", "the server failed on this request; its request ID is in the logs")
    })
}

/// `POST /v1/transcribe`: the WAV as the raw body or as multipart field
/// `file`; decoding options in the query string.
async fn transcribe(State(state): State<SharedState>, request: Request) -> Result<Json<TranscribeResponse>, ApiError> {
    let options = decode_options(request.uri().query().unwrap_or_default())?;
    state.ready()?.scheduler.check_capacity()?;
    let upload = upload::read(request, true, &state.body_limits).await?;
    let (transcript, recognizer) = recognize(&state, upload.audio, &options).await?;
    let segments = transcript.segments(SegmentRules::default());
    Ok(Json(TranscribeResponse { transcript, segments, model: recognizer.model().config().name.clone() }))
}

/// The body of a `/v1/transcribe` answer: the transcript's fields, its
/// segments and the model that heard it.
#[derive(Serialize)]
struct TranscribeResponse {
    #[serde(flatten)]
    transcript: Transcript,
    segments: Vec<Segment>,
    model: String,
}

/// Entry points for the fuzz targets in `fuzz/`, built only there.
#[cfg(fuzzing)]
pub mod fuzzing {
    /// Reads an upload (raw or multipart) from a body with this Content-Type.
    pub fn read_upload(content_type: &str, body: Vec<u8>) {
        let request = axum::http::Request::builder()
            .header(axum::http::header::CONTENT_TYPE, content_type)
            .body(axum::body::Body::from(body))
            .expect("a valid request");
        let limits = super::limits::BodyLimits::new(1 << 20, 1 << 24, super::Duration::from_secs(10), 1024.0);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime");
        let _ = runtime.block_on(super::upload::read(request, true, &limits));
    }
}

#[cfg(test)]
mod tests {
    use super::presents_key;

    #[test]
    fn only_the_exact_bearer_key_is_accepted() {
        assert!(presents_key(Some(b"Bearer s3cret"), "s3cret"));
        for wrong in [&b"Bearer s3cres"[..], b"Bearer s3cret ", b"Bearer s3cre", b"bearer s3cret", b"s3cret", b"Bearer "] {
            assert!(!presents_key(Some(wrong), "s3cret"), "{}", String::from_utf8_lossy(wrong));
        }
        assert!(!presents_key(None, "s3cret"));
    }
}
