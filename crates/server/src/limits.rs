//! What one client may hold of the service: request bodies and the audio
//! decoded from them.
//!
//! - A body whose `Content-Length` is over the limit is answered 413 before
//!   a byte of it is read.
//! - The bodies in flight and their decoded audio share one memory budget, a
//!   semaphore counted in KiB. An upload takes its declared size before it
//!   is read (a chunked one as its bytes arrive); before its audio is
//!   decoded it takes what the samples and features of its duration will
//!   hold (the longest allowed when the container does not say). Both are
//!   given back when its response is sent. When the budget is spent, a
//!   request waits briefly and is then answered 503 with `Retry-After`, so
//!   forty 25 MiB uploads, or a flood of small files that unpack into
//!   minutes of audio, cannot grow the process past what the operator set
//!   aside.
//! - A body must keep arriving: after a grace period it must average a
//!   minimum rate, or the request ends with 408. A phone on a bad mobile
//!   link sends a few KB/s; a slow-loris client a byte a second.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

use super::{ApiError, ErrorKind, SharedState};

/// How long a request waits for room in the body budget before it is
/// refused: long enough for a burst to pass, short enough that clients
/// retry elsewhere.
const BUDGET_WAIT: Duration = Duration::from_secs(2);

/// The request-body limits of one server.
#[derive(Debug)]
pub(super) struct BodyLimits {
    max_bytes: usize,
    /// KiB of request bodies that may be in memory at once.
    budget: Arc<Semaphore>,
    budget_kib: usize,
    /// The most one request's decoded audio takes: what the budget holds
    /// beside the largest body, so a request alone always fits.
    decoded_cap_kib: usize,
    /// A body gets this long before its rate counts.
    grace: Duration,
    /// Bytes per second a body must average after the grace period.
    min_rate: f64,
}

impl BodyLimits {
    pub(super) fn new(max_bytes: usize, budget_bytes: usize, grace: Duration, min_rate_bytes_s: f64) -> Self {
        let budget_kib = kib(budget_bytes);
        let decoded_cap_kib = budget_kib.saturating_sub(kib(max_bytes));
        Self { max_bytes, budget: Arc::new(Semaphore::new(budget_kib)), budget_kib, decoded_cap_kib, grace, min_rate: min_rate_bytes_s }
    }

    /// Takes room in the budget for `bytes` of decoded audio, waiting briefly.
    pub(super) async fn reserve_decoded(&self, bytes: usize) -> Result<OwnedSemaphorePermit, ApiError> {
        self.reserve(kib(bytes).min(self.decoded_cap_kib)).await
    }

    async fn reserve(&self, kib: usize) -> Result<OwnedSemaphorePermit, ApiError> {
        let wanted = u32::try_from(kib.min(self.budget_kib)).unwrap_or(u32::MAX);
        match tokio::time::timeout(BUDGET_WAIT, self.budget.clone().acquire_many_owned(wanted)).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(self.over_budget()),
        }
    }

    /// When a body of `received` bytes, begun at `started`, must have its next byte.
    fn deadline(&self, started: Instant, received: u64) -> Instant {
        started + self.grace + Duration::from_secs_f64(received as f64 / self.min_rate)
    }

    pub(super) fn too_large(&self) -> ApiError {
        ApiError::body_too_large(self.max_bytes)
    }

    fn over_budget(&self) -> ApiError {
        ApiError::new(
            ErrorKind::Unavailable,
            "busy",
            format!("the server holds its limit of {} MiB of uploads and their audio in flight; retry shortly", self.budget_kib / 1024),
        )
    }
}

fn kib(bytes: usize) -> usize {
    bytes.div_ceil(1024)
}

/// What became of one request's body, for the error its handler returns.
#[derive(Debug, Default)]
pub(super) struct BodyWatch {
    stalled: AtomicBool,
    over_budget: AtomicBool,
    /// The budget a chunked body has taken so far, held until the response.
    taken: Mutex<Option<OwnedSemaphorePermit>>,
}

impl BodyWatch {
    /// The error for a body that could not be read, when a limit stopped it.
    pub(super) fn error(&self, limits: &BodyLimits) -> Option<ApiError> {
        if self.stalled.load(Ordering::Relaxed) {
            return Some(ApiError::new(
                ErrorKind::ClientTimeout,
                "body_timeout",
                format!(
                    "the request body stopped arriving: after {:.0} s it must average at least {:.0} bytes a second",
                    limits.grace.as_secs_f64(),
                    limits.min_rate
                ),
            ));
        }
        self.over_budget.load(Ordering::Relaxed).then(|| limits.over_budget())
    }
}

/// Middleware on the API routes: applies [`BodyLimits`] to the request body.
pub(super) async fn guard_body(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    let limits = &state.body_limits;
    let declared = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_bytes as u64) {
        return limits.too_large().into_response();
    }
    // A declared size takes its budget now; a chunked body as it arrives.
    let upfront = match declared {
        Some(0) | None => None,
        Some(bytes) => match limits.reserve(kib(bytes as usize)).await {
            Ok(permit) => Some(permit),
            Err(e) => return e.into_response(),
        },
    };
    let watch = Arc::new(BodyWatch::default());
    let (mut parts, body) = request.into_parts();
    parts.extensions.insert(watch.clone());
    let paced = PacedBody {
        inner: body,
        started: Instant::now(),
        received: 0,
        deadline: Box::pin(tokio::time::sleep(limits.grace)),
        state: state.clone(),
        budget: upfront.is_none().then(|| limits.budget.clone()),
        watch: watch.clone(),
    };
    let response = next.run(Request::from_parts(parts, Body::new(paced))).await;
    drop((upfront, watch));
    response
}

/// Why a body was cut off.
#[derive(Debug, thiserror::Error)]
enum BodyCut {
    #[error("the request body stopped arriving")]
    Stalled,
    #[error("no room for the request body")]
    OverBudget,
}

/// A request body that must keep arriving and stay within the budget.
struct PacedBody {
    inner: Body,
    started: Instant,
    received: u64,
    deadline: Pin<Box<Sleep>>,
    state: SharedState,
    /// Set for a body of unknown size, which takes budget as it arrives.
    budget: Option<Arc<Semaphore>>,
    watch: Arc<BodyWatch>,
}

impl PacedBody {
    /// Takes budget for the bytes received so far; false when there is none.
    fn take_budget(&mut self) -> bool {
        let Some(budget) = &self.budget else { return true };
        let mut taken = self.watch.taken.lock().expect("no panics while holding it");
        let held = taken.as_ref().map_or(0, OwnedSemaphorePermit::num_permits);
        let needed = kib(self.received as usize).saturating_sub(held);
        if needed == 0 {
            return true;
        }
        match budget.clone().try_acquire_many_owned(needed as u32) {
            Ok(permit) => {
                match taken.as_mut() {
                    Some(held) => held.merge(permit),
                    None => *taken = Some(permit),
                }
                true
            }
            Err(_) => false,
        }
    }

    fn cut(&self, why: BodyCut) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let flag = match why {
            BodyCut::Stalled => &self.watch.stalled,
            BodyCut::OverBudget => &self.watch.over_budget,
        };
        flag.store(true, Ordering::Relaxed);
        Poll::Ready(Some(Err(axum::Error::new(why))))
    }
}

impl http_body::Body for PacedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    if !this.take_budget() {
                        return this.cut(BodyCut::OverBudget);
                    }
                    let next = this.state.body_limits.deadline(this.started, this.received);
                    this.deadline.as_mut().reset(next);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending if this.deadline.as_mut().poll(cx).is_ready() => this.cut(BodyCut::Stalled),
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
