//! The exporter's HTTP face, on axum over the caller's tokio runtime:
//!
//! | route | answer |
//! |---|---|
//! | `GET /probe?target=HOST:PORT&module=NAME` | one probe's metrics; `&debug=true` gives its report as text instead |
//! | `GET /metrics` | the exporter's own metrics |
//! | `GET /` | the modules and the recent probes (HTML) |
//! | `GET /logs?id=N` | one recent probe's report (text) |
//!
//! [`serve`] runs HTTP/1.1 connections with hyper, each bounded ([`HttpLimits`]): a few hundred at once, and a
//! client that does not send its request headers in time is dropped, so no wait of the server is unbounded.
//!
//! Metrics come in the Prometheus text format unless `Accept` asks for OpenMetrics
//! ([`Format::from_accept`]). A bad scrape gets a 400 with the reason in the body ([`crate::exporter::ProbeError::status`]). Every
//! probe is logged through the `log` callback, one line, with no password.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use super::{Exporter, Record, SCRAPE_TIMEOUT_HEADER};
use super::{Format, Pages};

/// Called once per scrape of `/probe` with one line to log (the CLI writes it to stderr).
pub type Log = Arc<dyn Fn(&str) + Send + Sync>;

#[derive(Clone)]
struct App {
    exporter: Arc<Exporter>,
    log: Log,
    pages: Pages,
}

fn text(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

fn plain(status: StatusCode, message: String) -> Response {
    text(
        status,
        "text/plain; charset=utf-8",
        format!("{message}\n").into_bytes(),
    )
}

/// A 200 with what `render` writes, or a 500 saying why it could not.
fn rendered(
    content_type: &'static str,
    render: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>,
) -> Response {
    let mut buf = Vec::new();
    match render(&mut buf) {
        Ok(()) => text(StatusCode::OK, content_type, buf),
        Err(e) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot render: {e}"),
        ),
    }
}

/// The line logged for a probe.
fn log_line(record: &Record) -> String {
    format!(
        "probe id={} module={:?} target={:?} success={} seconds={:.3} status={:?} message={:?}",
        record.id,
        record.module,
        record.target,
        u8::from(record.success()),
        record.outcome.seconds,
        record.outcome.status,
        record.outcome.message
    )
}

async fn probe(
    State(app): State<App>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let header_value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let result = app
        .exporter
        .probe(
            params.get("module").map(String::as_str),
            params.get("target").map(String::as_str),
            header_value(SCRAPE_TIMEOUT_HEADER),
        )
        .await;
    let record = match result {
        Ok(record) => record,
        Err(err) => {
            (app.log)(&format!(
                "refused status={} reason={:?}",
                err.status(),
                err.to_string()
            ));
            let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::BAD_REQUEST);
            return plain(status, err.to_string());
        }
    };
    (app.log)(&log_line(&record));
    if params.get("debug").is_some_and(|d| d == "true") {
        return rendered("text/plain; charset=utf-8", |buf| {
            (app.pages.debug)(&record, buf)
        });
    }
    let format = Format::from_accept(header_value(header::ACCEPT.as_str()));
    rendered(format.content_type(), |buf| {
        (app.pages.probe)(&record.outcome, format, buf)
    })
}

async fn metrics(State(app): State<App>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::from_accept(accept);
    let snapshot = app.exporter.snapshot();
    rendered(format.content_type(), |buf| {
        (app.pages.exporter)(&snapshot, format, buf)
    })
}

async fn index(State(app): State<App>) -> Response {
    let recent = app.exporter.recent();
    rendered("text/html; charset=utf-8", |buf| {
        (app.pages.index)(&app.exporter, &recent, buf)
    })
}

async fn logs(State(app): State<App>, Query(params): Query<HashMap<String, String>>) -> Response {
    let Some(id) = params.get("id").and_then(|v| v.parse::<u64>().ok()) else {
        return plain(
            StatusCode::BAD_REQUEST,
            "id parameter is missing or not a number".into(),
        );
    };
    let Some(record) = app.exporter.record(id) else {
        return plain(
            StatusCode::NOT_FOUND,
            format!(
                "probe {id} is not among the {} kept (--history-limit)",
                app.exporter.options().history_limit
            ),
        );
    };
    rendered("text/plain; charset=utf-8", |buf| {
        (app.pages.debug)(&record, buf)
    })
}

async fn not_found() -> Response {
    plain(
        StatusCode::NOT_FOUND,
        "not found: the exporter serves /probe, /metrics, /logs and /".into(),
    )
}

/// The routes over `exporter`.
pub fn router(exporter: Arc<Exporter>, log: Log, pages: Pages) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/probe", get(probe))
        .route("/metrics", get(metrics))
        .route("/logs", get(logs))
        .fallback(not_found)
        .with_state(App {
            exporter,
            log,
            pages,
        })
}

/// The bounds on HTTP connections (the probes have their own: [`super::Options`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Open connections at once; a connection over it is closed as soon as it is accepted.
    pub max_connections: usize,
    /// The time a client has to send a request's headers, idle keep-alive time included; then the connection is
    /// closed.
    pub header_timeout: Duration,
    /// After the stop signal, how long requests in progress may go on before their connections are dropped.
    pub grace: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: 256,
            header_timeout: Duration::from_secs(10),
            grace: Duration::from_secs(35),
        }
    }
}

/// Serves on `listener` until `shutdown` completes, within `limits`; then stops accepting, lets the requests in
/// progress finish (at most `limits.grace`) and returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    exporter: Arc<Exporter>,
    log: Log,
    pages: Pages,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(exporter, log, pages);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors and the like: wait a moment rather than spin.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        let mut stop = stop_rx.clone();
        connections.spawn(async move {
            let _slot = slot;
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(limits.grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
    }
    Ok(())
}
