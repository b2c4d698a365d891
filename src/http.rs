//! A small HTTP/1.1 client on hyper for `hark bench` and `hark healthcheck`:
//! plain `http://` to a hark server, one kept-alive connection per client.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// `host:port` and `/path?query` of an `http://` URL.
pub fn split_url(url: &str) -> Result<(&str, &str), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("{url}: only http:// URLs are supported"))?;
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
    if authority.is_empty() {
        return Err(format!("{url}: no host"));
    }
    Ok((authority, path))
}

/// One connection to a server.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    authority: String,
}

impl Connection {
    /// Connects to `host:port`.
    pub async fn open(authority: &str) -> Result<Self, String> {
        let stream = TcpStream::connect(authority).await.map_err(|e| format!("{authority}: {e}"))?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
        // Drives the connection; it ends when the connection closes.
        tokio::spawn(connection);
        Ok(Self { sender, authority: authority.to_string() })
    }

    /// Whether the server has closed the connection (as it may after an
    /// error response, or when it was idle).
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// Sends a request and reads the whole response: its status and body.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), String> {
        let mut request = Request::builder().method(method).uri(path).header(hyper::header::HOST, &self.authority);
        if let Some(content_type) = content_type {
            request = request.header(hyper::header::CONTENT_TYPE, content_type);
        }
        let request = request.body(Full::new(body)).map_err(|e| e.to_string())?;
        self.sender.ready().await.map_err(|e| e.to_string())?;
        let response = self.sender.send_request(request).await.map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok((status, body))
    }
}

#[cfg(test)]
mod tests {
    use super::split_url;

    #[test]
    fn urls_split_into_authority_and_path() {
        assert_eq!(split_url("http://127.0.0.1:8080/v1/transcribe?decoder=beam"), Ok(("127.0.0.1:8080", "/v1/transcribe?decoder=beam")));
        assert_eq!(split_url("http://localhost:8080"), Ok(("localhost:8080", "/")));
        assert!(split_url("https://example.com/").is_err());
        assert!(split_url("http:///x").is_err());
    }
}
