//! Which server-metrics endpoints a run scrapes (`--server-metrics`, `<url>/metrics` by
//! default), checked once before the run, and the scraper started for them.

use std::sync::Arc;
use std::time::Duration;

use sinks::prometheus::LiveGauges;
use sinks::server_metrics::scraper::{self, ScraperConfig, ScraperHandle, Timeseries};
use sinks::server_metrics::timeseries::{timeseries_path, TimeseriesWriter};

use crate::config::RunConfig;
use crate::runtime::clock::Clock;
use crate::runtime::exit::RunError;

/// The default endpoint: `/metrics` beside the API's `/v1`, on the base URL.
pub fn default_endpoint(base_url: &str) -> String {
    format!("{}/metrics", base_url.trim_end_matches('/'))
}

/// Probes each endpoint once. The default one that does not answer Prometheus (a 404, a
/// refused connection, another kind of answer) is left out with one line on stderr; one given
/// with `--server-metrics` is kept with a warning (it may come up later: its failures are
/// counted in each step). None when nothing is left to scrape, or scraping is off. Each round's
/// requests waiting and KV-cache usage go to `live` (the console reads them there).
pub async fn start(
    cfg: &RunConfig,
    client: &awc::Client,
    live: Arc<LiveGauges>,
) -> Option<ScraperHandle> {
    if cfg.no_server_metrics {
        return None;
    }
    let timeout = scraper::timeout_for(cfg.server_metrics_interval).max(Duration::from_secs(1));
    let mut endpoints = Vec::new();
    let default = default_endpoint(&cfg.url);
    if !cfg.server_metrics.contains(&default) {
        match scraper::scrape(client, &default, timeout).await {
            Ok(_) => endpoints.push(default),
            Err(why) => eprintln!("server metrics: {default} not available ({why}): off"),
        }
    }
    for url in &cfg.server_metrics {
        if let Err(why) = scraper::scrape(client, url, timeout).await {
            log::warn!(
                "server metrics: {} not available yet ({why}): scraped all the same",
                scraper::without_credentials(url)
            );
        }
        endpoints.push(url.clone());
    }
    if endpoints.is_empty() {
        return None;
    }
    let filter = cfg
        .server_metrics_filter
        .as_deref()
        .and_then(|f| sinks::server_metrics::compile_filter(f).ok());
    Some(ScraperHandle::start(ScraperConfig {
        endpoints,
        interval: cfg.server_metrics_interval,
        filter,
        live: Some(live),
    }))
}

/// `<results stem>.timeseries.jsonl` beside the results: every scrape from now on, its times
/// from the run's start.
pub fn open_timeseries(
    scraper: &ScraperHandle,
    results_path: &std::path::Path,
    clock: &Clock,
) -> Result<(), RunError> {
    let path = timeseries_path(results_path);
    let writer = TimeseriesWriter::create(path.clone())
        .map_err(|e| RunError::Config(format!("cannot write {}: {e}", path.display())))?;
    scraper.addr.do_send(Timeseries {
        writer,
        anchor: clock.instant(0),
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_default_endpoint_is_beside_v1() {
        assert_eq!(
            super::default_endpoint("http://h:8000/"),
            "http://h:8000/metrics"
        );
    }
}
