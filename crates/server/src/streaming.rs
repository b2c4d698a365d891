//! Live streams, for both transports: WebSocket `GET /v1/stream` here, and
//! gRPC `StreamingRecognize` ([`super::grpc`]).
//!
//! A transport feeds PCM16 chunks into [`spawn`]'s audio channel and sends
//! on what comes out of its results channel. In between, one task per
//! stream cuts the audio into utterances ([`Stream`]) and recognizes them
//! one after the other through the same scheduler as uploads, so streams
//! and uploads are batched together. When the stream falls behind, a
//! partial result that a newer one would replace is skipped; finals never
//! are, and no more audio is read while one waits. A partial refused
//! because the server is full is skipped too; a final refused ends the
//! stream with the error.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::response::Response;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::json;
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::{blocking, decode_options, transcript, ApiError, AppState, ErrorKind, Ready, SharedState};
use hark_core::audio::Container;
use hark_core::pipeline::Cut;
use hark_core::recognizer::{DecodeOptions, Decoding};
use hark_core::stream::{ResultKind, Stream, StreamFormat, Utterance};
use hark_core::transcript::{serialize_ms, Token, Transcript, Word};

/// Audio chunks in flight between a transport and its stream's task.
const AUDIO_CHANNEL: usize = 64;

/// Where a transport sends a stream's PCM16 chunks (or its client's
/// protocol error); dropping it ends the stream.
pub(super) type AudioSender = mpsc::Sender<Result<Bytes, ApiError>>;

/// Where a stream's results come out; it ends after the last final. It
/// holds a share of the stream's place: at shutdown the server waits for
/// every place to come back, so the transport must have sent its last
/// result and closed before its stream counts as ended.
pub(super) struct ResultReceiver {
    results: mpsc::Receiver<Result<StreamResult, ApiError>>,
    _slot: Arc<StreamSlot>,
}

impl ResultReceiver {
    pub(super) async fn recv(&mut self) -> Option<Result<StreamResult, ApiError>> {
        self.results.recv().await
    }

    /// The results as a `Stream`, for transports built on one.
    pub(super) fn into_stream(self) -> impl futures_util::Stream<Item = Result<StreamResult, ApiError>> {
        futures_util::stream::unfold(self, |mut results| async move { results.recv().await.map(|result| (result, results)) })
    }
}

/// One partial or final result, with words at times in the stream.
#[derive(Debug, Serialize)]
pub(super) struct StreamResult {
    #[serde(rename = "type")]
    pub kind: ResultKind,
    pub text: String,
    pub words: Vec<Word>,
    /// A final's written text, token by token.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<Token>,
    /// The utterance's span in the stream, in seconds.
    #[serde(rename = "start", serialize_with = "serialize_ms")]
    pub start_s: f64,
    #[serde(rename = "end", serialize_with = "serialize_ms")]
    pub end_s: f64,
}

/// The WebSocket close code of each kind of error: too large, data of a
/// kind the server does not take (another codec), try again later, the
/// client's fault, or the server's.
fn close_code(kind: ErrorKind) -> u16 {
    match kind {
        ErrorKind::TooLarge => 1009,
        ErrorKind::Unsupported => 1003,
        ErrorKind::Unavailable | ErrorKind::DeadlineExceeded => 1013,
        ErrorKind::Internal => 1011,
        _ => 1008,
    }
}

/// Places for live streams: a bound on all of them and on those of one
/// client address, so that one client cannot hold every stream the
/// service can run.
pub(super) struct StreamSlots {
    open: Arc<Semaphore>,
    limit: usize,
    per_client: usize,
    by_client: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One stream's place, given back when the stream's task has ended and its
/// transport has delivered the results.
pub(super) struct StreamSlot {
    _open: OwnedSemaphorePermit,
    client: Option<IpAddr>,
    by_client: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl StreamSlots {
    pub(super) fn new(limit: usize, per_client: usize) -> Self {
        Self { open: Arc::new(Semaphore::new(limit)), limit, per_client, by_client: Arc::default() }
    }

    fn take(&self, client: Option<IpAddr>) -> Result<StreamSlot, ApiError> {
        let open = self.open.clone().try_acquire_owned().map_err(|_| {
            ApiError::new(
                ErrorKind::Unavailable,
                "too_many_streams",
                format!("the server runs its limit of {} live streams; retry shortly", self.limit),
            )
        })?;
        if let Some(ip) = client {
            let mut by_client = self.by_client.lock().expect("no panics while holding it");
            let count = by_client.entry(ip).or_default();
            if *count >= self.per_client {
                return Err(ApiError::new(
                    ErrorKind::RateLimited,
                    "too_many_streams",
                    format!("this client address already has {} live streams open, the most one may", self.per_client),
                ));
            }
            *count += 1;
        }
        Ok(StreamSlot { _open: open, client, by_client: self.by_client.clone() })
    }

    /// Waits until every stream has ended.
    pub(super) async fn all_closed(&self) {
        let _ = self.open.acquire_many(self.limit as u32).await;
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let Some(ip) = self.client else { return };
        let mut by_client = self.by_client.lock().expect("no panics while holding it");
        if let Some(count) = by_client.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                by_client.remove(&ip);
            }
        }
    }
}

/// A stream ready to run: its audio cutter, its decoding and its place.
pub(super) struct OpenStream {
    stream: Stream,
    decoding: Decodings,
    slot: StreamSlot,
}

/// A stream's finals are written as the request asks; its partials, which
/// change as more audio comes, keep the spoken words.
#[derive(Clone)]
struct Decodings {
    final_: Arc<Decoding>,
    partial: Arc<Decoding>,
}

/// A stream of audio in `format` from `client` with the server's timing,
/// optionally another endpoint pause, and a request's decoder.
pub(super) fn open(
    state: &AppState,
    client: Option<IpAddr>,
    format: StreamFormat,
    endpoint_silence_s: Option<f64>,
    options: &DecodeOptions,
) -> Result<OpenStream, ApiError> {
    let Ready { recognizer, scheduler } = state.ready()?;
    let decoding = recognizer.decoding(options)?;
    let decoding = Decodings { partial: Arc::new(decoding.spoken()), final_: Arc::new(decoding) };
    let mut config = state.config.stream;
    if let Some(seconds) = endpoint_silence_s {
        config.endpoint_silence_s = seconds;
    }
    let stream = Stream::new(format, config)?;
    scheduler.check_capacity()?;
    let slot = state.streams.take(client)?;
    Ok(OpenStream { stream, decoding, slot })
}

/// Starts a stream's task.
pub(super) fn spawn(state: SharedState, open: OpenStream) -> (AudioSender, ResultReceiver) {
    let (audio_tx, audio_rx) = mpsc::channel(AUDIO_CHANNEL);
    let (results_tx, results_rx) = mpsc::channel(AUDIO_CHANNEL);
    let OpenStream { stream, decoding, slot } = open;
    let slot = Arc::new(slot);
    let task_slot = slot.clone();
    tokio::spawn(async move {
        if let Err(e) = run(&state, stream, decoding, audio_rx, &results_tx).await {
            let _ = results_tx.send(Err(e)).await;
        }
        drop(task_slot);
    });
    (audio_tx, ResultReceiver { results: results_rx, _slot: slot })
}

async fn run(
    state: &AppState,
    stream: Stream,
    decoding: Decodings,
    mut audio: mpsc::Receiver<Result<Bytes, ApiError>>,
    results: &mpsc::Sender<Result<StreamResult, ApiError>>,
) -> Result<(), ApiError> {
    let mut stream = Some(stream);
    let mut due: VecDeque<Utterance> = VecDeque::new();
    loop {
        // Take the audio that has arrived; wait for more only when there is
        // nothing to recognize. Reading stops while a final is due, so a
        // client sending faster than real time is held back by the channel
        // (and the connection) instead of piling up audio here.
        while let Some(live) = stream.as_mut() {
            let chunk = if due.is_empty() {
                audio.recv().await
            } else if due.iter().any(|u| u.kind == ResultKind::Final) {
                break;
            } else {
                match audio.try_recv() {
                    Ok(chunk) => Some(chunk),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => None,
                }
            };
            match chunk {
                Some(bytes) => due.extend(live.push(&bytes?)?),
                None => due.extend(stream.take().expect("the stream is live").finish()?),
            }
        }
        let Some(utterance) = due.pop_front() else { return Ok(()) };
        // A partial with anything after it is already out of date.
        if utterance.kind == ResultKind::Partial && !due.is_empty() {
            continue;
        }
        if let Some(result) = recognize(state, utterance, &decoding).await? {
            if results.send(Ok(result)).await.is_err() {
                return Ok(()); // The client has gone.
            }
        }
    }
}

/// Recognizes one utterance through the scheduler; None for a partial the
/// full server has no room for.
async fn recognize(state: &AppState, utterance: Utterance, decoding: &Decodings) -> Result<Option<StreamResult>, ApiError> {
    let Ready { recognizer, scheduler } = state.ready()?;
    let Utterance { kind, start_s, waveform } = utterance;
    let duration_s = waveform.duration_s();
    let admission = match scheduler.admit(duration_s) {
        Ok(admission) => admission,
        Err(_) if kind == ResultKind::Partial => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let worker = recognizer.clone();
    let features = blocking(move || worker.features(&waveform)).await?;
    let heard = admission.hear(Cut::whole(start_s, features, duration_s)).await?;
    let decoding = if kind == ResultKind::Final { &decoding.final_ } else { &decoding.partial };
    let transcript = transcript(recognizer, heard, decoding.clone()).await?;
    if kind == ResultKind::Final {
        state.metrics.audio_seconds.inc_by(duration_s);
    }
    let Transcript { text, words, tokens, .. } = transcript;
    Ok(Some(StreamResult { kind, text, words, tokens, start_s, end_s: start_s + duration_s }))
}

/// How long the server waits for a client's reply to its close frame.
const CLOSE_REPLY_WAIT: Duration = Duration::from_secs(1);

/// How long a stream closed for an error stays open for the client to read why.
const CLOSE_LINGER: Duration = Duration::from_millis(500);

/// How often a live WebSocket is pinged, so that a peer that vanished
/// without closing is noticed.
const PING_INTERVAL: Duration = Duration::from_secs(15);

/// `GET /v1/stream?sample_rate=16000`: a WebSocket. Binary frames carry
/// little-endian PCM16 mono audio, or with `format=webm` or `format=ogg`
/// the bytes a browser's `MediaRecorder` emits for Opus (chunks cut
/// anywhere, the container's header in the first); the text frame
/// `{"event": "end"}` ends the stream. The server answers with JSON text frames (results, or one
/// `{"type": "error", ...}`) and closes after the last final: 1000 at the
/// end of the stream, 1001 when the server is shutting down (after the
/// final of the audio it received), 1008 for a client's mistake, 1009 for
/// a message over the size limit, 1003 for audio in another codec, 1013
/// when the server is full. Decoding
/// options and `endpoint_silence_s` may be given in the query string, and
/// the API key as `access_token` (browsers cannot set headers here).
pub(super) async fn websocket(
    State(state): State<SharedState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let (mut sample_rate_hz, mut container, mut endpoint_silence_s) = (None, None, None);
    let mut rest = form_urlencoded::Serializer::new(String::new());
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let number = |what| ApiError::bad_request("invalid_stream_options", format!("{key} must be {what}, not '{value}'"));
        match key.as_ref() {
            "sample_rate" => sample_rate_hz = Some(value.parse().map_err(|_| number("a whole number of Hz"))?),
            "format" => {
                container = match value.as_ref() {
                    "pcm16" => None,
                    "webm" => Some(Container::WebM),
                    "ogg" => Some(Container::Ogg),
                    _ => return Err(number("pcm16 (the default), webm or ogg")),
                }
            }
            "endpoint_silence_s" => endpoint_silence_s = Some(value.parse().map_err(|_| number("a number of seconds"))?),
            // Checked with the API key.
            "access_token" => {}
            _ => {
                rest.append_pair(&key, &value);
            }
        }
    }
    let options = decode_options(&rest.finish())?;
    let format = stream_format(sample_rate_hz, container)?;
    let open = open(&state, Some(client.ip()), format, endpoint_silence_s, &options)?;
    let max_message = state.config.max_stream_message_bytes;
    // A message of at least 10 ms of audio counts as audio for the idle
    // timeout: 320 bytes of PCM16 at 16 kHz; of Opus at its lowest rate
    // (6 kb/s), 8.
    let min_bytes = match format {
        StreamFormat::Pcm16 { sample_rate_hz } => (sample_rate_hz / 100 * 2) as usize,
        StreamFormat::Opus(_) => 8,
    };
    let idle = Idle { limit: state.config.stream_idle_timeout, min_bytes };
    Ok(upgrade.max_message_size(max_message).max_frame_size(max_message).on_upgrade(move |socket| serve_socket(state, socket, open, idle)))
}

/// A stream's format from its request: PCM16 at a rate (16 kHz unless
/// given), or Opus in a container, which carries its own rate.
pub(super) fn stream_format(sample_rate_hz: Option<u32>, container: Option<Container>) -> Result<StreamFormat, ApiError> {
    match (container, sample_rate_hz) {
        (None, rate) => Ok(StreamFormat::Pcm16 { sample_rate_hz: rate.unwrap_or(16_000) }),
        (Some(container), None) => Ok(StreamFormat::Opus(container)),
        (Some(_), Some(_)) => Err(ApiError::bad_request(
            "invalid_stream_options",
            "a sample rate is given for PCM16 only: WebM and Ogg streams carry their own",
        )),
    }
}

/// When a live stream counts as idle: no message carrying `min_bytes` of
/// audio for `limit`. Pings and near-empty frames cost a client nothing to
/// send, so they do not keep a stream's place.
#[derive(Debug, Clone, Copy)]
struct Idle {
    limit: Duration,
    min_bytes: usize,
}

async fn serve_socket(state: SharedState, socket: WebSocket, open: OpenStream, idle: Idle) {
    let stopping = state.stopping.subscribe();
    let (audio, results) = spawn(state, open);
    let (sink, source) = socket.split();
    let (closed_tx, closed_rx) = oneshot::channel();
    tokio::spawn(read_client(source, audio, idle, stopping.clone(), closed_rx));
    write_results(sink, results, stopping).await;
    let _ = closed_tx.send(());
}

/// Passes the client's audio on to its stream until the client ends it,
/// breaks a rule, or goes idle, or the server stops.
async fn read_client(
    mut source: SplitStream<WebSocket>,
    audio: AudioSender,
    idle: Idle,
    mut stopping: watch::Receiver<bool>,
    closed: oneshot::Receiver<()>,
) {
    let idle_limit = idle.limit;
    let mut idle_until = Instant::now() + idle_limit;
    loop {
        let message = tokio::select! {
            message = source.next() => message,
            () = tokio::time::sleep_until(idle_until) => {
                let message = format!("no audio for {:.0} s; send audio or {{\"event\": \"end\"}}", idle_limit.as_secs_f64());
                let _ = audio.send(Err(ApiError::bad_request("idle_stream", message))).await;
                return;
            }
            // The stream ends here: its last final comes, then 1001.
            () = async { let _ = stopping.wait_for(|stop| *stop).await; } => return,
        };
        let chunk = match message {
            // Clients that send only binary frames (`websocat -b`) end with
            // the same JSON in one.
            Some(Ok(Message::Binary(bytes))) if is_end_event(&bytes) => {
                drop(audio);
                return drain(source, closed).await;
            }
            Some(Ok(Message::Binary(bytes))) => {
                if bytes.len() >= idle.min_bytes {
                    idle_until = Instant::now() + idle_limit;
                }
                Ok(bytes)
            }
            Some(Ok(Message::Text(text))) if is_end_event(text.as_bytes()) => {
                drop(audio);
                return drain(source, closed).await;
            }
            Some(Ok(Message::Text(text))) => Err(ApiError::bad_request(
                "invalid_message",
                format!(
                    "text frames must be {{\"event\": \"end\"}}, not '{}'; audio goes in binary frames",
                    text.chars().take(64).collect::<String>()
                ),
            )),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Err(e)) if is_over_size(&e) => Err(ApiError::new(
                ErrorKind::TooLarge,
                "message_too_large",
                "a WebSocket message is over the server's size limit; send audio in chunks of at most a few seconds",
            )),
            // Closed or broken: the stream ends.
            Some(Ok(Message::Close(_)) | Err(_)) | None => return,
        };
        let failed = chunk.is_err();
        if audio.send(chunk).await.is_err() || failed {
            return;
        }
    }
}

/// After the client's end event: once the server has sent its last result
/// and its close frame (`closed`), reads the client's reply to the close,
/// for a second at most. A socket closed on unread bytes is reset, and the
/// client may lose the close frame; reading the client's close before the
/// results are out would end the connection under them.
async fn drain(mut source: SplitStream<WebSocket>, closed: oneshot::Receiver<()>) {
    let _ = closed.await;
    let _ = tokio::time::timeout(CLOSE_REPLY_WAIT, async {
        while let Some(Ok(message)) = source.next().await {
            if matches!(message, Message::Close(_)) {
                return;
            }
        }
    })
    .await;
}

/// Whether a message is `{"event": "end"}` (surrounding whitespace allowed).
fn is_end_event(bytes: &[u8]) -> bool {
    bytes.len() <= 64 && serde_json::from_slice::<serde_json::Value>(bytes.trim_ascii()).is_ok_and(|v| v["event"] == "end")
}

fn is_over_size(e: &axum::Error) -> bool {
    use std::error::Error;
    let mut source: Option<&(dyn Error + 'static)> = e.source();
    while let Some(cause) = source {
        if let Some(tungstenite::Error::Capacity(_)) = cause.downcast_ref::<tungstenite::Error>() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// Sends the stream's results, pings while it runs, and the close frame.
async fn write_results(mut sink: SplitSink<WebSocket, Message>, mut results: ResultReceiver, stopping: watch::Receiver<bool>) {
    let mut ping = tokio::time::interval_at(Instant::now() + PING_INTERVAL, PING_INTERVAL);
    loop {
        let result = tokio::select! {
            result = results.recv() => result,
            _ = ping.tick() => {
                if sink.send(Message::Ping(Bytes::new())).await.is_err() {
                    return;
                }
                continue;
            }
        };
        let close = match result {
            Some(Ok(result)) => {
                let text = serde_json::to_string(&result).expect("results serialize");
                if sink.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
                continue;
            }
            Some(Err(e)) => {
                let body = json!({"type": "error", "code": e.code, "message": e.message}).to_string();
                let _ = sink.send(Message::Text(body.into())).await;
                CloseFrame { code: close_code(e.kind), reason: e.code.into() }
            }
            None if *stopping.borrow() => CloseFrame { code: 1001, reason: "server shutting down".into() },
            None => CloseFrame { code: 1000, reason: "end of stream".into() },
        };
        let cut_off = close.code != 1000;
        let _ = sink.send(Message::Close(Some(close))).await;
        if cut_off {
            // A client cut off mid-stream (by its mistake or by shutdown) may
            // still be sending: closing the socket on its unread bytes would
            // reset the connection and lose the close frame on the way.
            // Give it a moment to read it. The stream's place comes back
            // first, except at shutdown: there the server's exit waits for
            // the places, and so for the moment given.
            if !*stopping.borrow() {
                drop(results);
            }
            tokio::time::sleep(CLOSE_LINGER).await;
        }
        return;
    }
}
