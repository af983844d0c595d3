//! The admin listener: `GET /metrics` (Prometheus text) and `GET /healthz`, on a TCP address of its own,
//! off unless configured. Read-only by design: no route changes state, so it needs no authentication;
//! anything else is answered 404 or 405. A tiny hand-rolled HTTP/1.1 responder (one request per
//! connection) instead of a web framework: two fixed routes do not justify the dependency.
//!
//! It knows nothing of the relay's internals: the server hands it [`Probes`], functions that render the
//! metrics, tell whether the relay is draining and whether its database answers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Largest request head read; a scrape is a few hundred bytes.
const MAX_REQUEST: usize = 8 * 1024;

/// What the admin listener reads of the relay.
#[derive(Clone)]
pub struct Probes {
    /// `/metrics` in the Prometheus text format.
    pub metrics: Arc<dyn Fn() -> String + Send + Sync>,
    /// Whether the relay is draining (`/healthz` then answers 503).
    pub draining: Arc<dyn Fn() -> bool + Send + Sync>,
    /// Whether the database answers (`/healthz` answers 503 with the reason when not). It may block
    /// briefly: it is called on a blocking thread.
    pub database: Arc<dyn Fn() -> Result<(), String> + Send + Sync>,
}

/// Bind the listener (inside a tokio runtime).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let std = std::net::TcpListener::bind(addr)?;
    std.set_nonblocking(true)?;
    TcpListener::from_std(std)
}

pub async fn serve(listener: TcpListener, probes: Probes, token: CancellationToken) {
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::debug!("admin accept: {e}");
                    continue;
                }
            },
            _ = token.cancelled() => break,
        };
        let probes = probes.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(5), answer(stream, &probes)).await;
        });
    }
}

async fn answer(mut stream: TcpStream, probes: &Probes) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_REQUEST {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf);
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, body) = match (method, path) {
        ("GET", "/metrics") => ("200 OK", (probes.metrics)()),
        ("GET", "/healthz") if (probes.draining)() => ("503 Service Unavailable", "draining\n".to_owned()),
        ("GET", "/healthz") => {
            let database = probes.database.clone();
            match tokio::task::spawn_blocking(move || database()).await {
                Ok(Ok(())) => ("200 OK", "ok\n".to_owned()),
                Ok(Err(why)) => (
                    "503 Service Unavailable",
                    format!(
                        "database unreachable: {why} (live sessions go on; verified claims are refused)\n"
                    ),
                ),
                Err(_) => ("503 Service Unavailable", "the database check failed\n".to_owned()),
            }
        }
        ("GET", _) => ("404 Not Found", "not found\n".to_owned()),
        _ => ("405 Method Not Allowed", "read-only\n".to_owned()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
