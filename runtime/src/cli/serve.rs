//! `hyperagent serve`: the report's views of the home's runs, live. The page of a run follows its
//! log through server-sent events while `hyperagent run` appends to it in another process.
//!
//! Read-only, and bounded to the home: a run is found by listing `<home>/runs` and comparing
//! names, never by joining a requested path, and a run directory or log that resolves outside
//! the home (a symbolic link) is not served. It listens on loopback unless told otherwise.

use super::terminal::{errln, outln};
use super::{open_archive, run::runs_dir};
use anyhow::{Context, Result};
use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use hyperagent::archive::Archive;
use hyperagent::report::{DetailCache, RunReport, page, svg::esc};
use hyperagent::settings::Paths;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The address served when none is given: loopback only.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8450";
/// How often a live page's run log is looked at.
const POLL: Duration = Duration::from_millis(300);
/// Longest run id looked up (longer is no run's).
const MAX_RUN_ID: usize = 200;

struct Served {
    runs: PathBuf,
    archive: Archive,
    /// Node panels already read: a growing run's page is re-made from the log each time.
    cache: Mutex<DetailCache>,
}

pub async fn serve(paths: &Paths, addr: SocketAddr) -> Result<()> {
    let runs = runs_dir(paths);
    std::fs::create_dir_all(&runs).with_context(|| format!("cannot create {}", runs.display()))?;
    let runs = runs.canonicalize().with_context(|| format!("cannot resolve {}", runs.display()))?;
    let served = Arc::new(Served { runs, archive: open_archive(paths)?, cache: Mutex::default() });
    let app = axum::Router::new()
        .route("/", get(index))
        .route(
            "/runs/{id}",
            get(
                |UrlPath(id): UrlPath<String>| async move { Redirect::permanent(&format!("/runs/{}/", url_word(&id))) },
            ),
        )
        .route("/runs/{id}/", get(run_page))
        .route("/runs/{id}/view", get(run_view))
        .route("/runs/{id}/events", get(run_events))
        .fallback(|| async { not_found() })
        .with_state(served);
    if !addr.ip().is_loopback() {
        errln!("warning: serving on {addr}, not a loopback address: whoever can reach it can read every run here");
    }
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let bound = listener.local_addr()?;
    outln!("serving the runs of {} at http://{bound}/ (read-only; Ctrl-C stops)", paths.home.display());
    axum::serve(listener, app).await.context("the server stopped")
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "no such page\n").into_response()
}

impl Served {
    /// The log of run `id`, if `id` names a run directory under the home whose log is there too.
    fn log_of(&self, id: &str) -> Option<PathBuf> {
        if id.is_empty() || id.len() > MAX_RUN_ID || id == "." || id == ".." || id.contains(['/', '\\', '\0']) {
            return None;
        }
        let entry = std::fs::read_dir(&self.runs).ok()?.filter_map(|e| e.ok()).find(|e| e.file_name() == id)?;
        let log = entry.path().join("log.jsonl").canonicalize().ok()?;
        (log.starts_with(&self.runs) && log.is_file()).then_some(log)
    }

    fn run_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(&self.runs)
            .map(|entries| entries.filter_map(|e| e.ok()).filter_map(|e| e.file_name().into_string().ok()).collect())
            .unwrap_or_default();
        ids.retain(|id| self.log_of(id).is_some());
        ids.sort();
        ids
    }

    fn report(&self, id: &str) -> Option<Result<RunReport, String>> {
        let log = self.log_of(id)?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        Some(RunReport::load(&self.archive, id, &log, &mut cache).map_err(|e| e.to_string()))
    }
}

/// A run id as one URL path segment.
fn url_word(id: &str) -> String {
    id.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"._-".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }
        })
        .collect()
}

async fn index(State(served): State<Arc<Served>>) -> Response {
    let ids = tokio::task::spawn_blocking(move || served.run_ids()).await.unwrap_or_default();
    let mut html = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>hyperagent runs</title></head><body><h1>Runs</h1><ul>",
    );
    for id in &ids {
        html.push_str(&format!("<li><a href=\"/runs/{}/\">{}</a></li>", url_word(id), esc(id)));
    }
    html.push_str("</ul></body></html>");
    Html(html).into_response()
}

/// Renders a run's page or view off the async threads (reading nodes is file I/O).
async fn render(served: Arc<Served>, id: String, whole: bool) -> Response {
    let made = tokio::task::spawn_blocking(move || {
        let report = served.report(&id)?;
        Some(report.and_then(|r| {
            let runs = [r];
            if whole { page::page_html(&runs, true) } else { page::main_html(&runs) }.map_err(|e| e.to_string())
        }))
    })
    .await;
    match made {
        Ok(Some(Ok(html))) => ([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response(),
        Ok(Some(Err(e))) => (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot read the run: {e}\n")).into_response(),
        Ok(None) => not_found(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be made\n").into_response(),
    }
}

async fn run_page(State(served): State<Arc<Served>>, UrlPath(id): UrlPath<String>) -> Response {
    render(served, id, true).await
}

async fn run_view(State(served): State<Arc<Served>>, UrlPath(id): UrlPath<String>) -> Response {
    render(served, id, false).await
}

/// A `log` event whenever the run log's length changes (and one at once, for what the page may
/// have missed between being made and connecting).
async fn run_events(State(served): State<Arc<Served>>, UrlPath(id): UrlPath<String>) -> Response {
    let Some(log) = served.log_of(&id) else { return not_found() };
    let stream = futures::stream::unfold((log, None::<u64>), |(log, last)| async move {
        loop {
            let length = std::fs::metadata(&log).map_or(0, |m| m.len());
            if last != Some(length) {
                let event = SseEvent::default().event("log").data(length.to_string());
                return Some((Ok::<_, std::convert::Infallible>(event), (log, Some(length))));
            }
            tokio::time::sleep(POLL).await;
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}
