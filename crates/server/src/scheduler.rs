//! Dynamic batching: utterances that arrive together go through the
//! acoustic model together.
//!
//! A batch costs little more than its longest member, because the network
//! reads its weights once per step for every sequence in it
//! ([`AcousticModel::forward_batch`]). So a fixed pool of worker threads
//! takes whatever is queued (up to `max_batch`, waiting at most `max_wait`
//! for company) and runs it as one batch.
//!
//! Two guards keep the service answering under any load:
//! - the queue is bounded in *seconds of audio*, not requests, so memory
//!   and waiting time stay bounded whatever the mix of short and long
//!   files; past the bound a request is refused at once
//!   ([`SchedulerError::Overloaded`], which the server turns into 503 with
//!   `Retry-After`) instead of waiting without end;
//! - long audio arrives cut at pauses into pieces
//!   ([`hark_core::recognizer::Recognizer::cut`]) that queue separately, so a
//!   long file advances a piece at a time between the short requests
//!   instead of stalling them.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::metrics::Metrics;
use hark_core::error::{Coded, ErrorKind};
use hark_core::features::Features;
use hark_core::model::{AcousticModel, LogProbs};
use hark_core::pipeline::{Cut, Heard};

/// How requests are batched and how much may wait.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct SchedulerConfig {
    /// Inference worker threads, each running one batch at a time (its two
    /// LSTM directions on two threads).
    #[cfg_attr(feature = "cli", arg(long, env = "HARK_WORKERS", default_value_t = 1))]
    pub workers: usize,
    /// Most utterances (or pieces of long ones) run as one batch.
    #[cfg_attr(feature = "cli", arg(long, env = "HARK_MAX_BATCH", default_value_t = 16))]
    pub max_batch: usize,
    /// How long a worker waits for more requests to join a batch, in ms.
    #[cfg_attr(feature = "cli", arg(long, env = "HARK_MAX_WAIT_MS", default_value_t = 5))]
    pub max_wait_ms: u64,
    /// Most seconds of audio queued or running; past it, requests get 503.
    #[cfg_attr(feature = "cli", arg(long, env = "HARK_MAX_QUEUE_S", default_value_t = 120.0))]
    pub max_queue_s: f64,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self { workers: 1, max_batch: 16, max_wait_ms: 5, max_queue_s: 120.0 }
    }
}

/// Why an utterance was not run.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SchedulerError {
    #[error("the server is at capacity ({queued_s:.0} s of audio queued, limit {limit_s:.0} s); retry in {retry_after_s} s")]
    Overloaded { queued_s: f64, limit_s: f64, retry_after_s: u64 },
    #[error("the server is shutting down")]
    Stopped,
}

impl Coded for SchedulerError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Unavailable
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Overloaded { .. } => "overloaded",
            Self::Stopped => "shutting_down",
        }
    }
}

/// One piece of work for the network, and where its answer goes.
struct Job {
    features: Features,
    audio_s: f64,
    reply: oneshot::Sender<LogProbs>,
}

struct Queue {
    jobs: VecDeque<(Job, Instant)>,
    /// Audio of the queued and running jobs.
    audio_s: f64,
    /// Seconds of work per second of audio, smoothed over recent batches,
    /// to tell refused clients when to come back.
    recent_rtf: f64,
    stopped: bool,
}

struct Shared {
    model: Arc<AcousticModel>,
    config: SchedulerConfig,
    metrics: Arc<Metrics>,
    queue: Mutex<Queue>,
    /// Signalled when a job is queued or the scheduler stops.
    queued: Condvar,
}

/// The batching front of the acoustic model; dropping it stops the workers.
pub struct Scheduler {
    shared: Arc<Shared>,
}

impl Scheduler {
    pub fn new(model: Arc<AcousticModel>, config: SchedulerConfig, metrics: Arc<Metrics>) -> Self {
        let shared = Arc::new(Shared {
            model,
            config,
            metrics,
            queue: Mutex::new(Queue { jobs: VecDeque::new(), audio_s: 0.0, recent_rtf: 0.05, stopped: false }),
            queued: Condvar::new(),
        });
        for i in 0..shared.config.workers.max(1) {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("hark-inference-{i}"))
                .spawn(move || work(&shared))
                .expect("cannot start an inference thread");
        }
        Self { shared }
    }

    /// Refuses at once when the queue is already full, before a request's
    /// body is even read.
    pub fn check_capacity(&self) -> Result<(), SchedulerError> {
        let queue = self.shared.queue.lock().expect("scheduler lock");
        self.check(&queue, 0.0)
    }

    /// Takes room in the queue for `audio_s` seconds of audio, or refuses.
    /// Done before the features are computed, so that a full server turns
    /// requests away without spending work on them.
    pub fn admit(&self, audio_s: f64) -> Result<Admission<'_>, SchedulerError> {
        let mut queue = self.shared.queue.lock().expect("scheduler lock");
        if queue.stopped {
            return Err(SchedulerError::Stopped);
        }
        self.check(&queue, audio_s)?;
        queue.audio_s += audio_s;
        self.shared.metrics.queue_audio_seconds.set(queue.audio_s);
        Ok(Admission { scheduler: self, audio_s })
    }

    fn check(&self, queue: &Queue, audio_s: f64) -> Result<(), SchedulerError> {
        let limit_s = self.shared.config.max_queue_s;
        // An empty queue takes anything: the audio length limit bounds it.
        // (Empty up to rounding: pieces carry shares of their recording's
        // seconds, which do not always sum back to exactly zero.)
        if queue.audio_s > 1e-6 && queue.audio_s + audio_s > limit_s {
            let wait_s = queue.audio_s * queue.recent_rtf / self.shared.config.workers.max(1) as f64;
            return Err(SchedulerError::Overloaded { queued_s: queue.audio_s, limit_s, retry_after_s: wait_s.ceil().max(1.0) as u64 });
        }
        Ok(())
    }

    /// One recording through the network: [`admit`](Self::admit), then
    /// [`Admission::hear`].
    pub async fn hear(&self, cut: Cut) -> Result<Heard, SchedulerError> {
        self.admit(cut.duration_s())?.hear(cut).await
    }
}

/// Room taken in the queue for one recording; given back if dropped unused.
pub struct Admission<'a> {
    scheduler: &'a Scheduler,
    /// Seconds of audio this admission still holds in the queue's account.
    audio_s: f64,
}

impl Admission<'_> {
    /// The admitted recording through the network: the network step of the
    /// pipeline ([`hark_core::pipeline`]) in the service.
    pub async fn hear(self, cut: Cut) -> Result<Heard, SchedulerError> {
        let (features, placement) = cut.into_parts();
        Ok(placement.place(self.log_probs(features).await?))
    }

    /// The acoustic model's output for each piece of the admitted recording.
    /// The pieces queue as separate jobs, batched with whatever else is
    /// waiting. Dropping the future withdraws the request: pieces not yet
    /// started are skipped.
    async fn log_probs(mut self, pieces: Vec<Features>) -> Result<Vec<LogProbs>, SchedulerError> {
        let shared = &self.scheduler.shared;
        let frames: usize = pieces.iter().map(Features::num_frames).sum();
        let mut answers = Vec::with_capacity(pieces.len());
        {
            let mut queue = shared.queue.lock().expect("scheduler lock");
            let now = Instant::now();
            // The admitted seconds pass to the pieces, in proportion to
            // their frames; workers release them.
            let (total_s, count) = (self.audio_s, pieces.len());
            for (i, features) in pieces.into_iter().enumerate() {
                let (reply, answer) = oneshot::channel();
                let audio_s = if i + 1 == count { self.audio_s } else { total_s * features.num_frames() as f64 / frames.max(1) as f64 };
                self.audio_s -= audio_s;
                queue.jobs.push_back((Job { features, audio_s, reply }, now));
                answers.push(answer);
            }
            shared.metrics.queue_jobs.set(queue.jobs.len() as i64);
        }
        shared.queued.notify_all();
        let mut outputs = Vec::with_capacity(answers.len());
        for answer in answers {
            outputs.push(answer.await.map_err(|_| SchedulerError::Stopped)?);
        }
        Ok(outputs)
    }
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        if self.audio_s > 0.0 {
            let shared = &self.scheduler.shared;
            let mut queue = shared.queue.lock().expect("scheduler lock");
            queue.audio_s = (queue.audio_s - self.audio_s).max(0.0);
            shared.metrics.queue_audio_seconds.set(queue.audio_s);
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.shared.queue.lock().expect("scheduler lock").stopped = true;
        self.shared.queued.notify_all();
    }
}

/// A worker: take a batch, run it, answer, repeat.
fn work(shared: &Shared) {
    let max_wait = Duration::from_millis(shared.config.max_wait_ms);
    loop {
        let batch = {
            let mut queue = shared.queue.lock().expect("scheduler lock");
            // Wait for a first job, then up to max_wait (from when it was
            // queued) for the batch to fill.
            loop {
                if queue.stopped {
                    return;
                }
                // A request that gave up (timeout, closed connection) no
                // longer needs its pieces.
                while queue.jobs.front().is_some_and(|(job, _)| job.reply.is_closed()) {
                    let (job, _) = queue.jobs.pop_front().expect("front exists");
                    queue.audio_s -= job.audio_s;
                }
                let Some(&(_, first_queued)) = queue.jobs.front() else {
                    queue = shared.queued.wait(queue).expect("scheduler lock");
                    continue;
                };
                let waited = first_queued.elapsed();
                if queue.jobs.len() >= shared.config.max_batch || waited >= max_wait {
                    break;
                }
                queue = shared.queued.wait_timeout(queue, max_wait - waited).expect("scheduler lock").0;
            }
            let take = queue.jobs.len().min(shared.config.max_batch.max(1));
            let taken: Vec<Job> = queue.jobs.drain(..take).map(|(job, _)| job).collect();
            shared.metrics.queue_jobs.set(queue.jobs.len() as i64);
            taken
        };
        let audio_s: f64 = batch.iter().map(|job| job.audio_s).sum();
        let batch: Vec<Job> = batch.into_iter().filter(|job| !job.reply.is_closed()).collect();
        let started = Instant::now();
        let inputs: Vec<&Features> = batch.iter().map(|job| &job.features).collect();
        let outputs = shared.model.forward_batch(&inputs);
        let elapsed_s = started.elapsed().as_secs_f64();
        shared.metrics.batch_size.observe(batch.len() as f64);
        {
            let mut queue = shared.queue.lock().expect("scheduler lock");
            queue.audio_s = (queue.audio_s - audio_s).max(0.0);
            if audio_s > 0.0 {
                queue.recent_rtf = 0.8 * queue.recent_rtf + 0.2 * elapsed_s / audio_s;
            }
            shared.metrics.queue_audio_seconds.set(queue.audio_s);
        }
        for (job, output) in batch.into_iter().zip(outputs) {
            // The receiver may have gone meanwhile; nothing to do then.
            let _ = job.reply.send(output);
        }
    }
}
