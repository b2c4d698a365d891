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

use std::collections::VecDeque;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::json;
use tokio::sync::mpsc;

use super::{blocking, decode_options, recognize_pieces, ApiError, AppState, Ready, SharedState};
use crate::ctc::CtcDecoder;
use crate::recognizer::{DecodeOptions, Piece};
use crate::stream::{ResultKind, Stream, StreamError, Utterance};
use crate::transcript::Word;

/// Audio chunks in flight between a transport and its stream's task.
const AUDIO_CHANNEL: usize = 64;

/// Where a transport sends a stream's PCM16 chunks (or its client's
/// protocol error); dropping it ends the stream.
pub(super) type AudioSender = mpsc::Sender<Result<Bytes, ApiError>>;
/// Where a stream's results come out; it closes after the last final.
pub(super) type ResultReceiver = mpsc::Receiver<Result<StreamResult, ApiError>>;

/// One partial or final result, with words at times in the stream.
#[derive(Debug, Serialize)]
pub(super) struct StreamResult {
    #[serde(rename = "type")]
    pub kind: ResultKind,
    pub text: String,
    pub words: Vec<Word>,
    /// The utterance's span in the stream, in seconds.
    #[serde(rename = "start")]
    pub start_s: f64,
    #[serde(rename = "end")]
    pub end_s: f64,
}

impl From<StreamError> for ApiError {
    fn from(e: StreamError) -> Self {
        match e {
            StreamError::Audio(audio) => crate::recognizer::RecognizeError::Audio(audio).into(),
            StreamError::EndpointSilence(_) => ApiError::bad_request("invalid_stream_options", e.to_string()),
        }
    }
}

/// A stream of `sample_rate_hz` audio with the server's timing, optionally
/// another endpoint pause, and a request's decoder.
pub(super) fn open(
    state: &AppState,
    sample_rate_hz: u32,
    endpoint_silence_s: Option<f64>,
    options: &DecodeOptions,
) -> Result<(Stream, Arc<dyn CtcDecoder>), ApiError> {
    let Ready { recognizer, scheduler } = state.ready()?;
    let decoder: Arc<dyn CtcDecoder> = recognizer.decoder(options)?.into();
    let mut config = state.config.stream;
    if let Some(seconds) = endpoint_silence_s {
        config.endpoint_silence_s = seconds;
    }
    let stream = Stream::new(sample_rate_hz, config)?;
    scheduler.check_capacity()?;
    Ok((stream, decoder))
}

/// Starts a stream's task.
pub(super) fn spawn(state: SharedState, stream: Stream, decoder: Arc<dyn CtcDecoder>) -> (AudioSender, ResultReceiver) {
    let (audio_tx, audio_rx) = mpsc::channel(AUDIO_CHANNEL);
    let (results_tx, results_rx) = mpsc::channel(AUDIO_CHANNEL);
    tokio::spawn(async move {
        if let Err(e) = run(&state, stream, decoder, audio_rx, &results_tx).await {
            let _ = results_tx.send(Err(e)).await;
        }
    });
    (audio_tx, results_rx)
}

async fn run(
    state: &AppState,
    stream: Stream,
    decoder: Arc<dyn CtcDecoder>,
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
                Some(bytes) => due.extend(live.push_pcm16(&bytes?)?),
                None => due.extend(stream.take().expect("the stream is live").finish()?),
            }
        }
        let Some(utterance) = due.pop_front() else { return Ok(()) };
        // A partial with anything after it is already out of date.
        if utterance.kind == ResultKind::Partial && !due.is_empty() {
            continue;
        }
        if let Some(result) = recognize(state, utterance, decoder.clone()).await? {
            if results.send(Ok(result)).await.is_err() {
                return Ok(()); // The client has gone.
            }
        }
    }
}

/// Recognizes one utterance through the scheduler; None for a partial the
/// full server has no room for.
async fn recognize(state: &AppState, utterance: Utterance, decoder: Arc<dyn CtcDecoder>) -> Result<Option<StreamResult>, ApiError> {
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
    let transcript = recognize_pieces(recognizer, admission, vec![Piece { start_s, features }], duration_s, decoder).await?;
    if kind == ResultKind::Final {
        state.metrics.audio_seconds.inc_by(duration_s);
    }
    Ok(Some(StreamResult { kind, text: transcript.text, words: transcript.words, start_s, end_s: start_s + duration_s }))
}

/// `GET /v1/stream?sample_rate=16000`: a WebSocket. Binary frames carry
/// little-endian PCM16 mono audio; the text frame `{"event": "end"}` ends
/// the stream. The server answers with JSON text frames (results, or one
/// `{"type": "error", ...}`) and closes after the last final. Decoding
/// options and `endpoint_silence_s` may be given in the query string.
pub(super) async fn websocket(
    State(state): State<SharedState>,
    RawQuery(query): RawQuery,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let (mut sample_rate_hz, mut endpoint_silence_s, mut rest) = (16_000, None, form_urlencoded::Serializer::new(String::new()));
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let number = |what| ApiError::bad_request("invalid_stream_options", format!("{key} must be {what}, not '{value}'"));
        match key.as_ref() {
            "sample_rate" => sample_rate_hz = value.parse().map_err(|_| number("a whole number of Hz"))?,
            "endpoint_silence_s" => endpoint_silence_s = Some(value.parse().map_err(|_| number("a number of seconds"))?),
            _ => {
                rest.append_pair(&key, &value);
            }
        }
    }
    let options = decode_options(&rest.finish())?;
    let (stream, decoder) = open(&state, sample_rate_hz, endpoint_silence_s, &options)?;
    Ok(upgrade.on_upgrade(move |socket| serve_socket(state, socket, stream, decoder)))
}

async fn serve_socket(state: SharedState, socket: WebSocket, stream: Stream, decoder: Arc<dyn CtcDecoder>) {
    let idle_limit = state.config.request_timeout;
    let (audio, mut results) = spawn(state, stream, decoder);
    let (mut sink, mut source) = socket.split();
    tokio::spawn(async move {
        loop {
            let message = match tokio::time::timeout(idle_limit, source.next()).await {
                Ok(Some(Ok(message))) => message,
                // Closed, broken, or silent for too long: the stream ends.
                Ok(_) => break,
                Err(_) => {
                    let message = format!("no message for {:.0} s; send audio or {{\"event\": \"end\"}}", idle_limit.as_secs_f64());
                    let _ = audio.send(Err(ApiError::bad_request("idle_stream", message))).await;
                    break;
                }
            };
            let chunk = match message {
                Message::Binary(bytes) => Ok(bytes),
                Message::Text(text) if serde_json::from_str::<serde_json::Value>(&text).is_ok_and(|v| v["event"] == "end") => break,
                Message::Text(text) => Err(ApiError::bad_request(
                    "invalid_message",
                    format!(
                        "text frames must be {{\"event\": \"end\"}}, not '{}'; audio goes in binary frames",
                        text.chars().take(64).collect::<String>()
                    ),
                )),
                Message::Close(_) => break,
                Message::Ping(_) | Message::Pong(_) => continue,
            };
            let failed = chunk.is_err();
            if audio.send(chunk).await.is_err() || failed {
                break;
            }
        }
    });
    while let Some(result) = results.recv().await {
        let text = match result {
            Ok(result) => serde_json::to_string(&result).expect("results serialize"),
            Err(e) => {
                let body = json!({"type": "error", "code": e.code, "message": e.message}).to_string();
                let _ = sink.send(Message::Text(body.into())).await;
                // Try again later, the client's fault, or the server's.
                let code = match e.status.as_u16() {
                    503 => 1013,
                    400..=499 => 1008,
                    _ => 1011,
                };
                let _ = sink.send(Message::Close(Some(CloseFrame { code, reason: e.code.into() }))).await;
                return;
            }
        };
        if sink.send(Message::Text(text.into())).await.is_err() {
            return;
        }
    }
    let _ = sink.send(Message::Close(Some(CloseFrame { code: 1000, reason: "end of stream".into() }))).await;
}
