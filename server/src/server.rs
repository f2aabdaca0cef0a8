//! Starting and stopping the fronts.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use flume_store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::broadcast::Hub;
use crate::keylocks::KeyLocks;
use crate::limits::{ConnLimit, LimitedListener};
use crate::metrics::Metrics;
use crate::{ServerConfig, ServerError, http, memcached};

/// A running server: the HTTP API and the memcached front over one [`Store`].
///
/// Dropping it without [`shutdown`](Server::shutdown) leaves the fronts running until the
/// runtime stops.
pub struct Server {
    http: Option<SocketAddr>,
    memcached: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    grace: Duration,
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })
}

fn local(listener: &TcpListener, addr: SocketAddr) -> Result<SocketAddr, ServerError> {
    listener
        .local_addr()
        .map_err(|source| ServerError::Bind { addr, source })
}

impl Server {
    /// Bind the configured addresses and start serving `store`. Use port 0 to let the system
    /// pick a port; [`http_addr`](Server::http_addr) and
    /// [`memcached_addr`](Server::memcached_addr) say which.
    ///
    /// # Errors
    /// [`ServerError::Bind`] when an address is taken or not allowed;
    /// [`ServerError::Memcached`] when the memcached front is on and the store has no
    /// key-value view or the collection name is invalid. Nothing is left running on error.
    pub async fn start(store: Arc<Store>, config: ServerConfig) -> Result<Server, ServerError> {
        let limits = config.limits.clone();
        let metrics = Arc::new(Metrics::default());
        let locks = Arc::new(KeyLocks::new());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let engine = match config.memcached {
            Some(_) => Some(Arc::new(
                memcached::Engine::new(
                    Arc::clone(&store),
                    &config.memcached_collection,
                    Arc::clone(&locks),
                    Arc::clone(&metrics),
                    &limits,
                )
                .map_err(ServerError::Memcached)?,
            )),
            None => None,
        };
        let http_listener = match config.http {
            Some(addr) => Some((bind(addr).await?, addr)),
            None => None,
        };
        let mc_listener = match config.memcached {
            Some(addr) => Some((bind(addr).await?, addr)),
            None => None,
        };
        let mut server = Server {
            http: None,
            memcached: None,
            shutdown,
            tasks: Vec::new(),
            grace: config.shutdown_grace,
        };
        if let Some((listener, addr)) = http_listener {
            server.http = Some(local(&listener, addr)?);
            let (hub, hub_task) = Hub::start(
                Arc::clone(store.db().log()),
                limits.subscriber_buffer_bytes,
                Arc::clone(&metrics),
                shutdown_rx.clone(),
            );
            server.tasks.push(hub_task);
            let state = http::AppState {
                store: Arc::clone(&store),
                hub,
                metrics: Arc::clone(&metrics),
                locks: Arc::clone(&locks),
                limits: limits.clone(),
                shutdown: shutdown_rx.clone(),
            };
            let listener = LimitedListener {
                listener,
                limit: ConnLimit::new(limits.max_connections),
                idle: limits.idle_timeout,
                gauge: metrics.http_connections.clone(),
                rejected: Arc::clone(&metrics.connections_rejected),
            };
            let mut stop = shutdown_rx.clone();
            let serve =
                axum::serve(listener, http::router(state)).with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                });
            server.tasks.push(tokio::spawn(async move {
                let _ = serve.await;
            }));
        }
        if let (Some((listener, addr)), Some(engine)) = (mc_listener, engine) {
            server.memcached = Some(local(&listener, addr)?);
            let limit = ConnLimit::new(limits.max_connections);
            server.tasks.push(tokio::spawn(memcached::serve(
                listener,
                engine,
                limit,
                limits.idle_timeout,
                shutdown_rx.clone(),
                config.shutdown_grace,
            )));
        }
        Ok(server)
    }

    /// The bound HTTP address, if HTTP is on.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http
    }

    /// The bound memcached address, if the memcached front is on.
    pub fn memcached_addr(&self) -> Option<SocketAddr> {
        self.memcached
    }

    /// Stop gracefully: stop accepting, let requests in progress finish (every acknowledged
    /// write has been replied to), end live streams (SSE clients get an `event: close` naming
    /// the last id, to resume from), close connections; after the grace period, drop what is
    /// left. The store stays open: close it afterwards.
    pub async fn shutdown(self) {
        self.shutdown.send_replace(true);
        let mut tasks = self.tasks;
        let all = futures::future::join_all(tasks.iter_mut());
        // memcached waits `grace` itself; the HTTP server gets the same, plus a margin.
        if tokio::time::timeout(self.grace + Duration::from_secs(1), all)
            .await
            .is_err()
        {
            for t in &tasks {
                t.abort();
            }
        }
    }

    /// Serve until `signal` completes, then shut down gracefully.
    pub async fn run_until(self, signal: impl Future<Output = ()>) {
        signal.await;
        self.shutdown().await;
    }
}

/// Completes on SIGINT or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled.
///
/// # Errors
/// [`ServerError::Signal`] if the handlers cannot be installed.
pub fn shutdown_signal() -> Result<impl Future<Output = ()> + Send + 'static, ServerError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(ServerError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ServerError::Signal)?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

/// `flume serve` in one call: serve `store` until SIGINT/SIGTERM, shut down gracefully, then
/// close the store.
///
/// # Errors
/// As [`Server::start`] and [`shutdown_signal`]; the store's error when closing it.
pub async fn serve(store: Arc<Store>, config: ServerConfig) -> Result<(), ServerError> {
    let signal = shutdown_signal()?;
    let server = Server::start(Arc::clone(&store), config).await?;
    server.run_until(signal).await;
    store.close().await?;
    Ok(())
}
