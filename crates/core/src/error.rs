//! What kind of failure an error is, in terms every adapter understands:
//! each front end (HTTP statuses, gRPC codes, WebSocket close codes) maps
//! the kinds once, and every error of every domain carries a kind and a
//! stable machine-readable code beside its message.

/// The kinds of failure a recognition service reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is wrong: a bad parameter, a broken file, bad samples.
    Invalid,
    /// Well-formed, but a format, codec or sample rate hark does not read.
    Unsupported,
    /// Readable, but nothing to recognize, or more than allowed (no
    /// samples, audio over the length limit).
    Unprocessable,
    /// Over a size limit.
    TooLarge,
    /// The client stopped sending in time.
    ClientTimeout,
    /// Missing or wrong credentials.
    Unauthenticated,
    /// No such route or resource.
    NotFound,
    /// The route exists, not with this method.
    MethodNotAllowed,
    /// Over a limit per client.
    RateLimited,
    /// Not now (busy, overloaded, loading, shutting down): retry later.
    Unavailable,
    /// The server took longer than its limit.
    DeadlineExceeded,
    /// A fault of the server's own.
    Internal,
}

/// An error with a kind and a stable code (`"unsupported_format"`), which
/// clients can act on; its `Display` is the message for people.
pub trait Coded: std::error::Error {
    fn kind(&self) -> ErrorKind;
    fn code(&self) -> &'static str;
}
