//! The worker arbiters that run requests, each with its own awc client (`awc::Client` is !Send).

use std::cell::OnceCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_rt::{Arbiter, ArbiterHandle};
use sinks::prometheus::LiveGauges;

/// TCP connect timeout; connection failures are reported as `connect_error`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often each worker's event-loop lag is probed.
const LAG_PROBE_PERIOD: Duration = Duration::from_millis(100);

thread_local! {
    static CLIENT: OnceCell<awc::Client> = const { OnceCell::new() };
}

/// Settings of the per-worker client.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    /// At least the run's maximum concurrency: awc's default of 100 silently queues requests.
    pub max_connections: usize,
    /// For `https://` targets.
    pub tls: Arc<rustls::ClientConfig>,
}

/// The client of the current worker thread, built on first use.
pub fn client(settings: &ClientSettings) -> awc::Client {
    CLIENT.with(|c| c.get_or_init(|| build_client(settings)).clone())
}

pub fn build_client(settings: &ClientSettings) -> awc::Client {
    let connector = awc::Connector::new()
        .rustls_0_23(settings.tls.clone())
        .limit(settings.max_connections)
        .timeout(CONNECT_TIMEOUT);
    awc::Client::builder()
        .connector(connector)
        // awc's own 5 s response timeout would cut long prefills; requests use our timeout.
        .disable_timeout()
        .finish()
}

pub struct Workers {
    arbiters: Vec<Arbiter>,
    next: AtomicUsize,
    pub settings: ClientSettings,
}

impl Workers {
    /// Must be called inside a running actix System.
    pub fn start(count: usize, settings: ClientSettings) -> Workers {
        let arbiters = (0..count.max(1)).map(|_| Arbiter::new()).collect();
        Workers {
            arbiters,
            next: AtomicUsize::new(0),
            settings,
        }
    }

    pub fn len(&self) -> usize {
        self.arbiters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.arbiters.is_empty()
    }

    /// Round-robin: spreads requests and users evenly over the workers.
    pub fn next(&self) -> ArbiterHandle {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.arbiters.len();
        self.arbiters[i].handle()
    }

    /// Starts, on every worker arbiter, a timer that measures how late it fires: the event-loop
    /// lag of that worker (a busy loop delays token timestamps too). It ends with the arbiter.
    pub fn start_lag_probes(&self, gauges: &Arc<LiveGauges>) {
        for (i, arbiter) in self.arbiters.iter().enumerate() {
            let gauges = gauges.clone();
            arbiter.spawn(async move {
                loop {
                    let due = tokio::time::Instant::now() + LAG_PROBE_PERIOD;
                    tokio::time::sleep_until(due).await;
                    gauges.set_lag(
                        i,
                        tokio::time::Instant::now().saturating_duration_since(due),
                    );
                }
            });
        }
    }

    pub fn stop(self) {
        for a in &self.arbiters {
            a.stop();
        }
        for a in self.arbiters {
            let _ = a.join();
        }
    }
}
