//! A deadline on the API's connections once they are open. hyper bounds how long a request's head
//! may take, not how long a connection may sit still afterwards: an HTTP/2 client that stops
//! sending (its stack still answering pings), or one that stops reading an answer, held its
//! connection, its task and the answer's plaintext for as long as it liked.
//!
//! The deadline moves with every byte either way, so a long answer that the client keeps reading,
//! or a long upload it keeps sending, is never cut; a connection on which nothing moves for that
//! long is closed, in the middle of an answer or between requests.

use std::future::{Future, Ready, ready};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::Accept;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::connection_limits::{Admission, ConnectionLimits};

/// The longest `idle` may be (a day), so that the deadline's arithmetic never overflows.
pub const MAX_IDLE: Duration = Duration::from_secs(86_400);

/// Gives each accepted TCP stream (before TLS) the idle deadline, once the listener's
/// [`ConnectionLimits`] admit it; one they do not is closed as it arrives.
#[derive(Clone, Debug)]
pub struct DeadlineAcceptor {
    idle: Duration,
    limits: Arc<ConnectionLimits>,
}

impl DeadlineAcceptor {
    pub fn new(idle: Duration, limits: ConnectionLimits) -> Self {
        Self {
            idle: idle.min(MAX_IDLE),
            limits: Arc::new(limits),
        }
    }
}

impl<S> Accept<TcpStream, S> for DeadlineAcceptor {
    type Stream = Deadlined;
    type Service = S;
    type Future = Ready<io::Result<(Deadlined, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let admission = stream
            .peer_addr()
            .ok()
            .and_then(|peer| self.limits.admit(peer.ip()));
        let Some(admission) = admission else {
            return ready(Err(io::Error::other("connection not admitted")));
        };
        let deadline = Box::pin(tokio::time::sleep(self.idle));
        ready(Ok((
            Deadlined {
                stream,
                idle: self.idle,
                deadline,
                _admission: admission,
            },
            service,
        )))
    }
}

/// A TCP stream that fails with `TimedOut` once nothing has moved on it, either way, for `idle`.
/// It holds its place under the listener's limits until dropped.
pub struct Deadlined {
    stream: TcpStream,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
    _admission: Admission,
}

impl Deadlined {
    fn moved(&mut self) {
        self.deadline.as_mut().reset(Instant::now() + self.idle);
    }

    /// A write's outcome: bytes written move the deadline; a write still pending fails once it
    /// has passed.
    fn after_write(
        &mut self,
        polled: Poll<io::Result<usize>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        match polled {
            Poll::Ready(result) => {
                if matches!(result, Ok(n) if n > 0) {
                    self.moved();
                }
                Poll::Ready(result)
            }
            Poll::Pending => self.expired(cx).map(Err),
        }
    }

    /// Called when the stream itself is pending: ready with an error once the deadline passed.
    fn expired(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(
                io::ErrorKind::TimedOut,
                "nothing moved on the connection for too long",
            )),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for Deadlined {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    this.moved();
                }
                Poll::Ready(result)
            }
            Poll::Pending => this.expired(cx).map(Err),
        }
    }
}

impl AsyncWrite for Deadlined {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.after_write(polled, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.after_write(polled, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.stream).poll_flush(cx) {
            Poll::Pending => this.expired(cx).map(Err),
            ready => ready,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A connection accepted by `acceptor`, and its client end.
    async fn accepted(acceptor: &DeadlineAcceptor) -> (io::Result<Deadlined>, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let accepted = acceptor.accept(stream, ()).await.map(|(stream, ())| stream);
        (accepted, client)
    }

    async fn pair(idle: Duration) -> (Deadlined, TcpStream) {
        let limits = ConnectionLimits::new(8, 8, Default::default());
        let (server, client) = accepted(&DeadlineAcceptor::new(idle, limits)).await;
        (server.unwrap(), client)
    }

    #[tokio::test]
    async fn connections_past_the_limit_are_refused_until_one_ends() {
        let limits = ConnectionLimits::new(2, 2, Default::default());
        let acceptor = DeadlineAcceptor::new(Duration::from_secs(60), limits);
        let (first, _c1) = accepted(&acceptor).await;
        let (second, _c2) = accepted(&acceptor).await;
        assert!(first.is_ok() && second.is_ok());
        let (third, _c3) = accepted(&acceptor).await;
        assert!(third.is_err(), "a third connection was accepted");
        drop(first);
        let (fourth, _c4) = accepted(&acceptor).await;
        assert!(fourth.is_ok(), "no room after a connection ended");
    }

    #[tokio::test]
    async fn a_still_connection_times_out_and_a_moving_one_does_not() {
        let idle = Duration::from_millis(400);
        let (mut server, mut client) = pair(idle).await;
        // A byte every 250 ms, well past the idle time in all: kept.
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            client.write_all(b"x").await.unwrap();
            let mut byte = [0u8; 1];
            server.read_exact(&mut byte).await.unwrap();
            // Writing counts as movement too.
            tokio::time::sleep(Duration::from_millis(250)).await;
            server.write_all(b"y").await.unwrap();
            client.read_exact(&mut byte).await.unwrap();
        }
        // Then nothing: the pending read fails once the idle time has passed.
        let started = Instant::now();
        let mut byte = [0u8; 1];
        let err = server.read(&mut byte).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= idle, "{:?}", started.elapsed());
    }
}
