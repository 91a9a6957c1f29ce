//! The load connections: one keep-alive HTTP/1.1 connection over TLS each, driven by hyper's
//! connection-level client.
//!
//! The load generator shares the machine's two cores with the server it measures, so every
//! microsecond it spends is one the server does not get. reqwest's pool, URL parsing and
//! redirect handling cost ~29 µs of CPU a request here; the connection-level client does the
//! same wire work (TLS, HTTP/1.1 framing, the whole body read) without them.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// What a load connection needs to reach one server.
#[derive(Clone)]
pub(super) struct Endpoint {
    addr: SocketAddr,
    tls: TlsConnector,
}

impl Endpoint {
    /// `api` is the listener's `ip:port`; `cert_pem` the only certificate trusted for it.
    pub(super) fn new(api: &str, cert_pem: &[u8]) -> Result<Self> {
        let addr: SocketAddr = api.parse().with_context(|| format!("address {api}"))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(cert_pem) {
            roots
                .add(cert.context("parsing tls/cert.pem")?)
                .context("trusting tls/cert.pem")?;
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS versions")?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            addr,
            tls: TlsConnector::from(Arc::new(config)),
        })
    }

    pub(super) async fn connect(&self) -> Result<LoadConnection> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connecting to {}", self.addr))?;
        tcp.set_nodelay(true)?;
        let name = ServerName::IpAddress(self.addr.ip().into());
        let tls = self.tls.connect(name, tcp).await.context("TLS handshake")?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .context("HTTP/1.1 handshake")?;
        tokio::spawn(connection);
        Ok(LoadConnection {
            sender,
            host: HeaderValue::try_from(self.addr.to_string())?,
        })
    }
}

pub(super) struct LoadConnection {
    sender: SendRequest<Full<Bytes>>,
    host: HeaderValue,
}

/// A request as the load phases send it: the body, when there is one, is JSON.
pub(super) struct LoadRequest<'a> {
    pub(super) method: Method,
    pub(super) path: &'a str,
    pub(super) bearer: &'a str,
    pub(super) purpose: Option<&'static str>,
    pub(super) json: Option<Bytes>,
}

impl LoadConnection {
    /// Sends one request and reads the whole body; any non-2xx is an error carrying its body.
    pub(super) async fn send(&mut self, r: LoadRequest<'_>) -> Result<(), String> {
        let request = self.build(r).map_err(|e| format!("request: {e:#}"))?;
        self.sender
            .ready()
            .await
            .map_err(|e| format!("transport: {e}"))?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| format!("transport: {e}"))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("{status}, body unreadable: {e}"))?
            .to_bytes();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("{status}: {}", String::from_utf8_lossy(&body)))
        }
    }

    fn build(&self, r: LoadRequest<'_>) -> Result<Request<Full<Bytes>>> {
        let mut b = Request::builder()
            .method(r.method)
            .uri(r.path)
            .header(HOST, self.host.clone())
            .header(AUTHORIZATION, format!("Bearer {}", r.bearer));
        if let Some(purpose) = r.purpose {
            b = b.header("access-purpose", purpose);
        }
        let body = match r.json {
            Some(json) => {
                b = b.header(CONTENT_TYPE, "application/json");
                Full::new(json)
            }
            None => Full::new(Bytes::new()),
        };
        b.body(body).map_err(|e| anyhow!(e))
    }
}
