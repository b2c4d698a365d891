//! The gRPC service (`proto/hark/v1/recognizer.proto`): the same recognizer,
//! scheduler and streams as the HTTP API, typed, on its own port, with the
//! standard health service (`grpc.health.v1`: NOT_SERVING until the model
//! has loaded) and server reflection.
//!
//! Errors keep the HTTP API's codes and messages (`"unsupported_format:
//! unrecognized audio format: …"`) under the gRPC status that means the same.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use axum::body::Bytes;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::StreamExt;
use tonic::service::interceptor::InterceptedService;
use tonic::service::Routes;
use tonic::{Request, Response, Status, Streaming};
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

use super::align;
use super::streaming::{self, StreamResult};
use super::{recognize, ApiError, ErrorKind, SharedState};
use hark_core::align::{AlignedWord, Alignment, Span};
use hark_core::audio::Container;
use hark_core::recognizer::{DecodeOptions, DecoderKind, TextFormat};
use hark_core::stream::ResultKind;
use hark_core::transcript::{to_ms, SegmentRules, Token, Transcript, Word};

#[allow(clippy::all, missing_docs)]
mod pb {
    tonic::include_proto!("hark.v1");
}

use pb::recognizer_server::{Recognizer as RecognizerService, RecognizerServer};

/// The encoded descriptors of recognizer.proto, for reflection.
const DESCRIPTOR: &[u8] = tonic::include_file_descriptor_set!("hark_descriptor");

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        let message = format!("{}: {}", e.code, e.message);
        let code = match e.kind {
            ErrorKind::Invalid | ErrorKind::Unsupported | ErrorKind::Unprocessable | ErrorKind::MethodNotAllowed => {
                tonic::Code::InvalidArgument
            }
            ErrorKind::TooLarge | ErrorKind::RateLimited => tonic::Code::ResourceExhausted,
            ErrorKind::ClientTimeout | ErrorKind::DeadlineExceeded => tonic::Code::DeadlineExceeded,
            ErrorKind::Unauthenticated => tonic::Code::Unauthenticated,
            ErrorKind::NotFound => tonic::Code::NotFound,
            ErrorKind::Unavailable => tonic::Code::Unavailable,
            ErrorKind::Internal => tonic::Code::Internal,
        };
        Status::new(code, message)
    }
}

/// prost's codec, except for what a message that does not parse is
/// answered: INVALID_ARGUMENT naming the problem, where prost's says
/// INTERNAL and a client would retry or blame the server.
#[derive(Debug)]
pub(crate) struct Codec<T, U>(tonic_prost::ProstCodec<T, U>);

impl<T, U> Default for Codec<T, U> {
    fn default() -> Self {
        Self(tonic_prost::ProstCodec::default())
    }
}

impl<T, U> tonic::codec::Codec for Codec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = tonic_prost::ProstEncoder<T>;
    type Decoder = MessageDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.0.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        MessageDecoder(self.0.decoder())
    }
}

/// Reads one request message for [`Codec`].
#[derive(Debug)]
pub(crate) struct MessageDecoder<U>(tonic_prost::ProstDecoder<U>);

impl<U: prost::Message + Default> tonic::codec::Decoder for MessageDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0.decode(buf).map_err(|e| match e.code() {
            tonic::Code::Internal => Status::invalid_argument(format!("malformed_request: the message does not parse: {}", e.message())),
            _ => e,
        })
    }

    fn buffer_settings(&self) -> tonic::codec::BufferSettings {
        self.0.buffer_settings()
    }
}

/// A request's decoding options, in the HTTP API's terms.
fn decode_options(config: Option<pb::DecodingConfig>) -> DecodeOptions {
    let Some(config) = config else { return DecodeOptions::default() };
    use pb::decoding_config::{Decoder, TextFormat as Format};
    DecodeOptions {
        decoder: match config.decoder() {
            Decoder::Unspecified => None,
            Decoder::Greedy => Some(DecoderKind::Greedy),
            Decoder::Beam => Some(DecoderKind::Beam),
        },
        beam_size: config.beam_size.map(|n| n as usize),
        lm_weight: config.lm_weight,
        word_bonus: config.word_bonus,
        blank_penalty: config.blank_penalty,
        oov_penalty: config.oov_penalty,
        hotwords: (!config.hotwords.is_empty()).then(|| config.hotwords.join(",")),
        alternatives: (config.alternatives > 0).then_some(config.alternatives as usize),
        text_format: match config.text_format() {
            Format::Unspecified => None,
            Format::Written => Some(TextFormat::Written),
            Format::Spoken => Some(TextFormat::Spoken),
        },
    }
}

fn tokens(tokens: Vec<Token>) -> Vec<pb::Token> {
    tokens
        .into_iter()
        .map(|t| pb::Token {
            text: t.text,
            start: to_ms(t.start_s),
            end: to_ms(t.end_s),
            confidence: t.confidence,
            words: t.words.map(|i| i as u32).collect(),
        })
        .collect()
}

fn words(words: Vec<Word>) -> Vec<pb::Word> {
    words.into_iter().map(|w| pb::Word { word: w.word, start: to_ms(w.start_s), end: to_ms(w.end_s), confidence: w.confidence }).collect()
}

/// A transcript as the protobuf message says it, with its segments; the
/// model is the caller's to fill in.
impl From<Transcript> for pb::RecognizeResponse {
    fn from(transcript: Transcript) -> Self {
        let segments = transcript.segments(SegmentRules::default());
        Self {
            text: transcript.text,
            duration: to_ms(transcript.duration_s),
            words: words(transcript.words),
            tokens: tokens(transcript.tokens),
            segments: segments.into_iter().map(|s| pb::Segment { start: to_ms(s.start_s), end: to_ms(s.end_s), text: s.text }).collect(),
            alternatives: transcript.alternatives.into_iter().map(|a| pb::Alternative { text: a.text, score: a.score }).collect(),
            model: String::new(),
        }
    }
}

/// An alignment as the protobuf message says it; the model is the
/// caller's to fill in.
impl From<Alignment> for pb::AlignResponse {
    fn from(alignment: Alignment) -> Self {
        let word = |w: AlignedWord| {
            let span = w.span.unwrap_or(Span { start_s: 0.0, end_s: 0.0, score: 0.0 });
            let characters = w.characters.into_iter().map(|c| pb::AlignedCharacter {
                r#char: c.character,
                start: to_ms(c.start_s),
                end: to_ms(c.end_s),
            });
            pb::AlignedWord {
                word: w.word,
                start: to_ms(span.start_s),
                end: to_ms(span.end_s),
                score: span.score,
                aligned: w.span.is_some(),
                characters: characters.collect(),
            }
        };
        Self { duration: to_ms(alignment.duration_s), words: alignment.words.into_iter().map(word).collect(), model: String::new() }
    }
}

impl From<StreamResult> for pb::StreamingRecognizeResponse {
    fn from(r: StreamResult) -> Self {
        let kind = match r.kind {
            ResultKind::Partial => pb::streaming_recognize_response::ResultType::Partial,
            ResultKind::Final => pb::streaming_recognize_response::ResultType::Final,
        };
        Self {
            r#type: kind.into(),
            text: r.text,
            words: words(r.words),
            tokens: tokens(r.tokens),
            start: to_ms(r.start_s),
            end: to_ms(r.end_s),
        }
    }
}

struct Service {
    state: SharedState,
}

type ResultStream = Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::StreamingRecognizeResponse, Status>> + Send>>;

impl Service {
    async fn recognize_file(&self, request: Request<pb::RecognizeRequest>) -> Result<Response<pb::RecognizeResponse>, Status> {
        let request = request.into_inner();
        let options = decode_options(request.decoding);
        self.state.ready()?.scheduler.check_capacity().map_err(ApiError::from)?;
        let (transcript, recognizer) = recognize(&self.state, Bytes::from(request.audio), &options).await?;
        Ok(Response::new(pb::RecognizeResponse { model: recognizer.model().config().name.clone(), ..transcript.into() }))
    }

    async fn align_file(&self, request: Request<pb::AlignRequest>) -> Result<Response<pb::AlignResponse>, Status> {
        let request = request.into_inner();
        self.state.ready()?.scheduler.check_capacity().map_err(ApiError::from)?;
        let (alignment, model) = align::align_upload(&self.state, Bytes::from(request.audio), &request.text, request.characters).await?;
        Ok(Response::new(pb::AlignResponse { model, ..alignment.into() }))
    }

    async fn open_stream(&self, request: Request<Streaming<pb::StreamingRecognizeRequest>>) -> Result<Response<ResultStream>, Status> {
        use pb::streaming_recognize_request::Request as Message;
        let client = request.remote_addr().map(|addr| addr.ip());
        let mut incoming = request.into_inner();
        let Some(Message::Config(config)) = incoming.message().await?.and_then(|m| m.request) else {
            return Err(Status::invalid_argument("invalid_message: the first message must carry a StreamingConfig"));
        };
        use pb::streaming_config::Encoding;
        let container = match config.encoding() {
            Encoding::Unspecified => None,
            Encoding::WebmOpus => Some(Container::WebM),
            Encoding::OggOpus => Some(Container::Ogg),
        };
        // 0 is protobuf's unset.
        let format = streaming::stream_format((config.sample_rate_hz != 0).then_some(config.sample_rate_hz), container)?;
        // 0 is protobuf's unset; anything else (NaN included) is checked by the stream.
        let endpoint_silence_s = (config.endpoint_silence_s != 0.0).then_some(f64::from(config.endpoint_silence_s));
        let open = streaming::open(&self.state, client, format, endpoint_silence_s, &decode_options(config.decoding))?;
        let (audio, results) = streaming::spawn(self.state.clone(), open);
        tokio::spawn(async move {
            loop {
                let chunk = match incoming.message().await {
                    Ok(Some(pb::StreamingRecognizeRequest { request: Some(Message::Audio(bytes)) })) => Ok(Bytes::from(bytes)),
                    Ok(Some(_)) => Err(ApiError::bad_request("invalid_message", "after the first message, every message must carry audio")),
                    // Half-closed (the end of the audio) or broken.
                    Ok(None) | Err(_) => break,
                };
                let failed = chunk.is_err();
                if audio.send(chunk).await.is_err() || failed {
                    break;
                }
            }
        });
        let results = results.into_stream().map(|r| r.map(pb::StreamingRecognizeResponse::from).map_err(Status::from));
        Ok(Response::new(Box::pin(results) as ResultStream))
    }

    async fn models(&self) -> Result<Response<pb::ListModelsResponse>, Status> {
        let recognizer = self.state.recognizer()?;
        let (model, config) = (recognizer.model(), recognizer.model().config());
        Ok(Response::new(pb::ListModelsResponse {
            models: vec![pb::Model {
                id: config.name.clone(),
                parameters: model.num_parameters() as u64,
                layers: config.layers as u32,
                hidden: config.hidden as u32,
                sample_rate_hz: hark_core::audio::SAMPLE_RATE_HZ,
            }],
        }))
    }

    /// Counts and times a call as the HTTP routes are (`hark_requests_total`
    /// with route `/hark.v1.Recognizer/<method>` and the gRPC code as status;
    /// for a stream, until it is open).
    async fn observe<T>(&self, method: &str, call: impl Future<Output = Result<T, Status>>) -> Result<T, Status> {
        let started = Instant::now();
        let result = call.await;
        let route = format!("/hark.v1.Recognizer/{method}");
        let code = format!("{:?}", result.as_ref().map_or_else(Status::code, |_| tonic::Code::Ok));
        self.state.metrics.requests.with_label_values(&[route.as_str(), code.as_str()]).inc();
        self.state.metrics.request_seconds.with_label_values(&[route.as_str()]).observe(started.elapsed().as_secs_f64());
        result
    }
}

#[tonic::async_trait]
impl RecognizerService for Service {
    async fn recognize(&self, request: Request<pb::RecognizeRequest>) -> Result<Response<pb::RecognizeResponse>, Status> {
        self.observe("Recognize", self.recognize_file(request)).await
    }

    type StreamingRecognizeStream = ResultStream;

    async fn streaming_recognize(
        &self,
        request: Request<Streaming<pb::StreamingRecognizeRequest>>,
    ) -> Result<Response<Self::StreamingRecognizeStream>, Status> {
        self.observe("StreamingRecognize", self.open_stream(request)).await
    }

    async fn align(&self, request: Request<pb::AlignRequest>) -> Result<Response<pb::AlignResponse>, Status> {
        self.observe("Align", self.align_file(request)).await
    }

    async fn list_models(&self, _: Request<pb::ListModelsRequest>) -> Result<Response<pb::ListModelsResponse>, Status> {
        self.observe("ListModels", self.models()).await
    }
}

/// The health service, reporting NOT_SERVING (for the recognizer and for
/// the server as a whole, "") until [`set_serving`].
pub(super) async fn health() -> (HealthReporter, HealthServer<impl Health>) {
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter.set_not_serving::<RecognizerServer<Service>>().await;
    reporter.set_service_status("", ServingStatus::NotServing).await;
    (reporter, service)
}

/// Marks the recognizer and the server serving: the model has loaded.
pub(super) async fn set_serving(health: &HealthReporter) {
    health.set_serving::<RecognizerServer<Service>>().await;
    health.set_service_status("", ServingStatus::Serving).await;
}

/// The recognizer (behind the API key when one is set), health and
/// reflection.
pub(super) fn routes(state: SharedState, health: HealthServer<impl Health>) -> Routes {
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(DESCRIPTOR)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1().expect("the descriptors are valid");
    let reflection_v1alpha = reflection().build_v1alpha().expect("the descriptors are valid");
    let api_key = state.config.api_key.clone();
    let max_bytes = state.config.max_body_bytes;
    let service = RecognizerServer::new(Service { state }).max_decoding_message_size(max_bytes);
    let authorized = InterceptedService::new(service, move |request: Request<()>| {
        let Some(key) = &api_key else { return Ok(request) };
        if super::presents_key(request.metadata().get("authorization").map(|v| v.as_bytes()), key) {
            Ok(request)
        } else {
            Err(Status::unauthenticated("unauthorized: missing or wrong API key: send metadata 'authorization: Bearer <key>'"))
        }
    });
    Routes::new(authorized).add_service(health).add_service(reflection_v1).add_service(reflection_v1alpha)
}

/// Serves `routes` on `listener` until `shutdown` completes, then lets the
/// calls in flight finish.
pub(super) async fn serve(
    listener: TcpListener,
    routes: Routes,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder().add_routes(routes).serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown).await
}
