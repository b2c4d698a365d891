//! `POST /v1/align`: audio and the text that was said in, each written word
//! with its time out ([`hark_core::align`]).

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::{blocking, hear, in_time, upload, ApiError, AppState, SharedState};
use hark_core::align::{AlignOptions, Alignment};
use hark_core::transcript::{to_srt, to_vtt, SegmentRules};

/// The answer formats.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    Json,
    Srt,
    Vtt,
    TextGrid,
}

impl std::str::FromStr for Format {
    type Err = ApiError;

    fn from_str(s: &str) -> Result<Self, ApiError> {
        match s {
            "json" => Ok(Self::Json),
            "srt" => Ok(Self::Srt),
            "vtt" => Ok(Self::Vtt),
            "textgrid" => Ok(Self::TextGrid),
            other => Err(ApiError::bad_request("invalid_format", format!("format '{other}' is not one of json, srt, vtt, textgrid"))),
        }
    }
}

/// The JSON answer: the alignment and the model that heard it.
#[derive(Serialize)]
struct AlignResponse {
    #[serde(flatten)]
    alignment: Alignment,
    model: String,
}

/// A multipart form: `file` (the audio, any format the server reads) and
/// `text` (what was said, as written); optional fields (or query
/// parameters) `format` (json, srt, vtt or textgrid) and `characters`
/// (true: each letter's time too, in JSON and TextGrid).
pub(super) async fn align(State(state): State<SharedState>, request: Request) -> Result<Response, ApiError> {
    let query: Vec<(String, String)> = form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes()).into_owned().collect();
    state.ready()?.scheduler.check_capacity()?;
    let upload = upload::read(request, false, &state.body_limits).await?;
    let field =
        |name: &str| upload.field(name).map(str::to_string).or_else(|| query.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone()));
    let format: Format = field("format").as_deref().unwrap_or("json").parse()?;
    let characters = match field("characters").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::bad_request("invalid_align_options", format!("characters must be true or false, not '{other}'")))
        }
    };
    let text = field("text")
        .ok_or_else(|| ApiError::bad_request("missing_text", "the multipart form has no 'text' field holding the words that were said"))?;
    let (alignment, model) = align_upload(&state, upload.audio, &text, characters).await?;
    let text = |body: String, mime: &'static str| ([(header::CONTENT_TYPE, mime)], body).into_response();
    Ok(match format {
        Format::Json => Json(AlignResponse { alignment, model }).into_response(),
        Format::Srt => text(to_srt(&alignment.segments(SegmentRules::subtitles())), "text/plain; charset=utf-8"),
        Format::Vtt => text(to_vtt(&alignment.segments(SegmentRules::subtitles())), "text/vtt; charset=utf-8"),
        Format::TextGrid => text(alignment.to_textgrid(), "text/plain; charset=utf-8"),
    })
}

/// Aligns `text` to an upload's audio, for HTTP and gRPC alike: the text is
/// checked first (a text that cannot be aligned is refused before the
/// audio is heard), the audio heard as for recognition, then aligned on the
/// blocking pool; all within the request timeout. Returns the model's name
/// beside the alignment.
pub(super) async fn align_upload(state: &AppState, audio: Bytes, text: &str, characters: bool) -> Result<(Alignment, String), ApiError> {
    let recognizer = state.recognizer()?;
    let text = recognizer.align_text(text)?;
    let options = AlignOptions { characters, ..AlignOptions::default() };
    let work = async {
        let heard = hear(state, &recognizer, audio).await?;
        let worker = recognizer.clone();
        blocking(move || worker.align_heard(heard, &text, &options)).await?.map_err(ApiError::from)
    };
    let alignment = in_time(state, work).await?;
    state.metrics.audio_seconds.inc_by(alignment.duration_s);
    Ok((alignment, recognizer.model().config().name.clone()))
}
