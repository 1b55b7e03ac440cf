//! Serving HTTP/1 connections with limits no unauthenticated client can get
//! around:
//!
//! * **Header read timeout:** a connection must send complete request
//!   headers within `header_read_timeout` of opening, and each later
//!   request within `header_read_timeout` of its first byte (a silent socket
//!   or a slowloris client is closed).
//! * **Idle timeout:** a keep-alive connection with no request and no
//!   traffic for `idle_timeout` is closed. A connection with a request being
//!   answered is never idle, so long-polls (`?wait=`) last as long as asked.
//! * **Body stalls:** a request body that sends nothing for
//!   `header_read_timeout` is abandoned (the request fails, the connection
//!   closes), so a slow upload cannot hold a connection forever either.
//! * **Connection cap:** at most `max_connections` are served at once
//!   (default 80 % of the process's open-file limit). At the cap, the
//!   connection that has been waiting longest without a request being
//!   answered (silent, idle or half-sent) is closed to make room; only when
//!   every connection is busy answering do new ones wait in the kernel's
//!   accept queue.
//!
//! Every request carries the peer address ([`ConnectInfo`]).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use http_body::Body as _;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::Instant;
use tower::Service;

use crate::config::ConnectionLimits;

/// The open-file limit of this process (the soft limit), if known.
pub fn open_file_limit() -> Option<u64> {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .ok()
        .map(|(soft, _hard)| soft)
}

/// The connection cap `limits` asks for, checked against the open-file limit.
pub fn max_connections(limits: &ConnectionLimits) -> Result<usize, String> {
    let fd_limit = open_file_limit();
    match (limits.max_connections, fd_limit) {
        (Some(n), Some(fds)) if n as u64 > fds => Err(format!(
            "api.server.max_connections is {n}, above this process's open-file limit of {fds}: \
             lower it, or raise the limit (`ulimit -n`, LimitNOFILE=)"
        )),
        (Some(n), _) => Ok(n),
        (None, Some(fds)) => Ok(((fds as f64 * 0.8) as usize).clamp(1, usize::MAX / 2)),
        (None, None) => Ok(1024),
    }
}

/// What a connection has been doing, for its timeouts.
struct Activity {
    /// Requests being answered.
    inflight: usize,
    /// Last byte read or written (or when the connection opened).
    last: Instant,
    /// First byte of a request whose headers are not complete yet.
    request_started: Option<Instant>,
    /// True until the first request's headers are complete.
    fresh: bool,
    /// The request being answered has no body: bytes read meanwhile are the
    /// next (pipelined) request.
    bodyless: bool,
    /// Asked to close to make room under the connection cap.
    evicted: bool,
}

struct Tracker {
    activity: Mutex<Activity>,
    changed: Notify,
    opened: Instant,
    /// Told when a request ends here: the connection may be closed to
    /// make room again.
    answered: Arc<Notify>,
}

impl Tracker {
    fn new(answered: Arc<Notify>) -> Arc<Tracker> {
        let now = Instant::now();
        Arc::new(Tracker {
            answered,
            activity: Mutex::new(Activity {
                inflight: 0,
                last: now,
                request_started: None,
                fresh: true,
                bodyless: false,
                evicted: false,
            }),
            changed: Notify::new(),
            opened: now,
        })
    }

    fn read(&self) {
        let now = Instant::now();
        let mut a = crate::lock(&self.activity);
        a.last = now;
        let starts_request =
            !a.fresh && a.request_started.is_none() && (a.inflight == 0 || a.bodyless);
        if starts_request {
            // A new request begins (after an idle spell, or pipelined behind
            // a request without a body): its own deadline applies.
            a.request_started = Some(now);
            drop(a);
            self.changed.notify_one();
        }
    }

    /// Since when the connection has been waiting without a request being
    /// answered, if it is: the eviction order under the cap.
    fn waiting_since(&self) -> Option<Instant> {
        let a = crate::lock(&self.activity);
        if a.inflight > 0 || a.evicted {
            None
        } else if a.fresh {
            Some(self.opened)
        } else {
            Some(a.request_started.unwrap_or(a.last))
        }
    }

    fn evict(&self) {
        crate::lock(&self.activity).evicted = true;
        self.changed.notify_one();
    }

    fn wrote(&self) {
        crate::lock(&self.activity).last = Instant::now();
    }

    fn request_began(&self, bodyless: bool) {
        let mut a = crate::lock(&self.activity);
        a.inflight += 1;
        a.request_started = None;
        a.fresh = false;
        a.bodyless = bodyless;
    }

    fn request_ended(&self) {
        let mut a = crate::lock(&self.activity);
        a.inflight -= 1;
        a.last = Instant::now();
        drop(a);
        self.changed.notify_one();
        self.answered.notify_waiters();
    }

    /// When the connection must be closed, if nothing happens meanwhile.
    fn deadline(&self, limits: &ConnectionLimits) -> Option<Instant> {
        let a = crate::lock(&self.activity);
        if a.evicted {
            Some(self.opened)
        } else if a.inflight > 0 {
            None
        } else if a.fresh {
            Some(self.opened + limits.header_read_timeout)
        } else if let Some(started) = a.request_started {
            Some(started + limits.header_read_timeout)
        } else {
            Some(a.last + limits.idle_timeout)
        }
    }
}

/// The connections being served, to pick one to close at the cap.
#[derive(Default)]
struct Connections {
    next: std::sync::atomic::AtomicU64,
    open: Mutex<HashMap<u64, Arc<Tracker>>>,
    /// A request ended on one of them.
    answered: Arc<Notify>,
}

impl Connections {
    /// A tracker for a connection just accepted, counted at once (before
    /// its task runs: at the cap, the next accept must find it to close).
    fn add(&self) -> (u64, Arc<Tracker>) {
        let tracker = Tracker::new(self.answered.clone());
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        crate::lock(&self.open).insert(id, tracker.clone());
        (id, tracker)
    }

    fn remove(&self, id: u64) {
        crate::lock(&self.open).remove(&id);
    }

    /// Closes the connection that has waited longest without a request being
    /// answered; false when every connection is busy.
    fn evict_one(&self) -> bool {
        let open = crate::lock(&self.open);
        let victim = open
            .values()
            .filter_map(|t| t.waiting_since().map(|since| (since, t)))
            .min_by_key(|(since, _)| *since);
        match victim {
            Some((_, t)) => {
                t.evict();
                true
            }
            None => false,
        }
    }
}

/// A socket that reports its traffic to a [`Tracker`].
struct TrackedStream {
    inner: TcpStream,
    tracker: Arc<Tracker>,
}

impl AsyncRead for TrackedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.tracker.read();
        }
        polled
    }
}

impl AsyncWrite for TrackedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.tracker.wrote();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Marks a request as being answered until dropped (the response is ready,
/// or the connection went away).
struct InFlight(Arc<Tracker>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

/// Serves `app` on `listener` with `limits` until `shutdown` resolves, then
/// lets open requests finish (up to `limits.shutdown_grace`).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let cap = max_connections(&limits).map_err(io::Error::other)?;
    let slots = Arc::new(Semaphore::new(cap));
    let connections = Arc::new(Connections::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    'serve: loop {
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => p,
            // At the cap: make room by closing the connection that has
            // waited longest without a request; when every one is answering
            // one, wait for a slot or for a request to end, and look again.
            Err(_) => loop {
                let answered = connections.answered.notified();
                let mut answered = std::pin::pin!(answered);
                answered.as_mut().enable();
                let evicted = connections.evict_one();
                tokio::select! {
                    _ = &mut shutdown => break 'serve,
                    p = slots.clone().acquire_owned() => match p {
                        Ok(p) => break p,
                        Err(_) => break 'serve,
                    },
                    _ = answered, if !evicted => {}
                }
            },
        };
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors or a connection reset before accept:
                // wait a little instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let stop = stop_rx.clone();
        let connections = connections.clone();
        let (id, tracker) = connections.add();
        tokio::spawn(async move {
            serve_connection(stream, peer, app, limits, tracker, stop).await;
            connections.remove(id);
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection task holds a slot: all slots back means all done.
    let _ = tokio::time::timeout(limits.shutdown_grace, slots.acquire_many(cap as u32)).await;
    Ok(())
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: ConnectionLimits,
    tracker: Arc<Tracker>,
    mut stop: watch::Receiver<bool>,
) {
    let io = TokioIo::new(TrackedStream {
        inner: stream,
        tracker: tracker.clone(),
    });
    let in_service = tracker.clone();
    let stall = limits.header_read_timeout;
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let bodyless = req.body().size_hint().exact() == Some(0);
        let mut req = req.map(|body| axum::body::Body::new(StallGuard::new(body, stall)));
        req.extensions_mut().insert(ConnectInfo(peer));
        in_service.request_began(bodyless);
        let guard = InFlight(in_service.clone());
        let mut app = app.clone();
        async move {
            let response = app.call(req).await;
            drop(guard);
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // Our own header deadline (above) replaces hyper's.
    builder.header_read_timeout(None);
    let conn = builder.serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    let mut stopping = false;
    loop {
        let deadline = tracker.deadline(&limits);
        let expired = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
                return;
            }
            _ = tracker.changed.notified() => {}
            _ = expired => {
                // Look again: a byte may have arrived just now.
                if tracker.deadline(&limits).is_some_and(|at| at <= Instant::now()) {
                    tracing::debug!(%peer, "closing a silent, idle or evicted connection");
                    return;
                }
            }
            _ = stop.changed(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// A request body that fails when nothing arrives for `stall`: a client
/// cannot hold a connection by sending a body slowly, or not at all.
struct StallGuard {
    inner: Incoming,
    stall: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl StallGuard {
    fn new(inner: Incoming, stall: Duration) -> Self {
        StallGuard {
            inner,
            stall,
            timer: Box::pin(tokio::time::sleep(stall)),
        }
    }
}

impl http_body::Body for StallGuard {
    type Data = bytes::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let next = Instant::now() + self.stall;
                self.timer.as_mut().reset(next);
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => match self.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(format!(
                    "request body stalled: nothing received for {}",
                    osapi_api::format::go_duration(self.stall)
                )
                .into()))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
