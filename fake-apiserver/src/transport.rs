//! Transports: how clients reach the fake cluster.
//!
//! This module owns the in-process `kube::Client` (a tower service, no sockets) and the HTTP
//! server (hyper 1 over TCP) that kubectl, the Python client and kube-rs over HTTP use, plus the
//! kubeconfig written for it (mode 0600, replacing rather than following a symlink). The HTTP
//! layer adds what a real server's filters do before the API handlers: bearer-token
//! authentication (401 Unauthorized Status), the 3 MiB request body limit (413
//! RequestEntityTooLarge Status), the header, idle and body timeouts (a closed connection, or
//! 408 for a body), and the control path ([`crate::control::endpoint`]). Everything else goes
//! through the control layer ([`crate::control`]) to the [`ApiServer`].

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::api::{ApiServer, ResponseBody};
use crate::clock::SharedClock;
use crate::control::endpoint::{ControlEndpoint, ControlEndpointLayer};
use crate::control::{ApiService, BoxFuture, Control, ControlService};

pub use crate::control::BoxError;

/// The largest request body the real server reads (3 MiB); larger bodies get 413.
pub const MAX_REQUEST_BODY: usize = 3 * 1024 * 1024;

/// How much of an oversized body is read and thrown away before answering 413, so the client
/// is not cut off mid-upload and can read the answer.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

/// A `kube::Client` whose every request is served by `server` in this process, without fault
/// injection or request log (see [`FakeCluster::client`](crate::FakeCluster::client) for those).
///
/// ```
/// # async fn demo() {
/// use fake_apiserver::{ApiServer, SystemClock};
/// use std::sync::Arc;
/// let client = fake_apiserver::transport::in_process_client(ApiServer::new(Arc::new(SystemClock)));
/// let _ = client.apiserver_version().await;
/// # }
/// ```
pub fn in_process_client(server: ApiServer) -> kube::Client {
    service_client(ApiService::new(server))
}

/// A `kube::Client` over any tower service of `http::Request<Bytes>` (such as
/// [`FakeCluster::service`](crate::FakeCluster::service)). Its default namespace is `default`; it has no retry layer.
///
/// ```
/// # async fn demo() {
/// let cluster = fake_apiserver::FakeCluster::default();
/// let client = fake_apiserver::transport::service_client(cluster.service());
/// # let _ = client;
/// # }
/// ```
pub fn service_client<S>(service: S) -> kube::Client
where
    S: tower::Service<http::Request<Bytes>, Response = http::Response<ResponseBody>>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
        let service = service.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body: Bytes = body.collect().await?.to_bytes();
            service
                .oneshot(http::Request::from_parts(parts, body))
                .await
                .map_err(Into::into)
        }
    });
    kube::Client::new(service, "default")
}

/// What can go wrong starting the HTTP server or writing its kubeconfig.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The listen address is not a loopback address and non-loopback was not allowed.
    #[error(
        "refusing to listen on non-loopback address {0}: the fake API server has no real authentication; pass --allow-non-loopback (HttpOptions::allow_non_loopback) to do it anyway"
    )]
    NonLoopback(SocketAddr),
    /// Binding the socket failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// Writing the kubeconfig failed.
    #[error("cannot write kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// Options of the HTTP server.
///
/// ```
/// use fake_apiserver::transport::HttpOptions;
/// let options = HttpOptions { token: Some("secret".into()), ..HttpOptions::default() };
/// assert_eq!(options.listen.to_string(), "127.0.0.1:0");
/// ```
#[derive(Clone)]
pub struct HttpOptions {
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Bearer token every request must carry; `None` lets everyone in.
    pub token: Option<String>,
    /// Allow a listen address that is not loopback.
    pub allow_non_loopback: bool,
    /// Request body limit (default [`MAX_REQUEST_BODY`]).
    pub max_body: usize,
    /// How long a connection may take to send a request's headers, and how long an idle
    /// keep-alive connection stays open (default [`HEADER_TIMEOUT`]); then it is closed.
    pub header_timeout: Duration,
    /// How long a request's body may take to arrive (default [`BODY_TIMEOUT`]); then the
    /// request is answered 408 and the connection closed.
    pub body_timeout: Duration,
    /// The clock these timeouts run on (default: real time). A test passes a
    /// [`VirtualClock`](crate::VirtualClock) of its own to time a connection out without waiting.
    pub timeout_clock: Option<SharedClock>,
}

impl std::fmt::Debug for HttpOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpOptions")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "<hidden>"))
            .field("allow_non_loopback", &self.allow_non_loopback)
            .field("max_body", &self.max_body)
            .field("header_timeout", &self.header_timeout)
            .field("body_timeout", &self.body_timeout)
            .field(
                "timeout_clock",
                &self.timeout_clock.as_ref().map(|_| "<clock>"),
            )
            .finish()
    }
}

/// How long a request's headers may take (and an idle connection may stay): kube-apiserver's
/// `ReadHeaderTimeout`.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(32);

/// How long a request's body may take to arrive: the real server's request timeout.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(60);

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: None,
            allow_non_loopback: false,
            max_body: MAX_REQUEST_BODY,
            header_timeout: HEADER_TIMEOUT,
            body_timeout: BODY_TIMEOUT,
            timeout_clock: None,
        }
    }
}

/// A running HTTP server. Dropping it (or [`shutdown`](Self::shutdown)) stops accepting and
/// closes every open connection, watch streams included.
#[derive(Debug)]
pub struct HttpServer {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl HttpServer {
    /// The address it listens on (with the real port when port 0 was asked).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A `kube::Config` pointing at this server, with `token` as bearer token if given.
    pub fn kube_config(&self, token: Option<&str>) -> kube::Config {
        let mut config = kube::Config::new(self.url().parse().unwrap_or_default());
        config.auth_info.token = token.map(|token| token.to_string().into());
        config
    }

    /// Stops the server and waits until every connection task has ended.
    pub async fn shutdown(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Waits until the server stops (it stops only when shut down, so this serves forever).
    pub async fn wait(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Starts serving `cluster` over HTTP on `options.listen` (in this process, on the current
/// tokio runtime). Port 0 picks a free port; read it back with [`HttpServer::addr`].
///
/// ```
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use fake_apiserver::transport::{serve_http, HttpOptions};
/// let cluster = fake_apiserver::FakeCluster::default();
/// let server = serve_http(&cluster, HttpOptions::default()).await?;
/// let client = kube::Client::try_from(server.kube_config(None))?;
/// # let _ = client;
/// server.shutdown().await;
/// # Ok(()) }
/// ```
pub async fn serve_http<C: Servable>(
    cluster: &C,
    options: HttpOptions,
) -> Result<HttpServer, TransportError> {
    if !options.listen.ip().is_loopback() && !options.allow_non_loopback {
        return Err(TransportError::NonLoopback(options.listen));
    }
    let listener =
        TcpListener::bind(options.listen)
            .await
            .map_err(|source| TransportError::Bind {
                addr: options.listen,
                source,
            })?;
    let addr = listener
        .local_addr()
        .map_err(|source| TransportError::Bind {
            addr: options.listen,
            source,
        })?;
    let (shutdown, stop) = oneshot::channel();
    let timeout_clock: SharedClock = options
        .timeout_clock
        .clone()
        .unwrap_or_else(|| std::sync::Arc::new(crate::SystemClock));
    let timer = ClockTimer::new(timeout_clock.clone());
    let header_timeout = options.header_timeout;
    // The HTTP stack, as a real server's filters: authentication, then the body limit, then
    // the control path (`/fake-apiserver/v1/`, answered here, never faulted nor logged), then
    // the control layer and the API server.
    let stack = tower::ServiceBuilder::new()
        .layer(TokenAuthLayer::new(
            options.token.clone(),
            cluster.control().clone(),
        ))
        .layer(
            BodyLimitLayer::new(options.max_body, cluster.control().clone())
                .timeout(timeout_clock.clone(), options.body_timeout),
        )
        .layer(ControlEndpointLayer::new(cluster.control().clone()))
        .service(cluster.service());
    let task = tokio::spawn(accept_loop(
        listener,
        stack,
        timer,
        header_timeout,
        async move {
            let _ = stop.await;
        },
    ));
    Ok(HttpServer {
        addr,
        shutdown: Some(shutdown),
        task: Some(task),
    })
}

/// What [`serve_http`] serves: a control layer (for logging refused requests) and the
/// controlled API service. [`FakeCluster`](crate::FakeCluster) is one.
pub trait Servable {
    /// The control layer's shared state.
    fn control(&self) -> &Control;
    /// The API server behind its control layer.
    fn service(&self) -> ControlService<ApiService>;
}

/// The HTTP service stack serving one connection's requests.
type Stack = TokenAuth<BodyLimit<ControlEndpoint<ControlService<ApiService>>>>;

async fn accept_loop(
    listener: TcpListener,
    stack: Stack,
    timer: ClockTimer,
    header_timeout: Duration,
    stop: impl Future<Output = ()>,
) {
    let mut connections = JoinSet::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else {
                    // Out of file descriptors and the like: wait a little and keep serving.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let Some((stream, gone)) = watch_peer(stream) else {
                    continue;
                };
                let stack = stack.clone();
                let timer = timer.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let stack = stack.clone();
                        let gone = gone.clone();
                        async move {
                            // An error (a fault rule's ConnectionDropped) makes hyper close the
                            // connection without writing a response.
                            stack
                                .oneshot(request)
                                .await
                                .map(|response| response.map(|body| UntilGone::new(body, gone)))
                                .map_err(|error| Aborted(error.to_string()))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .timer(timer)
                        // A client may shut its write side while it waits for the answer
                        // (raw sockets, some proxies): still answer it. A streaming answer (a
                        // watch) ends when the client's stream ends (`UntilGone`).
                        .half_close(true)
                        // Headers must arrive in time; hyper runs the same timer while a
                        // keep-alive connection waits for its next request, so an idle
                        // connection closes after it too.
                        .header_read_timeout(Some(header_timeout))
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            // Reap finished connection tasks so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

/// Watches a connection's read side from beside hyper: the returned receiver turns `true` once
/// the client's stream has ended (or broken), even while hyper is busy writing a watch and not
/// reading. The watcher peeks (never consumes) on a duplicate of the socket and stops with the
/// connection. `None` when the socket cannot be taken over (the connection is then dropped);
/// a socket that cannot be duplicated is served without a watcher.
fn watch_peer(
    stream: tokio::net::TcpStream,
) -> Option<(tokio::net::TcpStream, tokio::sync::watch::Receiver<bool>)> {
    let std = stream.into_std().ok()?;
    let copy = std.try_clone().ok();
    let stream = tokio::net::TcpStream::from_std(std).ok()?;
    let (tell, gone) = tokio::sync::watch::channel(false);
    if let Some(copy) = copy.and_then(|copy| tokio::net::TcpStream::from_std(copy).ok()) {
        tokio::spawn(async move {
            let mut probe = [0u8; 1];
            loop {
                tokio::select! {
                    // Every receiver dropped: the connection has ended.
                    () = tell.closed() => break,
                    peeked = copy.peek(&mut probe) => match peeked {
                        Ok(0) | Err(_) => {
                            let _ = tell.send(true);
                            break;
                        }
                        // Bytes waiting for hyper to read them (a pipelined request).
                        Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    },
                }
            }
        });
    }
    Some((stream, gone))
}

/// A response body that ends with an error (so hyper closes the connection) when it has
/// nothing to send and the client's stream has ended: a watch whose client left stops at once.
/// A body with data ready (every non-streaming answer) is always sent whole.
struct UntilGone {
    body: ResponseBody,
    gone: std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl UntilGone {
    fn new(body: ResponseBody, mut gone: tokio::sync::watch::Receiver<bool>) -> Self {
        let gone = Box::pin(async move {
            if gone.wait_for(|gone| *gone).await.is_err() {
                // No watcher on this connection: never gone.
                std::future::pending::<()>().await;
            }
        });
        Self { body, gone }
    }
}

/// The client went away while its answer was streaming.
#[derive(Debug, thiserror::Error)]
#[error("the client closed its connection")]
struct ClientGone;

impl http_body::Body for UntilGone {
    type Data = Bytes;
    type Error = ClientGone;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, ClientGone>>> {
        let this = self.get_mut();
        if let std::task::Poll::Ready(frame) = std::pin::Pin::new(&mut this.body).poll_frame(cx) {
            return std::task::Poll::Ready(
                frame.map(|frame| frame.map_err(|never| match never {})),
            );
        }
        match this.gone.as_mut().poll(cx) {
            std::task::Poll::Ready(()) => std::task::Poll::Ready(Some(Err(ClientGone))),
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// hyper's timer on a [`Clock`](crate::Clock): real time by default, a virtual clock in tests.
#[derive(Clone)]
struct ClockTimer {
    clock: SharedClock,
    /// A real instant and the clock's time at it: hyper's instants map onto the clock from here.
    base: (std::time::Instant, jiff::Timestamp),
}

impl ClockTimer {
    fn new(clock: SharedClock) -> Self {
        let base = (std::time::Instant::now(), clock.now());
        Self { clock, base }
    }
}

/// A clock's sleep made `Sync` for hyper (polled through `&mut`, so the lock is never taken).
struct SyncSleep(std::sync::Mutex<crate::clock::Sleep>);

impl Future for SyncSleep {
    type Output = ();

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        let sleep = self
            .get_mut()
            .0
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        sleep.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for SyncSleep {}

impl hyper::rt::Timer for ClockTimer {
    fn sleep(&self, duration: Duration) -> std::pin::Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(SyncSleep(std::sync::Mutex::new(self.clock.sleep(duration))))
    }

    fn sleep_until(
        &self,
        deadline: std::time::Instant,
    ) -> std::pin::Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep(deadline.saturating_duration_since(self.now()))
    }

    fn now(&self) -> std::time::Instant {
        let elapsed = self.clock.now().duration_since(self.base.1);
        let elapsed = Duration::try_from(elapsed).unwrap_or(Duration::ZERO);
        self.base.0 + elapsed
    }
}

/// The HTTP service failed (a fault rule dropped the connection): hyper closes the
/// connection without a response.
#[derive(Debug, thiserror::Error)]
#[error("request aborted: {0}")]
struct Aborted(String);

/// A tower layer refusing, with the real 401 Unauthorized Status, every request without
/// `Authorization: Bearer <token>` (none when the token is `None`). Refusals are logged.
///
/// ```
/// use fake_apiserver::transport::TokenAuthLayer;
/// let cluster = fake_apiserver::FakeCluster::default();
/// let layer = TokenAuthLayer::new(Some("t".into()), cluster.control().clone());
/// # let _ = layer;
/// ```
#[derive(Clone, Debug)]
pub struct TokenAuthLayer {
    expected: Option<String>,
    control: Control,
}

impl TokenAuthLayer {
    /// Requires `token` (when `Some`); logs refusals in `control`'s request log.
    pub fn new(token: Option<String>, control: Control) -> Self {
        Self {
            expected: token.map(|t| format!("Bearer {t}")),
            control,
        }
    }
}

impl<S> tower::Layer<S> for TokenAuthLayer {
    type Service = TokenAuth<S>;

    fn layer(&self, inner: S) -> TokenAuth<S> {
        TokenAuth {
            layer: self.clone(),
            inner,
        }
    }
}

/// The service of [`TokenAuthLayer`].
#[derive(Clone, Debug)]
pub struct TokenAuth<S> {
    layer: TokenAuthLayer,
    inner: S,
}

impl<S, B> tower::Service<http::Request<B>> for TokenAuth<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<ResponseBody>, Error = BoxError>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<ResponseBody>;
    type Error = BoxError;
    type Future = BoxFuture<Result<Self::Response, BoxError>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let authorized = self.layer.expected.as_ref().is_none_or(|expected| {
            request
                .headers()
                .get(http::header::AUTHORIZATION)
                .is_some_and(|value| value.as_bytes() == expected.as_bytes())
        });
        if !authorized {
            self.layer.control.log_rejected(
                request.method(),
                request.uri(),
                request.headers(),
                401,
            );
            let response = failure(401, "Unauthorized", "Unauthorized").response();
            return Box::pin(async move { Ok(response) });
        }
        Box::pin(self.inner.call(request))
    }
}

/// A tower layer reading an HTTP body of at most `max` bytes into memory; a larger one gets
/// the real 413 RequestEntityTooLarge Status (and the connection closes), a broken one 400.
/// Refusals are logged.
#[derive(Clone)]
pub struct BodyLimitLayer {
    max: usize,
    control: Control,
    timeout: Option<(SharedClock, Duration)>,
}

impl std::fmt::Debug for BodyLimitLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyLimitLayer")
            .field("max", &self.max)
            .field("timeout", &self.timeout.as_ref().map(|(_, d)| d))
            .finish_non_exhaustive()
    }
}

impl BodyLimitLayer {
    /// Bodies up to `max` bytes pass; refusals are logged in `control`'s request log.
    pub fn new(max: usize, control: Control) -> Self {
        Self {
            max,
            control,
            timeout: None,
        }
    }

    /// A body that has not arrived whole after `limit` on `clock` gets 408 (and the
    /// connection closes).
    pub fn timeout(mut self, clock: SharedClock, limit: Duration) -> Self {
        self.timeout = Some((clock, limit));
        self
    }
}

impl<S> tower::Layer<S> for BodyLimitLayer {
    type Service = BodyLimit<S>;

    fn layer(&self, inner: S) -> BodyLimit<S> {
        BodyLimit {
            layer: self.clone(),
            inner,
        }
    }
}

/// The service of [`BodyLimitLayer`].
#[derive(Clone, Debug)]
pub struct BodyLimit<S> {
    layer: BodyLimitLayer,
    inner: S,
}

impl<S> tower::Service<http::Request<hyper::body::Incoming>> for BodyLimit<S>
where
    S: tower::Service<
            http::Request<Bytes>,
            Response = http::Response<ResponseBody>,
            Error = BoxError,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<ResponseBody>;
    type Error = BoxError;
    type Future = BoxFuture<Result<Self::Response, BoxError>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        // The inner service is driven to readiness in `call` (after the body is read).
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<hyper::body::Incoming>) -> Self::Future {
        let layer = self.layer.clone();
        let inner = self.inner.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let declared = parts
                .headers
                .get(http::header::CONTENT_LENGTH)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse::<u64>().ok());
            let read = read_body(body, layer.max, declared);
            let read = match &layer.timeout {
                Some((clock, limit)) => tokio::select! {
                    read = read => read,
                    () = clock.sleep(*limit) => Err(BodyError::TimedOut(*limit)),
                },
                None => read.await,
            };
            let body = match read {
                Ok(body) => body,
                Err(BodyError::TimedOut(limit)) => {
                    layer
                        .control
                        .log_rejected(&parts.method, &parts.uri, &parts.headers, 408);
                    let mut response = failure(
                        408,
                        "Timeout",
                        &format!(
                            "the request body did not arrive within {}s",
                            limit.as_secs_f64()
                        ),
                    )
                    .response();
                    response.headers_mut().insert(
                        http::header::CONNECTION,
                        http::HeaderValue::from_static("close"),
                    );
                    return Ok(response);
                }
                Err(BodyError::TooLarge) => {
                    layer
                        .control
                        .log_rejected(&parts.method, &parts.uri, &parts.headers, 413);
                    let mut response = failure(
                        413,
                        "RequestEntityTooLarge",
                        &format!("Request entity too large: limit is {}", layer.max),
                    )
                    .response();
                    response.headers_mut().insert(
                        http::header::CONNECTION,
                        http::HeaderValue::from_static("close"),
                    );
                    return Ok(response);
                }
                Err(BodyError::Broken(error)) => {
                    // The client broke the body off (or sent broken chunked framing).
                    layer
                        .control
                        .log_rejected(&parts.method, &parts.uri, &parts.headers, 400);
                    return Ok(failure(
                        400,
                        "BadRequest",
                        &format!("error reading request body: {error}"),
                    )
                    .response());
                }
            };
            inner.oneshot(http::Request::from_parts(parts, body)).await
        })
    }
}

enum BodyError {
    TooLarge,
    TimedOut(Duration),
    Broken(String),
}

/// Reads a request body of at most `max` bytes. A larger one is read on (and thrown away) up
/// to [`DRAIN_LIMIT`] so the client finishes sending and can read the 413; past that (or when
/// the declared length is past it) reading stops and the connection is closed after the 413.
async fn read_body(
    mut body: hyper::body::Incoming,
    max: usize,
    declared: Option<u64>,
) -> Result<Bytes, BodyError> {
    if declared.is_some_and(|length| length > DRAIN_LIMIT as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut buffer = bytes::BytesMut::new();
    let mut total: usize = 0;
    let mut too_large = declared.is_some_and(|length| length > max as u64);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| BodyError::Broken(error.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        total = total.saturating_add(data.len());
        if total > max {
            too_large = true;
            buffer.clear();
        }
        if too_large {
            if total > DRAIN_LIMIT {
                break;
            }
        } else {
            buffer.extend_from_slice(&data);
        }
    }
    if too_large {
        Err(BodyError::TooLarge)
    } else {
        Ok(buffer.freeze())
    }
}

/// A failure Status with the given code, reason and message (the API server's one builder).
fn failure(code: u16, reason: &str, message: &str) -> crate::api::ApiError {
    crate::api::ApiError::status(code, reason, message, None)
}

/// The kubeconfig for a server at `url`: cluster `fake`, user `fake` (with `token` if given),
/// context `fake` as current-context, namespace `default`.
///
/// ```
/// let config = fake_apiserver::transport::kubeconfig("http://127.0.0.1:8080", Some("t"));
/// assert_eq!(config.current_context.as_deref(), Some("fake"));
/// ```
pub fn kubeconfig(url: &str, token: Option<&str>) -> kube::config::Kubeconfig {
    use kube::config::{
        AuthInfo, Cluster, Context, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext,
    };
    Kubeconfig {
        clusters: vec![NamedCluster {
            name: "fake".to_string(),
            cluster: Some(Cluster {
                server: Some(url.to_string()),
                ..Cluster::default()
            }),
            ..NamedCluster::default()
        }],
        auth_infos: vec![NamedAuthInfo {
            name: "fake".to_string(),
            auth_info: Some(AuthInfo {
                token: token.map(|token| token.to_string().into()),
                ..AuthInfo::default()
            }),
            ..NamedAuthInfo::default()
        }],
        contexts: vec![NamedContext {
            name: "fake".to_string(),
            context: Some(Context {
                cluster: "fake".to_string(),
                user: Some("fake".to_string()),
                namespace: Some("default".to_string()),
                ..Context::default()
            }),
            ..NamedContext::default()
        }],
        current_context: Some("fake".to_string()),
        kind: Some("Config".to_string()),
        api_version: Some("v1".to_string()),
        ..Kubeconfig::default()
    }
}

/// Writes [`kubeconfig`] to `path` (as JSON, which kubectl and every YAML reader accept).
///
/// ```
/// let path = std::env::temp_dir().join("fake-apiserver-doc-kubeconfig");
/// fake_apiserver::transport::write_kubeconfig(&path, "http://127.0.0.1:8080", None).unwrap();
/// # std::fs::remove_file(path).ok();
/// ```
pub fn write_kubeconfig(path: &Path, url: &str, token: Option<&str>) -> Result<(), TransportError> {
    let error = |source| TransportError::Kubeconfig {
        path: path.display().to_string(),
        source,
    };
    let text = serde_json::to_string_pretty(&kubeconfig(url, token))
        .map_err(|e| error(std::io::Error::other(e)))?;
    write_private_file(path, (text + "\n").as_bytes()).map_err(error)
}

/// Writes `contents` to `path` readable by its owner only (mode 0600 on Unix), for files that
/// hold the token: written to a new file beside it, then renamed over `path`, so a symlink at
/// `path` is replaced (never followed) and a reader never sees half a file.
///
/// ```
/// let path = std::env::temp_dir().join(format!("fake-apiserver-doc-private-{}", std::process::id()));
/// fake_apiserver::transport::write_private_file(&path, b"secret\n").unwrap();
/// # #[cfg(unix)] {
/// use std::os::unix::fs::PermissionsExt;
/// assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
/// # }
/// # std::fs::remove_file(path).ok();
/// ```
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the path names no file (it ends in `..` or `/`)",
        )
    })?;
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut temporary_name = std::ffi::OsString::from(".");
    temporary_name.push(name);
    temporary_name.push(format!(".{}.{n}.tmp", std::process::id()));
    let temporary = path.with_file_name(temporary_name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&temporary).and_then(|mut file| {
        file.write_all(contents)?;
        file.sync_all()
    });
    let renamed = written.and_then(|()| std::fs::rename(&temporary, path));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    renamed
}
