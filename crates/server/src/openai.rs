//! `POST /v1/audio/transcriptions`, compatible with OpenAI's transcription
//! API so that existing clients (the official SDKs, LangChain, …) work
//! unchanged when pointed at hark.

use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;

use super::error::ApiError;
use super::{blocking, decode_options, recognize, upload, SharedState};
use hark_core::recognizer::DecodeOptions;
use hark_core::transcript::{serialize_ms, to_srt, to_vtt, Segment, SegmentRules, Word};

/// The `response_format` values OpenAI defines.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ResponseFormat {
    Json,
    Text,
    Srt,
    Vtt,
    VerboseJson,
}

impl FromStr for ResponseFormat {
    type Err = ApiError;

    fn from_str(s: &str) -> Result<Self, ApiError> {
        match s {
            "json" => Ok(Self::Json),
            "text" => Ok(Self::Text),
            "srt" => Ok(Self::Srt),
            "vtt" => Ok(Self::Vtt),
            "verbose_json" => Ok(Self::VerboseJson),
            other => Err(ApiError::bad_request(
                "invalid_response_format",
                format!("response_format '{other}' is not one of json, text, srt, vtt, verbose_json"),
            )),
        }
    }
}

/// The model hears English only; a caller asking for another language
/// gets told rather than handed a wrong transcript.
fn check_language(language: Option<&str>) -> Result<(), ApiError> {
    match language.map(str::to_ascii_lowercase).as_deref() {
        None | Some("" | "en" | "eng" | "english") => Ok(()),
        Some(other) => Err(ApiError::bad_request(
            "unsupported_language",
            format!("language '{other}' is not served; hark's models transcribe English ('en')"),
        )),
    }
}

fn check_temperature(temperature: Option<&str>) -> Result<(), ApiError> {
    match temperature.map(str::parse::<f32>) {
        None | Some(Ok(0.0..=1.0)) => Ok(()),
        Some(_) => Err(ApiError::bad_request("invalid_temperature", "temperature must be a number from 0 to 1")),
    }
}

/// hark's decoding options sent as extra form fields, and the words of
/// `prompt` (Whisper's way to pass expected vocabulary) as hotwords, written
/// as the prompt writes them.
fn openai_decode_options(upload: &upload::Upload) -> Result<DecodeOptions, ApiError> {
    const NAMES: [&str; 9] =
        ["decoder", "beam_size", "lm_weight", "word_bonus", "blank_penalty", "oov_penalty", "hotwords", "alternatives", "text_format"];
    let mut pairs: Vec<(&str, String)> = NAMES.iter().filter_map(|&name| upload.field(name).map(|v| (name, v.to_string()))).collect();
    if let Some(prompt) = upload.field("prompt") {
        // Commas and colons separate hotwords and boosts: word breaks here.
        let cleaned: String = prompt.chars().map(|c| if matches!(c, ',' | ':') { ' ' } else { c }).collect();
        // In order of first use; a set keeps this linear in the prompt.
        let mut seen = std::collections::HashSet::new();
        let mut sentence_start = true;
        let mut words: Vec<String> = Vec::new();
        for raw in cleaned.split_whitespace() {
            let word = raw.trim_matches(|c: char| !c.is_alphanumeric());
            let spoken = hark_core::text::normalize(word);
            // A capital that only starts a sentence of the prompt is not the word's own.
            let plain_capital = word.chars().skip(1).all(|c| !c.is_uppercase());
            if !spoken.is_empty() && seen.insert(spoken) {
                words.push(if sentence_start && plain_capital { word.to_lowercase() } else { word.to_string() });
            }
            sentence_start = raw.ends_with(['.', '?', '!']);
        }
        if !words.is_empty() {
            match pairs.iter_mut().find(|(name, _)| *name == "hotwords") {
                Some((_, hotwords)) => *hotwords = format!("{hotwords},{}", words.join(",")),
                None => pairs.push(("hotwords", words.join(","))),
            }
        }
    }
    let encoded = serde_urlencoded::to_string(&pairs).map_err(|e| ApiError::bad_request("invalid_decoder_options", e.to_string()))?;
    decode_options(&encoded)
}

pub async fn transcriptions(State(state): State<SharedState>, request: Request) -> Result<Response, ApiError> {
    state.ready()?.scheduler.check_capacity()?;
    let upload = Arc::new(upload::read(request, false, &state.body_limits).await?);
    let format: ResponseFormat = upload.field("response_format").unwrap_or("json").parse()?;
    check_language(upload.field("language"))?;
    check_temperature(upload.field("temperature"))?;
    // `model` is accepted whatever it names: clients send "whisper-1", and
    // hark answers with the model it serves.
    // A `prompt` can be long: turned into hotwords off the async workers.
    let fields = upload.clone();
    let options = blocking(move || openai_decode_options(&fields)).await??;
    let granularities: Vec<&str> = ["timestamp_granularities[]", "timestamp_granularities"]
        .iter()
        .flat_map(|k| upload.fields.get(*k).into_iter().flatten())
        .map(String::as_str)
        .collect();
    if let Some(bad) = granularities.iter().find(|g| !matches!(**g, "word" | "segment")) {
        return Err(ApiError::bad_request(
            "invalid_timestamp_granularity",
            format!("timestamp_granularities[] '{bad}' is not 'word' or 'segment'"),
        ));
    }
    let (transcript, _) = recognize(&state, upload.audio.clone(), &options).await?;
    let segments = transcript.segments(SegmentRules::default());
    // Whisper's words are written words: the written tokens, when written.
    let units = transcript.units();
    let text = |body: String, mime: &'static str| ([(header::CONTENT_TYPE, mime)], body).into_response();
    Ok(match format {
        ResponseFormat::Json => Json(json!({"text": transcript.text})).into_response(),
        ResponseFormat::Text => text(format!("{}\n", transcript.text), "text/plain; charset=utf-8"),
        ResponseFormat::Srt => text(to_srt(&segments), "text/plain; charset=utf-8"),
        ResponseFormat::Vtt => text(to_vtt(&segments), "text/vtt; charset=utf-8"),
        ResponseFormat::VerboseJson => {
            let segments = (granularities.is_empty() || granularities.contains(&"segment"))
                .then(|| segments.iter().map(VerboseSegment::from).collect());
            let words = granularities.contains(&"word").then_some(units.as_ref());
            Json(VerboseJson {
                task: "transcribe",
                language: "english",
                duration: transcript.duration_s,
                text: &transcript.text,
                segments,
                words,
            })
            .into_response()
        }
    })
}

/// OpenAI's `verbose_json` transcription.
#[derive(Serialize)]
struct VerboseJson<'a> {
    task: &'static str,
    language: &'static str,
    #[serde(serialize_with = "serialize_ms")]
    duration: f64,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    segments: Option<Vec<VerboseSegment<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    words: Option<&'a [Word]>,
}

/// A segment as OpenAI's `verbose_json` lists it; the fields Whisper's
/// decoder fills and hark's has no counterpart for carry neutral values.
#[derive(Serialize)]
struct VerboseSegment<'a> {
    id: usize,
    seek: u32,
    #[serde(serialize_with = "serialize_ms")]
    start: f64,
    #[serde(serialize_with = "serialize_ms")]
    end: f64,
    text: &'a str,
    tokens: [u32; 0],
    temperature: f64,
    /// The mean log confidence of its words.
    avg_logprob: f64,
    compression_ratio: f64,
    no_speech_prob: f64,
}

impl<'a> From<&'a Segment> for VerboseSegment<'a> {
    fn from(s: &'a Segment) -> Self {
        let avg_logprob = s.words.iter().map(|w| f64::from(w.confidence.max(1e-6)).ln()).sum::<f64>() / s.words.len() as f64;
        Self {
            id: s.id,
            seek: 0,
            start: s.start_s,
            end: s.end_s,
            text: &s.text,
            tokens: [],
            temperature: 0.0,
            avg_logprob,
            compression_ratio: 1.0,
            no_speech_prob: 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_other_than_english_are_refused() {
        assert!(check_language(None).is_ok());
        assert!(check_language(Some("en")).is_ok());
        assert!(check_language(Some("English")).is_ok());
        assert!(check_language(Some("fr")).unwrap_err().message.contains("'fr'"));
    }

    #[test]
    fn temperature_must_be_between_zero_and_one() {
        assert!(check_temperature(Some("0.2")).is_ok());
        assert!(check_temperature(Some("1.5")).is_err());
        assert!(check_temperature(Some("hot")).is_err());
    }

    #[test]
    fn response_formats_parse() {
        assert_eq!("verbose_json".parse::<ResponseFormat>().unwrap(), ResponseFormat::VerboseJson);
        assert!("xml".parse::<ResponseFormat>().unwrap_err().message.contains("xml"));
    }
}
