//! Strongroom's HTTPS API and ops listener. Handlers parse, call the [`Vault`], and answer; every
//! decision lives in the service layer.

mod client_address;
mod connection;
mod connection_limits;
mod console;
pub mod error;
pub mod extract;
pub mod request_id;
mod routes;
mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, header};
use axum::routing::{delete, get, patch, post};
use axum::{Router, middleware};
use metrics_exporter_prometheus::PrometheusHandle;
use strongroom_core::{ErrorCode, Vault};
use tower::limit::ConcurrencyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::connection_limits::ConnectionLimits;

pub use client_address::{ProxyRange, TrustedProxies};
pub use connection::MAX_IDLE as MAX_CONNECTION_IDLE;
pub use error::{ApiError, ApiResult};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Where and how to listen.
#[derive(Clone, Debug)]
pub struct ListenConfig {
    pub api: SocketAddr,
    pub ops: SocketAddr,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    pub max_body_bytes: usize,
    /// How long in-flight requests may take to finish at shutdown.
    pub grace: Duration,
    /// How long a connection may go with nothing moving on it, either way.
    pub idle: Duration,
    /// Most connections open at once on each listener; more are closed as they arrive.
    pub max_connections: usize,
    /// Most of them from one client (an IPv4 address, an IPv6 /64; not a trusted proxy); 0: no
    /// share, the total alone.
    pub max_connections_per_client: usize,
    /// Reverse proxies whose `X-Forwarded-For` names the client (for the login throttle).
    pub trusted_proxies: TrustedProxies,
}

/// The addresses actually bound (port 0 picks a free one).
#[derive(Clone, Copy, Debug)]
pub struct Bound {
    pub api: SocketAddr,
    pub ops: SocketAddr,
}

/// The OpenAPI description of this API, written by hand next to the routes it describes.
const OPENAPI: &str = include_str!("../api/openapi.json");

async fn openapi() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such resource")
}

/// axum answers HEAD with a route's GET handler and drops the body: a read of customer data
/// would be decrypted and recorded as disclosed although nothing left. HEAD is answered like
/// any method a route does not have.
async fn refuse_head(
    request: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if request.method() == axum::http::Method::HEAD {
        return not_found().await.into_response();
    }
    next.run(request).await
}

/// Requests one HTTP/2 connection may have in flight (hyper's default is 200).
const MAX_STREAMS_PER_CONNECTION: u32 = 32;

/// Uploads read, scanned and sealed at once, per instance.
const UPLOADS_AT_ONCE: usize = 8;

/// How long a connection may take to send a request's head (and may stay idle between
/// requests), and how long a JSON body may take to arrive.
pub const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(20);

/// The body an upload of `max_file` bytes may need: its base64 and room for the name.
fn attachment_body_limit(max_file: u64) -> usize {
    let encoded = max_file.div_ceil(3).saturating_mul(4);
    usize::try_from(encoded.saturating_add(16 * 1024)).unwrap_or(usize::MAX)
}

/// The API router; shared by `serve` and the tests.
pub fn app(vault: Arc<Vault>, max_body_bytes: usize, trusted_proxies: TrustedProxies) -> Router {
    use routes::{admin, audit, auth, credentials, data, exports, governance, incidents, lockbox};
    let upload_limit = attachment_body_limit(vault.settings().attachment_max_bytes);
    let upload_body = data::UploadBody {
        limit: upload_limit,
        deadline: Duration::from_millis(vault.settings().attachment_body_timeout_ms),
    };
    let tenant_data = Router::new()
        .route(
            "/contacts",
            post(data::create_contact).get(data::list_contacts),
        )
        .route(
            "/contacts/{contact_id}",
            get(data::contact)
                .patch(data::update_contact)
                .delete(data::delete_contact),
        )
        .route("/cases", post(data::create_case).get(data::list_cases))
        .route("/cases/{case_id}", get(data::case).patch(data::update_case))
        .route("/cases/{case_id}/assign", post(data::assign_case))
        .route(
            "/cases/{case_id}/comments",
            post(data::add_comment).get(data::list_comments),
        )
        .route(
            "/cases/{case_id}/attachments",
            post(data::add_attachment)
                .layer::<_, std::convert::Infallible>(middleware::from_fn_with_state(
                    upload_body,
                    data::upload_body_in_time,
                ))
                // An upload is held whole (its body, the decoded file, the sealed copy) while it
                // is scanned: a few at a time bound that memory; the others wait their turn, and
                // a sender that trickles its body loses its turn after the deadline.
                .layer(ConcurrencyLimitLayer::new(UPLOADS_AT_ONCE))
                .layer(middleware::from_fn_with_state(
                    Arc::clone(&vault),
                    data::upload_caller_first,
                ))
                .get(data::list_attachments)
                .layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route(
            "/cases/{case_id}/attachments/{attachment_id}",
            get(data::attachment).delete(data::delete_attachment),
        )
        .route(
            "/cases/{case_id}/attachments/{attachment_id}/content",
            get(data::attachment_content),
        )
        .route("/access-log", get(audit::tenant_access_log))
        .route("/access-requests", post(lockbox::create).get(lockbox::list))
        .route(
            "/access-requests/{request_id}/approve",
            post(lockbox::approve),
        )
        .route("/access-requests/{request_id}/deny", post(lockbox::deny))
        .route(
            "/access-requests/{request_id}/revoke",
            post(lockbox::revoke),
        )
        .route(
            "/access-requests/{request_id}/review",
            post(lockbox::review),
        )
        .route("/grants", get(lockbox::grants))
        .route("/notifications", get(lockbox::notifications))
        .route("/incidents", get(incidents::for_tenant))
        .route(
            "/webhook-secret",
            get(lockbox::webhook_secret).post(lockbox::rotate_webhook_secret),
        )
        .route("/exports", post(exports::create).get(exports::list))
        .route("/exports/{export_id}", get(exports::get))
        .route("/exports/{export_id}/approve", post(exports::approve))
        .route("/exports/{export_id}/download", get(exports::download))
        .route("/instructions", patch(admin::update_instructions))
        .route("/keys", get(admin::keys))
        .route("/keys/rotate", post(admin::rotate_keys));
    Router::new()
        // Only the login reads the client's address (`client_address`): the trusted proxies are
        // added to its requests alone.
        .route(
            "/v1/auth/login",
            post(auth::login).layer(axum::Extension(Arc::new(trusted_proxies))),
        )
        .route("/v1/auth/logout", post(auth::logout))
        .route("/v1/me", get(auth::me))
        .route("/v1/me/cases", get(auth::my_cases))
        .route("/v1/me/confidentiality", post(auth::acknowledge))
        .route("/v1/me/password", post(auth::change_password))
        .route("/v1/me/mfa/totp", post(auth::start_totp))
        .route("/v1/me/mfa/totp/confirm", post(auth::confirm_totp))
        .route(
            "/v1/me/sessions",
            get(credentials::my_sessions).delete(credentials::revoke_my_sessions),
        )
        .route(
            "/v1/me/sessions/{session_id}",
            delete(credentials::revoke_my_session),
        )
        .route(
            "/v1/users/{user_id}/sessions",
            delete(credentials::revoke_user_sessions),
        )
        .route(
            "/v1/api-keys",
            post(credentials::create_api_key).get(credentials::api_keys),
        )
        .route("/v1/api-keys/{key_id}", delete(credentials::revoke_api_key))
        .route("/v1/confidentiality", get(auth::agreement))
        .route("/v1/tenants", post(admin::create_tenant))
        .route(
            "/v1/tenants/{tenant_id}",
            get(admin::tenant).delete(admin::delete_tenant),
        )
        .nest("/v1/tenants/{tenant_id}", tenant_data)
        .route("/v1/users", post(admin::create_user))
        .route("/v1/assignees", get(admin::assignees))
        .route(
            "/v1/users/{user_id}",
            get(admin::user).patch(admin::update_user),
        )
        .route("/v1/users/{user_id}/suspend", post(admin::suspend))
        .route("/v1/users/{user_id}/reactivate", post(admin::reactivate))
        .route(
            "/v1/users/{user_id}/mfa/reset",
            post(admin::reset_second_factor),
        )
        .route(
            "/v1/admin/inactivity-sweep",
            post(governance::sweep_inactive),
        )
        .route(
            "/v1/access-reviews",
            post(governance::create_review).get(governance::reviews),
        )
        .route("/v1/access-reviews/{review_id}", get(governance::review))
        .route(
            "/v1/access-reviews/{review_id}/decisions",
            post(governance::decide),
        )
        .route("/v1/incidents", get(incidents::list))
        .route("/v1/incidents/{incident_id}/close", post(incidents::close))
        .route("/v1/audit/checkpoint", get(audit::checkpoint))
        .route("/v1/audit/verifier-key", get(audit::verifier_key))
        .route("/v1/audit/entries", get(audit::entries))
        .route("/v1/audit/proofs/inclusion", get(audit::inclusion))
        .route("/v1/audit/proofs/consistency", get(audit::consistency))
        .route("/v1/openapi.json", get(openapi))
        .merge(console::router())
        .route_layer(middleware::from_fn(request_id::observe))
        .route_layer(middleware::from_fn(refuse_head))
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        // Every API answer holds customer data, a credential or an audit record: never cached. (The
        // console's files are small and change with the binary; they are not cached either.)
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        // The API speaks only HTTPS; a browser that once reached the console never tries
        // plain HTTP to this host again, where anyone on the path could answer.
        .layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        ))
        .layer(middleware::from_fn(request_id::middleware))
        .with_state(vault)
}

/// The ops router: health and metrics, nothing else.
pub fn ops_app(vault: Arc<Vault>, metrics: Option<PrometheusHandle>) -> Router {
    async fn healthz(
        State((vault, _)): State<(Arc<Vault>, Option<PrometheusHandle>)>,
    ) -> (axum::http::StatusCode, String) {
        match vault.ready().await {
            Ok(()) => (axum::http::StatusCode::OK, "ok".to_owned()),
            Err(why) => (axum::http::StatusCode::SERVICE_UNAVAILABLE, why.to_string()),
        }
    }
    async fn render(State((_, handle)): State<(Arc<Vault>, Option<PrometheusHandle>)>) -> String {
        handle.map(|h| h.render()).unwrap_or_default()
    }
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(render))
        .with_state((vault, metrics))
}

/// Installs the process-wide Prometheus recorder (once).
pub fn install_metrics() -> Option<PrometheusHandle> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .ok()
}

/// Loads the API listener's certificate and key as [`serve`] will, so that a start can be refused
/// before it does anything else.
pub fn check_tls(cert: &Path, key: &Path) -> Result<(), ServerError> {
    tls::server_config(cert, key).map(drop)
}

/// Serves the API over TLS and the ops listener over loopback HTTP until `shutdown` resolves, then
/// lets in-flight requests finish. `on_bound` learns the real addresses once both listen.
pub async fn serve(
    vault: Arc<Vault>,
    config: ListenConfig,
    metrics: Option<PrometheusHandle>,
    on_bound: impl FnOnce(Bound),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let tls = tls::server_config(&config.tls_cert, &config.tls_key)?;
    let ops_listener =
        std::net::TcpListener::bind(config.ops).map_err(|source| ServerError::Bind {
            addr: config.ops,
            source,
        })?;
    ops_listener.set_nonblocking(true)?;
    let ops_addr = ops_listener.local_addr()?;
    let api_listener =
        std::net::TcpListener::bind(config.api).map_err(|source| ServerError::Bind {
            addr: config.api,
            source,
        })?;
    api_listener.set_nonblocking(true)?;
    let api_addr = api_listener.local_addr()?;

    let handle = axum_server::Handle::new();
    let ops_handle = axum_server::Handle::new();
    let grace = config.grace;
    let (stopper, ops_stopper) = (handle.clone(), ops_handle.clone());
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: finishing in-flight requests");
        stopper.graceful_shutdown(Some(grace));
        ops_stopper.graceful_shutdown(Some(grace));
    });

    // The same deadlines as the API's: a client that trickles half a request, or goes still
    // after one, would otherwise hold an ops connection for ever, and enough of them make the
    // health check unreachable.
    let mut ops = axum_server::from_tcp(ops_listener)?
        .acceptor(connection::DeadlineAcceptor::new(
            config.idle,
            ConnectionLimits::new(
                config.max_connections,
                config.max_connections_per_client,
                TrustedProxies::default(),
            ),
        ))
        .first_request_timeout(REQUEST_HEAD_TIMEOUT)
        .handle(ops_handle);
    ops.http_builder()
        .http1()
        .header_read_timeout(REQUEST_HEAD_TIMEOUT);
    let ops = ops.serve(ops_app(Arc::clone(&vault), metrics).into_make_service());
    let tls = axum_server::tls_rustls::RustlsAcceptor::new(
        axum_server::tls_rustls::RustlsConfig::from_config(tls),
    )
    .acceptor(connection::DeadlineAcceptor::new(
        config.idle,
        ConnectionLimits::new(
            config.max_connections,
            config.max_connections_per_client,
            config.trusted_proxies.clone(),
        ),
    ));
    let mut api = axum_server::from_tcp(api_listener)?
        .acceptor(tls)
        .first_request_timeout(REQUEST_HEAD_TIMEOUT)
        .handle(handle);
    // axum-server turns hyper's header timeout off; a client trickling its headers (or keeping
    // a connection idle) would hold a connection for ever. After the first request the
    // connection's own deadline holds (`connection`), which pings would defeat: a peer's stack
    // answers them for it.
    api.http_builder()
        .http1()
        .header_read_timeout(REQUEST_HEAD_TIMEOUT);
    api.http_builder()
        .http2()
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION);
    // The peer's address reaches the login throttle (`client_address`).
    let api = api.serve(
        app(vault, config.max_body_bytes, config.trusted_proxies)
            .into_make_service_with_connect_info::<SocketAddr>(),
    );
    on_bound(Bound {
        api: api_addr,
        ops: ops_addr,
    });
    tracing::info!(api = %api_addr, ops = %ops_addr, "listening");
    let (api, ops) = tokio::join!(api, ops);
    api?;
    ops?;
    Ok(())
}
