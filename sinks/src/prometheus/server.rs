//! `/metrics` for scraping, served on a thread of its own that runs its own actix System: a
//! scrape never runs on a request arbiter, and a slow scraper never delays the sink's events.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;

use actix_web::{dev::ServerHandle, web, App, HttpResponse, HttpServer};

use super::metrics::Metrics;

/// Content type of the text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A running `/metrics` server; stopped (and its thread joined) on drop.
pub struct MetricsServer {
    addr: SocketAddr,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` now (a port in use is an error before the run starts) and serves on a new
    /// thread.
    pub fn start(addr: SocketAddr, metrics: Arc<Metrics>) -> Result<MetricsServer, String> {
        let listener =
            TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("prometheus-metrics".into())
            .spawn(move || serve(listener, metrics, tx))
            .map_err(|e| format!("cannot start the metrics thread: {e}"))?;
        match rx.recv() {
            Ok(Ok(handle)) => Ok(MetricsServer {
                addr,
                handle,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(format!("cannot serve /metrics on {addr}: {e}"))
            }
            Err(_) => {
                let _ = thread.join();
                Err(format!("the metrics server on {addr} did not start"))
            }
        }
    }

    /// The bound address (the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        // `stop` sends the command at once; the thread ends when the server has stopped.
        drop(self.handle.stop(false));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    started: std::sync::mpsc::Sender<Result<ServerHandle, String>>,
) {
    let system = actix_rt::System::new();
    system.block_on(async move {
        let data = web::Data::from(metrics);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/metrics", web::get().to(exposition))
        })
        .workers(1)
        // The process's signals belong to the run (first Ctrl-C drains), not to this server.
        .disable_signals()
        .shutdown_timeout(1)
        .listen(listener);
        let server = match server {
            Ok(s) => s.run(),
            Err(e) => {
                let _ = started.send(Err(e.to_string()));
                return;
            }
        };
        let _ = started.send(Ok(server.handle()));
        if let Err(e) = server.await {
            log::error!("the /metrics server stopped: {e}");
        }
    });
}

async fn exposition(metrics: web::Data<Metrics>) -> HttpResponse {
    match metrics.encode() {
        Ok(text) => HttpResponse::Ok().content_type(TEXT_FORMAT).body(text),
        Err(e) => {
            log::error!("{e}");
            HttpResponse::InternalServerError().body(e)
        }
    }
}
