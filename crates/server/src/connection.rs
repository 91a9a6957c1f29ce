//! Deadlines on the API's connections once they are open. hyper bounds how long a request's head
//! may take, not how long a connection may sit silent afterwards: an HTTP/2 client that stops
//! sending (its stack still answering pings), or one that stops reading an answer, held its
//! connection, its task and the answer's plaintext for as long as it liked.

use std::future::{Ready, ready};
use std::io;
use std::pin::Pin;
use std::time::Duration;

use axum_server::accept::Accept;
use tokio::net::TcpStream;
use tokio_io_timeout::TimeoutStream;

/// Wraps each accepted TCP stream (before TLS) in read and write inactivity deadlines.
#[derive(Clone, Copy, Debug)]
pub struct DeadlineAcceptor {
    read_idle: Duration,
    write_stalled: Duration,
}

impl DeadlineAcceptor {
    pub fn new(read_idle: Duration, write_stalled: Duration) -> Self {
        Self {
            read_idle,
            write_stalled,
        }
    }
}

impl<S> Accept<TcpStream, S> for DeadlineAcceptor {
    type Stream = Pin<Box<TimeoutStream<TcpStream>>>;
    type Service = S;
    type Future = Ready<io::Result<(Self::Stream, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let mut stream = TimeoutStream::new(stream);
        stream.set_read_timeout(Some(self.read_idle));
        stream.set_write_timeout(Some(self.write_stalled));
        ready(Ok((Box::pin(stream), service)))
    }
}
