//! `--control-listen`: live control over HTTP, loopback only (it changes the load and has no
//! authentication). `POST /pause`, `/resume`, `/end-step`, `/users` and `/rate` (value as the
//! body or `?value=`), `GET /status`. Served by one actix-web worker thread; each command is a
//! `Control` message to the Coordinator actor, answered with the change it made.

use std::net::{SocketAddr, TcpListener};

use actix::Recipient;
use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::json;

use super::command::{self, Mode};
use super::{Control, Controls};

/// A running control endpoint.
pub struct ControlServer {
    addr: SocketAddr,
    handle: ServerHandle,
}

#[derive(Clone)]
struct Target {
    coordinator: Recipient<Control>,
    controls: Controls,
}

impl ControlServer {
    /// Binds `addr` now (a port in use, or an address other than loopback, is a configuration
    /// error before the run) and serves inside the running actix System.
    pub fn start(
        addr: SocketAddr,
        coordinator: Recipient<Control>,
        controls: Controls,
    ) -> Result<ControlServer, String> {
        loopback_only(addr)?;
        let listener = TcpListener::bind(addr)
            .map_err(|e| format!("--control-listen: cannot listen on {addr}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let target = web::Data::new(Target {
            coordinator,
            controls,
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(target.clone())
                .route("/status", web::get().to(status))
                .default_service(web::post().to(command))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .listen(listener)
        .map_err(|e| format!("--control-listen {addr}: {e}"))?
        .run();
        let handle = server.handle();
        actix_rt::spawn(server);
        eprintln!("live control on http://{addr} (POST /pause, /resume, /users, /rate, /end-step)");
        Ok(ControlServer { addr, handle })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}

/// The endpoint changes the load and has no authentication: loopback only.
pub fn loopback_only(addr: SocketAddr) -> Result<(), String> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(format!(
            "--control-listen {addr}: only a loopback address (127.0.0.1 or [::1]) is allowed, \
             since whoever reaches it changes the load"
        ))
    }
}

async fn command(req: HttpRequest, body: String, target: web::Data<Target>) -> HttpResponse {
    let cmd = match command::parse(req.path(), req.query_string(), &body) {
        Ok(c) => c,
        Err(e) => return HttpResponse::BadRequest().json(json!({ "error": e })),
    };
    let asked = target.coordinator.send(Control {
        command: cmd,
        source: "http",
    });
    match asked.await {
        Ok(Ok(event)) => HttpResponse::Ok().json(json!({
            "step": event.step,
            "action": event.action,
            "value": event.value,
            "time_ms": event.at as f64 / 1e6,
        })),
        Ok(Err(e)) => HttpResponse::Conflict().json(json!({ "error": e })),
        Err(e) => HttpResponse::ServiceUnavailable()
            .json(json!({ "error": format!("the run is over: {e}") })),
    }
}

async fn status(target: web::Data<Target>) -> HttpResponse {
    let body = match target.controls.status() {
        None => json!({ "step": null }),
        Some(s) => {
            let mut v = json!({ "step": s.step, "paused": s.paused, "ending": s.ending });
            match s.mode {
                Mode::Closed { users, max } => {
                    v["users"] = users.into();
                    v["max_users"] = max.into();
                }
                Mode::Open { rate } => v["rate"] = rate.into(),
                Mode::Replay => v["replay"] = true.into(),
            }
            v
        }
    };
    HttpResponse::Ok().json(body)
}
