//! The connection edge: accepting TCP connections, TLS, and handing them to hyper, under
//! timeouts and caps, so that no client can hold the server's sockets or descriptors.
//!
//! - A connection past the cap on open connections, in total or from one client address, is
//!   closed at accept: the newest excess is shed, never the connections already served.
//! - The TLS handshake, the first request's headers and every later request's headers each
//!   have a deadline; a connection on which nothing is read or written for `idle_seconds` is
//!   closed (HTTP/2 and upgraded WebSocket connections too).
//! - What is shed or timed out is counted in `/metrics` and logged at most once every
//!   [`LOG_EVERY`] per kind, with the number left unlogged, so an attack cannot flood the log.
//!
//! It decides nothing about requests: that is the router's job.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum_server::accept::Accept;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use latchkey_domain::location::TrustedProxies;
use latchkey_web::{ConnectionShed, ConnectionTimeout, Metrics};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use crate::certificate_listener::CertificateTls;
use crate::config::Limits;
use latchkey_web::certificates::ClientCertificate;

/// How long in-flight requests get to finish once shutdown starts.
const DRAIN: Duration = Duration::from_secs(10);

/// At most one log line per kind of event in this long.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// After a failed accept (out of descriptors, say), wait this long rather than spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

fn seconds(value: f64) -> Duration {
    Duration::from_secs_f64(value)
}

/// Serves `app` on `listener` until `shutdown` completes, then lets in-flight requests finish
/// (up to [`DRAIN`]) and closes what is left.
pub async fn serve(
    listener: std::net::TcpListener,
    app: Router,
    tls: Option<RustlsConfig>,
    limits: Limits,
    metrics: Arc<Metrics>,
    trusted_proxies: Arc<TrustedProxies>,
    shutdown: impl std::future::Future<Output = ()>,
) -> io::Result<()> {
    serve_edge(
        listener,
        app,
        tls,
        None,
        limits,
        metrics,
        trusted_proxies,
        shutdown,
    )
    .await
}

/// [`serve`] for the certificate host: every connection's TLS handshake requires a client
/// certificate (see `certificate_listener`), and its chain reaches each request as a
/// [`ClientCertificate`] extension. The same timeouts and caps apply.
pub async fn serve_client_certificates(
    listener: std::net::TcpListener,
    app: Router,
    tls: Arc<CertificateTls>,
    limits: Limits,
    metrics: Arc<Metrics>,
    trusted_proxies: Arc<TrustedProxies>,
    shutdown: impl std::future::Future<Output = ()>,
) -> io::Result<()> {
    serve_edge(
        listener,
        app,
        None,
        Some(tls),
        limits,
        metrics,
        trusted_proxies,
        shutdown,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn serve_edge(
    listener: std::net::TcpListener,
    app: Router,
    tls: Option<RustlsConfig>,
    client_certificates: Option<Arc<CertificateTls>>,
    limits: Limits,
    metrics: Arc<Metrics>,
    trusted_proxies: Arc<TrustedProxies>,
    shutdown: impl std::future::Future<Output = ()>,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    let mut builder = Builder::new(TokioExecutor::new());
    // hyper starts this timer whenever it waits for a request's head, so on HTTP/1.1 it also
    // bounds how long a kept-alive connection sits idle between requests.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(seconds(limits.header_read_seconds));
    builder.http2().timer(TokioTimer::new());
    let tls = tls.map(|config| {
        // Our own deadline (in `connection`) fires first and is counted; this one is a backstop.
        RustlsAcceptor::new(config).handshake_timeout(seconds(limits.tls_handshake_seconds * 2.0))
    });
    let edge = Arc::new(Edge {
        builder,
        app,
        tls,
        client_certificates,
        limits,
        metrics: metrics.clone(),
        log: EdgeLog::default(),
    });
    let caps = Arc::new(Caps {
        census: Mutex::new(Census::default()),
        max_total: limits.max_connections,
        max_per_address: limits.max_connections_per_address,
        exempt: trusted_proxies,
        metrics,
    });
    let running = Arc::new(Running::default());
    let (stop, stopped) = watch::channel(Stop::Serving);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    Metrics::inc(&edge.metrics.accept_errors);
                    if let Some(unlogged) = edge.log.accept.take() {
                        tracing::warn!(%error, unlogged, "accepting a connection failed");
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let admitted = match caps.admit(peer.ip()) {
            Ok(admitted) => admitted,
            Err(why) => {
                edge.metrics.shed(why);
                if let Some(unlogged) = edge.log.shed.take() {
                    tracing::warn!(
                        client = %peer.ip(),
                        cap = why.label(),
                        unlogged,
                        "closed a new connection: too many open connections"
                    );
                }
                drop(tcp);
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let task = running.start();
        tokio::spawn(connection(
            edge.clone(),
            tcp,
            peer,
            admitted,
            stopped.clone(),
            task,
        ));
    }
    drop(listener);
    let _ = stop.send(Stop::Draining);
    if tokio::time::timeout(DRAIN, running.finished())
        .await
        .is_err()
    {
        let _ = stop.send(Stop::Closing);
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Serving,
    /// Finish what is in flight, accept no new requests.
    Draining,
    /// Close now.
    Closing,
}

/// What every connection shares.
struct Edge {
    builder: Builder<TokioExecutor>,
    app: Router,
    tls: Option<RustlsAcceptor>,
    /// The certificate host's TLS, which requires a client certificate.
    client_certificates: Option<Arc<CertificateTls>>,
    limits: Limits,
    metrics: Arc<Metrics>,
    log: EdgeLog,
}

impl Edge {
    fn timed_out(&self, which: ConnectionTimeout, peer: SocketAddr) {
        self.metrics.timed_out(which);
        if let Some(unlogged) = self.log.timed_out.take() {
            tracing::info!(
                client = %peer.ip(),
                timeout = which.label(),
                unlogged,
                "closed a connection that took too long"
            );
        }
    }
}

async fn connection(
    edge: Arc<Edge>,
    tcp: TcpStream,
    peer: SocketAddr,
    admitted: Admitted,
    stop: watch::Receiver<Stop>,
    _task: RunningTask,
) {
    let idle = Arc::new(AtomicBool::new(false));
    // The census place goes with the socket, so an upgraded WebSocket still counts.
    let io = IdleWatch::new(
        tcp,
        seconds(edge.limits.idle_seconds),
        idle.clone(),
        admitted,
    );
    if let Some(client_certificates) = &edge.client_certificates {
        let handshake = tokio::time::timeout(
            seconds(edge.limits.tls_handshake_seconds),
            client_certificate_handshake(client_certificates, io),
        );
        let mut stop_handshake = stop.clone();
        let tls = tokio::select! {
            result = handshake => result,
            _ = stop_handshake.changed() => return,
        };
        match tls {
            Ok(Some(tls)) => {
                let chain: Vec<Vec<u8>> = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .map(|certs| certs.iter().map(|c| c.as_ref().to_vec()).collect())
                    .unwrap_or_default();
                let certificate = ClientCertificate(Arc::new(chain));
                serve_http(&edge, tls, peer, idle, stop, Some(certificate)).await
            }
            Ok(None) => {}
            Err(_) => edge.timed_out(ConnectionTimeout::TlsHandshake, peer),
        }
        return;
    }
    match &edge.tls {
        Some(acceptor) => {
            let handshake = tokio::time::timeout(
                seconds(edge.limits.tls_handshake_seconds),
                acceptor.accept(io, ()),
            );
            let mut stop_handshake = stop.clone();
            let tls = tokio::select! {
                result = handshake => result,
                _ = stop_handshake.changed() => return,
            };
            match tls {
                Ok(Ok((tls, _))) => serve_http(&edge, tls, peer, idle, stop, None).await,
                Ok(Err(_)) => {}
                Err(_) => edge.timed_out(ConnectionTimeout::TlsHandshake, peer),
            }
        }
        None => serve_http(&edge, io, peer, idle, stop, None).await,
    }
}

/// The certificate host's handshake: the configuration is chosen once the client's hello is
/// read, with the policy's current authorities. `None` when the handshake failed (no
/// certificate, a signature that does not verify, not TLS at all).
async fn client_certificate_handshake<S>(
    tls: &CertificateTls,
    io: S,
) -> Option<tokio_rustls::server::TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let start = tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io)
        .await
        .ok()?;
    let config = match tls.server_config().await {
        Ok(config) => config,
        Err(error) => {
            tracing::warn!(error = %error, "the certificate listener's TLS configuration failed");
            return None;
        }
    };
    start.into_stream(config).await.ok()
}

/// Serves HTTP/1.1 (with upgrades) or HTTP/2 on one connection, under the first-request
/// deadline, until it ends or the server stops.
async fn serve_http<S>(
    edge: &Edge,
    io: S,
    peer: SocketAddr,
    idle: Arc<AtomicBool>,
    mut stop: watch::Receiver<Stop>,
    certificate: Option<ClientCertificate>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (first_sent, mut first_request) = tokio::sync::oneshot::channel::<()>();
    let first_sent = Mutex::new(Some(first_sent));
    let app = edge.app.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        if let Some(certificate) = &certificate {
            request.extensions_mut().insert(certificate.clone());
        }
        if let Some(sent) = first_sent.lock().ok().and_then(|mut s| s.take()) {
            let _ = sent.send(());
        }
        app.clone().oneshot(request)
    });
    let conn = edge
        .builder
        .serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    let first_deadline = tokio::time::sleep(seconds(edge.limits.first_request_seconds));
    tokio::pin!(first_deadline);
    let mut waiting_for_first = true;
    let mut draining = false;
    let result = loop {
        tokio::select! {
            result = conn.as_mut() => break result,
            _ = &mut first_deadline, if waiting_for_first => {
                edge.timed_out(ConnectionTimeout::FirstRequest, peer);
                return;
            }
            _ = &mut first_request, if waiting_for_first => waiting_for_first = false,
            changed = stop.changed() => {
                let now = if changed.is_err() { Stop::Closing } else { *stop.borrow() };
                match now {
                    Stop::Closing => return,
                    Stop::Draining if !draining => {
                        draining = true;
                        conn.as_mut().graceful_shutdown();
                    }
                    _ => {}
                }
            }
        }
    };
    // A stalled body's idle error reaches the handler first, so the connection may end
    // without an error of its own: the flag says what closed it.
    if idle.load(Ordering::Relaxed) {
        edge.timed_out(ConnectionTimeout::Idle, peer);
    } else if let Err(error) = result
        && error
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_timeout)
    {
        edge.timed_out(ConnectionTimeout::HeaderRead, peer);
    }
}

/// Who holds the open connections: how many in total and per client address.
#[derive(Default)]
struct Census {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

struct Caps {
    census: Mutex<Census>,
    max_total: usize,
    max_per_address: usize,
    /// Reverse proxies: every client behind them shares their address.
    exempt: Arc<TrustedProxies>,
    metrics: Arc<Metrics>,
}

/// The address a per-address cap counts: IPv4 as it is, IPv6 by its /64 (one subscriber's
/// network), IPv4-mapped IPv6 as IPv4.
fn cap_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

impl Caps {
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admitted, ConnectionShed> {
        let key = cap_key(ip);
        let exempt = self.exempt.contains(ip);
        let mut census = self.census.lock().unwrap_or_else(|e| e.into_inner());
        if census.total >= self.max_total {
            return Err(ConnectionShed::Total);
        }
        let from_here = census.by_address.get(&key).copied().unwrap_or(0);
        if !exempt && from_here >= self.max_per_address {
            return Err(ConnectionShed::PerAddress);
        }
        census.total += 1;
        census.by_address.insert(key, from_here + 1);
        self.metrics
            .connections_open
            .fetch_add(1, Ordering::Relaxed);
        Ok(Admitted {
            caps: self.clone(),
            key,
        })
    }
}

/// Connection tasks still serving HTTP (upgraded WebSockets have left theirs), which shutdown
/// waits for.
#[derive(Default)]
struct Running {
    count: Mutex<usize>,
    done: Notify,
}

struct RunningTask(Arc<Running>);

impl Running {
    fn start(self: &Arc<Self>) -> RunningTask {
        *self.count.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        RunningTask(self.clone())
    }

    async fn finished(&self) {
        loop {
            let notified = self.done.notified();
            if *self.count.lock().unwrap_or_else(|e| e.into_inner()) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for RunningTask {
    fn drop(&mut self) {
        let mut count = self.0.count.lock().unwrap_or_else(|e| e.into_inner());
        *count -= 1;
        if *count == 0 {
            self.0.done.notify_waiters();
        }
    }
}

/// One open connection's place in the census, given back when it closes.
struct Admitted {
    caps: Arc<Caps>,
    key: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut census = self.caps.census.lock().unwrap_or_else(|e| e.into_inner());
        census.total = census.total.saturating_sub(1);
        if let Some(n) = census.by_address.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                census.by_address.remove(&self.key);
            }
        }
        self.caps
            .metrics
            .connections_open
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// Rate-limited logging of one kind of event: at most one line per [`LOG_EVERY`].
struct QuietLog {
    next: Mutex<Option<std::time::Instant>>,
    unlogged: AtomicU64,
}

impl Default for QuietLog {
    fn default() -> Self {
        QuietLog {
            next: Mutex::new(None),
            unlogged: AtomicU64::new(0),
        }
    }
}

impl QuietLog {
    /// `Some(events left unlogged since the last line)` when this one may be logged.
    fn take(&self) -> Option<u64> {
        let now = std::time::Instant::now();
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        if next.is_some_and(|at| now < at) {
            self.unlogged.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *next = Some(now + LOG_EVERY);
        Some(self.unlogged.swap(0, Ordering::Relaxed))
    }
}

#[derive(Default)]
struct EdgeLog {
    shed: QuietLog,
    timed_out: QuietLog,
    accept: QuietLog,
}

/// A connection's socket that fails with `TimedOut` once nothing has been read from or
/// written to it for `idle` while someone waits on it.
struct IdleWatch<S> {
    inner: S,
    idle: Duration,
    last_active: Instant,
    timer: Pin<Box<Sleep>>,
    fired: Arc<AtomicBool>,
    /// Released when the socket is closed.
    _admitted: Admitted,
}

impl<S> IdleWatch<S> {
    fn new(inner: S, idle: Duration, fired: Arc<AtomicBool>, admitted: Admitted) -> Self {
        let now = Instant::now();
        IdleWatch {
            inner,
            idle,
            last_active: now,
            timer: Box::pin(tokio::time::sleep_until(now + idle)),
            fired,
            _admitted: admitted,
        }
    }

    /// Called while the socket has nothing to give: the error once it has been idle too long.
    fn expired(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return None;
            }
            let deadline = self.last_active + self.idle;
            if Instant::now() >= deadline {
                self.fired.store(true, Ordering::Relaxed);
                return Some(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the connection was idle too long",
                ));
            }
            // Activity since the timer was set: wait for the rest of the new deadline.
            self.timer.as_mut().reset(deadline);
        }
    }

    /// What every write answers: bytes written count as activity, and a write that has to
    /// wait is where an idle connection is noticed.
    fn after_write(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match poll {
            Poll::Ready(result) => {
                if result.as_ref().is_ok_and(|n| *n > 0) {
                    self.last_active = Instant::now();
                }
                Poll::Ready(result)
            }
            Poll::Pending => match self.expired(cx) {
                Some(error) => Poll::Ready(Err(error)),
                None => Poll::Pending,
            },
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for IdleWatch<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    this.last_active = Instant::now();
                }
                Poll::Ready(result)
            }
            Poll::Pending => match this.expired(cx) {
                Some(error) => Poll::Ready(Err(error)),
                None => Poll::Pending,
            },
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for IdleWatch<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.after_write(cx, poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.after_write(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_by_their_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(cap_key(a), cap_key(b));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(cap_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn a_burst_of_events_logs_one_line_then_says_how_many_it_left_out() {
        let log = QuietLog::default();
        assert_eq!(log.take(), Some(0));
        for _ in 0..1000 {
            assert_eq!(log.take(), None);
        }
        *log.next.lock().unwrap() = Some(std::time::Instant::now());
        assert_eq!(log.take(), Some(1000));
    }
}
