//! The HTTP/1 server loop of every endpoint roomstream serves (the API, the operators' `/readyz`,
//! `/metrics`): `axum::serve`, plus the one thing it lacks — a timer, so that a client that does not
//! send its request headers in time is disconnected (hyper's header-read timeout; without a timer it
//! never runs, and slow clients could hold sockets forever).

use std::future::Future;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

/// How long the operators' endpoints (`/readyz`, `/metrics` of the processor and the sinks) wait for
/// a request's headers.
pub const OPS_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` over HTTP/1 on `listener` until `stop` completes, then lets the connections finish
/// their requests. Like `axum::serve`, plus a timer: a client that has not sent a request's headers
/// within `header_timeout` is disconnected (axum::serve sets no timer, so hyper's own 30 s default
/// never applies).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    header_timeout: Duration,
    stop: impl Future<Output = ()>,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let graceful = GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors and the like: wait, as axum::serve does, and go on.
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let conn =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("connection: {e}");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
