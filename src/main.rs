//! The `hark` command: serve, transcribe, eval.

mod bench;
mod http;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use hark_core::align::AlignOptions;
use hark_core::audio::AudioLimits;
use hark_core::eval::{evaluate, read_manifest, LogProbsCache};
use hark_core::lm::build::KneserNey;
use hark_core::recognizer::{DecodeOptions, Recognizer, DEFAULT_WINDOW_S};
use hark_core::stream::StreamConfig;
use hark_core::transcript::{to_srt, to_vtt, SegmentRules};
use hark_server::scheduler::SchedulerConfig;
use hark_server::{Server, ServerConfig};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Parser)]
#[command(name = "hark", version, about = "Speech to text: a BiLSTM-CTC recognizer and its HTTP service")]
struct Cli {
    /// Log lines as text for people, or as JSON objects (one a line) for log shippers.
    #[arg(long, global = true, env = "HARK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// Where `serve` listens, and so where `healthcheck` looks, by default.
const DEFAULT_ADDR: &str = "0.0.0.0:8080";
/// Where `serve` offers the gRPC API by default (gRPC's customary port).
const DEFAULT_GRPC_ADDR: &str = "0.0.0.0:50051";

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum AlignFormat {
    Json,
    Srt,
    Vtt,
    Textgrid,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service.
    Serve(ServeArgs),
    /// Print the transcript of audio files (WAV, FLAC, MP3, Ogg Vorbis, M4A, …).
    Transcribe {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        decode: DecodeOptions,
        /// Print the full JSON result (words, times, confidences) instead of the text.
        #[arg(long)]
        json: bool,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print where each word of a text was said in the audio (forced
    /// alignment): JSON words with times, SRT or WebVTT subtitles, or a
    /// Praat TextGrid.
    Align {
        #[command(flatten)]
        model: ModelArgs,
        #[arg(long, value_enum, default_value_t = AlignFormat::Json)]
        format: AlignFormat,
        /// Each letter's time too (JSON and TextGrid).
        #[arg(long)]
        characters: bool,
        /// The audio (any format hark reads).
        audio: PathBuf,
        /// A text file holding what was said, as written.
        text: PathBuf,
    },
    /// Write the audio as hark hears it (16 kHz mono, 32-bit float WAV): what
    /// training should read so that it sees exactly what serving sees.
    Decode {
        /// Folder for the decoded files, named after the inputs.
        #[arg(long)]
        out_dir: PathBuf,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Measure WER, CER and real-time factor on a NeMo-style JSONL manifest.
    Eval {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        decode: DecodeOptions,
        /// Also list the N utterances with the most errors.
        #[arg(long, value_name = "N", default_value_t = 0)]
        worst: usize,
        /// Write the acoustic model's output, one .npy per utterance, to DIR
        /// (each utterance run whole, not cut at pauses as without it).
        #[arg(long, value_name = "DIR", conflicts_with = "load_log_probs")]
        save_log_probs: Option<PathBuf>,
        /// Decode the .npy files in DIR (from --save-log-probs) instead of
        /// running the model: WER and timing of the decoder alone.
        #[arg(long, value_name = "DIR")]
        load_log_probs: Option<PathBuf>,
        manifest: PathBuf,
    },
    /// Word language models.
    #[command(subcommand)]
    Lm(LmCommand),
    /// Measure speed: single-stream real-time factor, then throughput and
    /// latency of concurrent clients against the real HTTP server.
    Bench(BenchArgs),
    /// Exit 0 if the service on this machine answers `GET /healthz` (or,
    /// with --ready, `/readyz`) with 200, 1 otherwise: for container health
    /// checks, where no curl is installed.
    Healthcheck {
        /// The service's address, as given to `serve`; an unspecified IP
        /// (0.0.0.0 or ::) is checked on loopback.
        #[arg(long, env = "HARK_ADDR", default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
        /// Check readiness (the model is loaded) instead of liveness.
        #[arg(long)]
        ready: bool,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 3.0)]
        timeout_s: f64,
    },
}

#[derive(Args)]
struct BenchArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    decode: DecodeOptions,
    #[command(flatten)]
    scheduler: SchedulerConfig,
    /// Speech to send (any audio file hark reads), looped or cut to each length.
    #[arg(long)]
    audio: PathBuf,
    /// Clip lengths for the single-stream real-time factor, in seconds.
    #[arg(long, value_delimiter = ',', default_value = "2,10,30")]
    single_s: Vec<f64>,
    /// Concurrent clients, one load run per value.
    #[arg(long, value_delimiter = ',', default_value = "16")]
    clients: Vec<usize>,
    /// Seconds of audio each client sends per request.
    #[arg(long, default_value_t = 5.0)]
    clip_s: f64,
    /// Seconds each load run lasts.
    #[arg(long, default_value_t = 20.0)]
    duration_s: f64,
    /// Load this running server (e.g. http://127.0.0.1:8080) instead of one
    /// started in this process on loopback; its model should match --model.
    #[arg(long)]
    url: Option<String>,
}

#[derive(Subcommand)]
enum LmCommand {
    /// Estimate an interpolated modified Kneser-Ney n-gram model from plain
    /// text, one sentence per line, normalized to the model's alphabet first.
    Build {
        /// n-gram order.
        #[arg(long, default_value_t = 3)]
        order: usize,
        /// Per order, unigrams first: drop n-grams whose count is at most
        /// this (e.g. `--prune 0,1,1`); unigrams are never pruned.
        #[arg(long, value_delimiter = ',')]
        prune: Vec<u64>,
        /// Where to write the model: ARPA text, or hark's binary form when
        /// the name ends in `.bin`.
        #[arg(short, long)]
        out: PathBuf,
        #[arg(required = true)]
        text: Vec<PathBuf>,
    },
    /// Convert an ARPA file (from hark, KenLM, SRILM…) to hark's binary form,
    /// which loads in milliseconds.
    Convert { arpa: PathBuf, out: PathBuf },
}

#[derive(Args)]
struct ModelArgs {
    /// Model directory (config.json, model.safetensors, tokens.txt); the built-in default model when absent.
    #[arg(long, env = "HARK_MODEL")]
    model: Option<PathBuf>,
    /// Language model for beam search (ARPA text or hark's binary form),
    /// instead of the one the model directory's decoder.json names; makes
    /// beam search the default.
    #[arg(long, env = "HARK_LM")]
    lm: Option<PathBuf>,
    /// Longest audio accepted, in seconds.
    #[arg(long, env = "HARK_MAX_DURATION_S", default_value_t = 600.0)]
    max_duration_s: f64,
    /// Audio longer than this many seconds (1–600) is cut at pauses into
    /// pieces at most this long, each recognized on its own.
    #[arg(long, env = "HARK_WINDOW_S", default_value_t = DEFAULT_WINDOW_S)]
    window_s: f64,
}

impl ModelArgs {
    /// `--window-s`, checked: 1 to 600 seconds.
    fn window_s(&self) -> Result<f64, String> {
        match self.window_s {
            w if (1.0..=600.0).contains(&w) => Ok(w),
            w => Err(format!("--window-s must be a number of seconds from 1 to 600, not {w}")),
        }
    }

    fn load(&self) -> Result<Recognizer, String> {
        let window_s = self.window_s()?;
        let recognizer = Recognizer::load(self.model.as_deref(), AudioLimits { max_duration_s: self.max_duration_s }, self.lm.as_deref())
            .map_err(|e| match &self.model {
            Some(dir) => format!("cannot load the model in {}: {e}", dir.display()),
            None => format!("cannot load the built-in model: {e}"),
        })?;
        Ok(recognizer.with_window_s(window_s))
    }
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Address to listen on.
    #[arg(long, env = "HARK_ADDR", default_value = DEFAULT_ADDR)]
    addr: SocketAddr,
    /// Require `Authorization: Bearer <key>` on every route but the health checks.
    #[arg(long, env = "HARK_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "HARK_MAX_BODY_BYTES", default_value_t = ServerConfig::default().max_body_bytes)]
    max_body_bytes: usize,
    /// A transcription not finished in this many seconds is abandoned with 503.
    #[arg(long, env = "HARK_REQUEST_TIMEOUT_S", default_value_t = ServerConfig::default().request_timeout.as_secs_f64())]
    request_timeout_s: f64,
    /// On SIGTERM or Ctrl-C, requests in flight get this many seconds to
    /// finish before the process exits anyway (keep it under the
    /// orchestrator's grace period: Kubernetes' default is 30 s).
    #[arg(long, env = "HARK_DRAIN_TIMEOUT_S", default_value_t = ServerConfig::default().drain_timeout.as_secs_f64())]
    drain_timeout_s: f64,
    /// Connections open at once; further ones wait in the listen backlog.
    #[arg(long, env = "HARK_MAX_CONNECTIONS", default_value_t = ServerConfig::default().max_connections)]
    max_connections: usize,
    /// A request's headers must arrive within this many seconds, and a
    /// kept-alive connection idle this long is closed; a request body gets
    /// it as grace before --min-body-rate counts.
    #[arg(long, env = "HARK_READ_TIMEOUT_S", default_value_t = ServerConfig::default().read_timeout.as_secs_f64())]
    read_timeout_s: f64,
    /// Bytes per second a request body must average after the grace.
    #[arg(long, env = "HARK_MIN_BODY_RATE", default_value_t = ServerConfig::default().min_body_rate)]
    min_body_rate: f64,
    /// Request bodies and their decoded audio held in memory at once, over
    /// all connections, in bytes.
    #[arg(long, env = "HARK_MAX_BODY_MEMORY_BYTES", default_value_t = ServerConfig::default().max_body_memory_bytes)]
    max_body_memory_bytes: usize,
    /// Live streams (WebSocket and gRPC) open at once.
    #[arg(long, env = "HARK_MAX_STREAMS", default_value_t = ServerConfig::default().max_streams)]
    max_streams: usize,
    /// Live streams open at once from one client address.
    #[arg(long, env = "HARK_MAX_STREAMS_PER_CLIENT", default_value_t = ServerConfig::default().max_streams_per_client)]
    max_streams_per_client: usize,
    /// A live stream that sends no audio for this many seconds is closed.
    #[arg(long, env = "HARK_STREAM_IDLE_TIMEOUT_S", default_value_t = ServerConfig::default().stream_idle_timeout.as_secs_f64())]
    stream_idle_timeout_s: f64,
    /// The largest WebSocket message, in bytes.
    #[arg(long, env = "HARK_MAX_STREAM_MESSAGE_BYTES", default_value_t = ServerConfig::default().max_stream_message_bytes)]
    max_stream_message_bytes: usize,
    /// Address of the gRPC API (proto/hark/v1/recognizer.proto, with
    /// grpc.health.v1 and reflection).
    #[arg(long, env = "HARK_GRPC_ADDR", default_value = DEFAULT_GRPC_ADDR)]
    grpc_addr: SocketAddr,
    /// Live streams: seconds of new audio between partial results.
    #[arg(long, env = "HARK_PARTIAL_INTERVAL_S", default_value_t = StreamConfig::default().partial_interval_s)]
    partial_interval_s: f64,
    /// Live streams: a pause this many seconds long ends an utterance (its
    /// final result); a stream may ask for another (0.2–5 s).
    #[arg(long, env = "HARK_ENDPOINT_SILENCE_S", default_value_t = StreamConfig::default().endpoint_silence_s)]
    endpoint_silence_s: f64,
    #[command(flatten)]
    scheduler: SchedulerConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A benchmark's report is its output: the server inside it logs only
    // what needs attention.
    let level = if matches!(cli.command, Command::Bench(_)) { "warn" } else { "info" };
    init_logging(cli.log_format, level);
    let result = match cli.command {
        Command::Serve(args) => match args.config() {
            Ok(config) => serve(args, config),
            // A configuration error is a usage error, as clap's own are.
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::from(2);
            }
        },
        Command::Transcribe { model, decode: options, json, files } => transcribe(&model, &options, json, &files),
        Command::Align { model, format, characters, audio, text } => align(&model, format, characters, &audio, &text),
        Command::Decode { out_dir, files } => decode(&out_dir, &files),
        Command::Eval { model, decode: options, worst, save_log_probs, load_log_probs, manifest } => {
            let cache = match (save_log_probs, load_log_probs) {
                (Some(dir), _) => Some(LogProbsCache::Save(dir)),
                (_, Some(dir)) => Some(LogProbsCache::Load(dir)),
                _ => None,
            };
            eval(&model, &options, worst, cache, &manifest)
        }
        Command::Bench(args) => bench(args),
        Command::Healthcheck { addr, ready, timeout_s } => healthcheck(addr, ready, timeout_s),
        Command::Lm(LmCommand::Build { order, prune, out, text }) => build_lm(order, &prune, &out, &text),
        Command::Lm(LmCommand::Convert { arpa, out }) => {
            hark_core::lm::NgramLm::load(&arpa).map_err(|e| e.to_string()).and_then(|lm| write_lm_file(&out, &lm.to_binary()))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Log lines go to stderr (stdout carries the listening address and
/// command output), coloured only on a terminal; `HARK_LOG` filters them
/// (default `level`, without the audio decoders' per-file chatter, such as
/// "using xing header for duration": their failures reach the caller as
/// hark's own errors).
fn init_logging(format: LogFormat, level: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("HARK_LOG").unwrap_or_else(|_| format!("{level},symphonia=off").into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).with_current_span(true).with_span_list(false).init(),
    }
}

impl ServeArgs {
    /// The service's configuration, every value checked before anything starts.
    fn config(&self) -> Result<ServerConfig, String> {
        let seconds = |name: &str, value: f64, min: f64, max: f64| {
            if (min..=max).contains(&value) {
                Ok(Duration::from_secs_f64(value))
            } else {
                Err(format!("--{name} must be a number of seconds from {min} to {max}, not {value}"))
            }
        };
        let positive = |name: &str, value: usize| if value > 0 { Ok(value) } else { Err(format!("--{name} must be at least 1")) };
        let max_duration_s = self.model.max_duration_s;
        seconds("max-duration-s", max_duration_s, 0.1, 86_400.0)?;
        let window_s = self.model.window_s()?;
        let config = ServerConfig {
            api_key: self.api_key.clone().filter(|k| !k.is_empty()),
            max_body_bytes: positive("max-body-bytes", self.max_body_bytes)?,
            request_timeout: seconds("request-timeout-s", self.request_timeout_s, 0.001, 86_400.0)?,
            drain_timeout: seconds("drain-timeout-s", self.drain_timeout_s, 0.0, 3_600.0)?,
            max_connections: positive("max-connections", self.max_connections)?,
            read_timeout: seconds("read-timeout-s", self.read_timeout_s, 0.1, 3_600.0)?,
            min_body_rate: match self.min_body_rate {
                rate if rate > 0.0 && rate.is_finite() => rate,
                rate => return Err(format!("--min-body-rate must be a positive number of bytes per second, not {rate}")),
            },
            max_body_memory_bytes: positive("max-body-memory-bytes", self.max_body_memory_bytes)?,
            max_streams: positive("max-streams", self.max_streams)?,
            max_streams_per_client: positive("max-streams-per-client", self.max_streams_per_client)?,
            stream_idle_timeout: seconds("stream-idle-timeout-s", self.stream_idle_timeout_s, 1.0, 86_400.0)?,
            max_stream_message_bytes: positive("max-stream-message-bytes", self.max_stream_message_bytes)?,
            scheduler: self.scheduler.clone(),
            stream: StreamConfig {
                partial_interval_s: seconds("partial-interval-s", self.partial_interval_s, 0.1, 60.0)?.as_secs_f64(),
                endpoint_silence_s: seconds("endpoint-silence-s", self.endpoint_silence_s, 0.2, 5.0)?.as_secs_f64(),
                max_utterance_s: window_s,
            },
            grpc_addr: Some(self.grpc_addr),
        };
        if config.max_body_memory_bytes < config.max_body_bytes {
            return Err("--max-body-memory-bytes must be at least --max-body-bytes, or no upload of the largest size fits".into());
        }
        let s = &config.scheduler;
        positive("workers", s.workers)?;
        positive("max-batch", s.max_batch)?;
        if !(s.max_queue_s > 0.0 && s.max_queue_s.is_finite()) {
            return Err(format!("--max-queue-s must be a positive number of seconds, not {}", s.max_queue_s));
        }
        Ok(config)
    }
}

fn serve(args: ServeArgs, config: ServerConfig) -> Result<(), String> {
    let runtime = runtime()?;
    runtime.block_on(async move {
        let summary = config_summary(&config, args.addr, &args.model);
        let server = Server::bind(args.addr, config).await.map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
        let addr = server.local_addr().map_err(|e| e.to_string())?;
        // Tests and scripts read this line to find an ephemeral port.
        println!("hark listening on http://{addr}");
        if let Some(grpc_addr) = server.grpc_local_addr() {
            println!("hark gRPC listening on {}", grpc_addr.map_err(|e| e.to_string())?);
        }
        let readiness = server.readiness();
        let model_args = args.model;
        let loading = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let recognizer = model_args.load()?;
            let model = recognizer.model();
            let config = model.config();
            let load_ms = started.elapsed().as_millis() as u64;
            let decoder = recognizer.decoding(&DecodeOptions::default()).map_err(|e| e.to_string())?.describe();
            tracing::info!(
                model = %config.name,
                parameters = model.num_parameters(),
                load_ms,
                "ready: model {} ({:.2} M parameters, {}×{} BiLSTM, decoder {}, loaded in {load_ms} ms); {summary}",
                config.name,
                model.num_parameters() as f64 / 1e6,
                config.layers,
                config.hidden,
                decoder,
            );
            readiness.set(Arc::new(recognizer));
            Ok::<(), String>(())
        });
        let serving = tokio::spawn(server.run(shutdown_signal()));
        loading.await.map_err(|e| e.to_string())??;
        serving.await.map_err(|e| e.to_string())?.map_err(|e| format!("server error: {e}"))
    })
}

/// The async runtime of the service. Its blocking pool (audio decoding,
/// features, CTC decoding) is CPU-bound work, so it gets two threads per
/// core rather than tokio's 512: more would not run faster, and each thread
/// keeps its own allocator arena (64 clients: peak RSS 401 MB with tokio's
/// default, 151 MB with this; `hark bench --clients 64`).
fn runtime() -> Result<tokio::runtime::Runtime, String> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(2 * cores.max(2))
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// The service's configuration in one line for the start-up log.
fn config_summary(config: &ServerConfig, addr: SocketAddr, model: &ModelArgs) -> String {
    let s = &config.scheduler;
    format!(
        "listening on {addr}; workers {}, max batch {}, max wait {} ms, queue {:.0} s of audio, window {:.0} s; \
         request timeout {:.0} s, drain {:.0} s, max connections {}, max body {} MiB, max audio {:.0} s; API key {}",
        s.workers,
        s.max_batch,
        s.max_wait_ms,
        s.max_queue_s,
        model.window_s,
        config.request_timeout.as_secs_f64(),
        config.drain_timeout.as_secs_f64(),
        config.max_connections,
        config.max_body_bytes / (1024 * 1024),
        model.max_duration_s,
        if config.api_key.is_some() { "required" } else { "off" },
    )
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}

fn transcribe(model: &ModelArgs, options: &DecodeOptions, json: bool, files: &[PathBuf]) -> Result<(), String> {
    let recognizer = model.load()?;
    let decoding = recognizer.decoding(options).map_err(|e| e.to_string())?;
    let mut failed = false;
    for file in files {
        let result = std::fs::read(file)
            .map_err(|e| e.to_string())
            .and_then(|bytes| recognizer.transcribe_bytes(&bytes, &decoding).map_err(|e| e.to_string()));
        match result {
            Ok(transcript) if json => {
                let mut value = serde_json::to_value(&transcript).expect("transcripts serialize");
                value["model"] = recognizer.model().config().name.clone().into();
                if files.len() > 1 {
                    value["file"] = file.display().to_string().into();
                }
                println!("{value}");
            }
            Ok(transcript) if files.len() > 1 => {
                println!("{}\t{}", file.display(), transcript.text)
            }
            Ok(transcript) => println!("{}", transcript.text),
            Err(e) => {
                eprintln!("error: {}: {e}", file.display());
                failed = true;
            }
        }
    }
    if failed {
        Err("some files could not be transcribed".into())
    } else {
        Ok(())
    }
}

fn align(model: &ModelArgs, format: AlignFormat, characters: bool, audio: &Path, text: &Path) -> Result<(), String> {
    let recognizer = model.load()?;
    let text = std::fs::read_to_string(text).map_err(|e| format!("{}: {e}", text.display()))?;
    let text = recognizer.align_text(&text).map_err(|e| e.to_string())?;
    let bytes = std::fs::read(audio).map_err(|e| format!("{}: {e}", audio.display()))?;
    let waveform = recognizer.read_audio(&bytes).map_err(|e| format!("{}: {e}", audio.display()))?;
    let options = AlignOptions { characters, ..AlignOptions::default() };
    let alignment = recognizer.align(&waveform, &text, &options).map_err(|e| e.to_string())?;
    let cues = || alignment.segments(SegmentRules::subtitles());
    match format {
        AlignFormat::Json => println!("{}", serde_json::to_string(&alignment).expect("alignments serialize")),
        AlignFormat::Srt => print!("{}", to_srt(&cues())),
        AlignFormat::Vtt => print!("{}", to_vtt(&cues())),
        AlignFormat::Textgrid => print!("{}", alignment.to_textgrid()),
    }
    Ok(())
}

fn decode(out_dir: &Path, files: &[PathBuf]) -> Result<(), String> {
    std::fs::create_dir_all(out_dir).map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: hark_core::audio::SAMPLE_RATE_HZ,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let limits = AudioLimits { max_duration_s: f64::INFINITY };
    for file in files {
        let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
        let waveform = hark_core::audio::decode(&bytes, &limits).map_err(|e| format!("{}: {e}", file.display()))?;
        let name = file.file_stem().ok_or_else(|| format!("{}: no file name", file.display()))?;
        let out = out_dir.join(name).with_extension("wav");
        let write_error = |e: hound::Error| format!("{}: {e}", out.display());
        let mut writer = hound::WavWriter::create(&out, spec).map_err(write_error)?;
        for &s in waveform.samples() {
            writer.write_sample(s).map_err(write_error)?;
        }
        writer.finalize().map_err(write_error)?;
    }
    Ok(())
}

fn eval(model: &ModelArgs, options: &DecodeOptions, worst: usize, cache: Option<LogProbsCache>, manifest: &Path) -> Result<(), String> {
    let recognizer = model.load()?;
    if let Some(LogProbsCache::Save(dir)) = &cache {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let decoding = recognizer.decoding(options).map_err(|e| e.to_string())?;
    let utterances = read_manifest(manifest).map_err(|e| e.to_string())?;
    let bar = ProgressBar::new(utterances.len() as u64)
        .with_style(ProgressStyle::with_template("{bar:40} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}").expect("valid template"));
    let (mut errors, mut words) = (0, 0);
    let report = evaluate(&recognizer, &decoding, &utterances, cache.as_ref(), |scored| {
        errors += scored.word_errors;
        words += scored.words;
        bar.set_message(format!("WER {:.2}%", 100.0 * errors as f64 / words.max(1) as f64));
        bar.inc(1);
    })
    .map_err(|e| e.to_string())?;
    bar.finish_and_clear();
    println!("model:      {}", recognizer.model().config().name);
    println!("manifest:   {} ({} utterances, {:.1} s of audio)", manifest.display(), report.utterances.len(), report.audio_s);
    println!("WER:        {:.2}%", 100.0 * report.wer());
    println!("CER:        {:.2}%", 100.0 * report.cer());
    println!("decoder:    {}", decoding.describe());
    let timed = if matches!(cache, Some(LogProbsCache::Load(_))) { "decoding only" } else { "one stream" };
    println!("RTF:        {:.4} ({timed})", report.real_time_factor());
    println!("confidence  words  right");
    let edges = [0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99];
    for (k, (lower, words, right)) in report.reliability(&edges).into_iter().enumerate() {
        let upper = edges.get(k + 1).copied().unwrap_or(1.0);
        println!("{lower:.2}–{upper:.2}   {words:>5}  {:.1}%", 100.0 * right as f64 / words.max(1) as f64);
    }
    for scored in report.worst(worst) {
        println!(
            "\n{} (WER {:.0}%)\n  ref: {}\n  hyp: {}",
            scored.audio_path.display(),
            100.0 * scored.wer(),
            scored.reference,
            scored.hypothesis
        );
    }
    Ok(())
}

fn bench(args: BenchArgs) -> Result<(), String> {
    use crate::bench::{clip, load, peak_rss_mb, single_stream_rtf, wav_bytes};
    let recognizer = Arc::new(args.model.load()?);
    let decoding = recognizer.decoding(&args.decode).map_err(|e| e.to_string())?;
    let bytes = std::fs::read(&args.audio).map_err(|e| format!("cannot read {}: {e}", args.audio.display()))?;
    let speech = recognizer.read_audio(&bytes).map_err(|e| format!("{}: {e}", args.audio.display()))?;
    let config = recognizer.model().config();
    println!(
        "model {} ({} layers × {} units, {:.2} M parameters), decoder: {}",
        config.name,
        config.layers,
        config.hidden,
        recognizer.model().num_parameters() as f64 / 1e6,
        decoding.describe()
    );
    println!("single stream, WAV bytes to transcript (median of 5):");
    for &seconds in &args.single_s {
        let rtf = single_stream_rtf(&recognizer, &decoding, &clip(&speech, seconds), 5).map_err(|e| e.to_string())?;
        println!("  {seconds:>5.1} s audio: RTF {rtf:.4} ({:.1} ms)", rtf * seconds * 1000.0);
    }
    let wav = wav_bytes(&clip(&speech, args.clip_s));
    let runtime = runtime()?;
    runtime.block_on(async {
        let (url, stop) = match &args.url {
            Some(url) => (url.trim_end_matches('/').to_string(), None),
            None => {
                let config =
                    ServerConfig { max_body_bytes: wav.len() + 4096, scheduler: args.scheduler.clone(), ..ServerConfig::default() };
                let server = Server::bind(([127, 0, 0, 1], 0).into(), config).await.map_err(|e| e.to_string())?;
                let addr = server.local_addr().map_err(|e| e.to_string())?;
                server.readiness().set(recognizer.clone());
                let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
                tokio::spawn(server.run(async {
                    let _ = stopped.await;
                }));
                (format!("http://{addr}"), Some(stop))
            }
        };
        let query = serde_urlencoded::to_string(&args.decode).map_err(|e| e.to_string())?;
        let endpoint = format!("{url}/v1/transcribe?{query}");
        let s = &args.scheduler;
        println!(
            "load against {url}: {:.1} s clips for {:.0} s per run (workers {}, max batch {}, max wait {} ms, queue {:.0} s of audio)",
            args.clip_s, args.duration_s, s.workers, s.max_batch, s.max_wait_ms, s.max_queue_s
        );
        for &clients in &args.clients {
            let mut report = load(&endpoint, wav.clone(), args.clip_s, clients, Duration::from_secs_f64(args.duration_s)).await?;
            println!(
                "  {clients:>3} clients: {:.1} s of audio per second; 200 × {}{}; 503 × {}{}; other {}",
                report.throughput(),
                report.ok.len(),
                latencies(&mut report.ok, &[0.5, 0.95, 0.99]),
                report.rejected.len(),
                latencies(&mut report.rejected, &[0.99]),
                report.errors.len()
            );
            if let Some(error) = report.errors.first() {
                println!("       first error: {error}");
            }
        }
        drop(stop);
        Ok::<(), String>(())
    })?;
    if let (Some(mb), None) = (peak_rss_mb(), &args.url) {
        println!("peak RSS (server and clients in this process): {mb:.0} MB");
    }
    Ok(())
}

/// ": p50 12 ms, p99 30 ms" for the quantiles `ps` of request times in
/// seconds; nothing when there were none.
fn latencies(seconds: &mut [f64], ps: &[f64]) -> String {
    let quantiles: Vec<String> =
        ps.iter().filter_map(|&p| Some(format!("p{:.0} {:.1} ms", p * 100.0, crate::bench::percentile(seconds, p)? * 1000.0))).collect();
    if quantiles.is_empty() {
        String::new()
    } else {
        format!(": {}", quantiles.join(", "))
    }
}

fn healthcheck(addr: SocketAddr, ready: bool, timeout_s: f64) -> Result<(), String> {
    let mut target = addr;
    if target.ip().is_unspecified() {
        target.set_ip(if addr.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
    }
    let path = if ready { "/readyz" } else { "/healthz" };
    let url = format!("http://{target}{path}");
    let status = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?
        .block_on(async {
            let check = async {
                let mut connection = http::Connection::open(&target.to_string()).await?;
                connection.send(hyper::Method::GET, path, None, bytes::Bytes::new()).await.map(|(status, _)| status)
            };
            tokio::time::timeout(Duration::from_secs_f64(timeout_s), check)
                .await
                .unwrap_or_else(|_| Err(format!("no answer in {timeout_s} s")))
        })
        .map_err(|e| format!("{url}: {e}"))?;
    if status.is_success() {
        println!("{url}: {status}");
        Ok(())
    } else {
        Err(format!("{url}: {status}"))
    }
}

fn build_lm(order: usize, prune: &[u64], out: &Path, inputs: &[PathBuf]) -> Result<(), String> {
    let started = Instant::now();
    let mut sentences = Vec::new();
    for path in inputs {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        sentences.extend(text.lines().map(hark_core::text::normalize).filter(|s| !s.is_empty()));
    }
    let mut model = KneserNey::estimate(sentences.iter().map(String::as_str), order).map_err(|e| e.to_string())?;
    model.prune(prune);
    if !model.fallback_orders.is_empty() {
        eprintln!("note: too little text for discounts of orders {:?}; used lmplz's fallback (0.5, 1, 1.5)", model.fallback_orders);
    }
    let arpa = model.to_arpa();
    let lm = hark_core::lm::NgramLm::from_arpa(&arpa).map_err(|(line, e)| format!("internal error at ARPA line {line}: {e}"))?;
    if out.extension().is_some_and(|e| e == "bin") {
        write_lm_file(out, &lm.to_binary())?;
    } else {
        write_lm_file(out, arpa.as_bytes())?;
    }
    let counts: Vec<String> = lm.counts().iter().enumerate().map(|(n, count)| format!("{}={count}", n + 1)).collect();
    println!("{} sentences → {} ({}) in {:.1} s", sentences.len(), out.display(), counts.join(", "), started.elapsed().as_secs_f64());
    Ok(())
}

fn write_lm_file(out: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(out, bytes).map_err(|e| format!("cannot write {}: {e}", out.display()))
}
