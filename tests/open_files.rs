//! `--max-vus` beyond the open-file limit: the run caps its concurrency below the limit, with
//! descriptors to spare, instead of failing connections and possibly leaving none to write the
//! results with. Arrivals beyond the cap are dropped and counted; nothing measured is lost.
//! (This test lowers its own process's limit: it is alone in its binary.)

mod common;

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use inference_benchmarker::config::BenchmarkKind;
use inference_benchmarker::workload::options::TokenizeOptions;

const LIMIT: u64 = 400;

struct Sim(Child);

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The simulated server in its own process (it inherits the lowered limit, and needs only the
/// connections the capped client opens).
fn start_sim() -> (Sim, String) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = common::binary()
        .args(["sim", "--port", &port.to_string()])
        .args(["--fixed-ttft-ms", "200", "--fixed-itl-ms", "50"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let sim = Sim(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the simulated server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (sim, format!("http://127.0.0.1:{port}"))
}

#[test]
fn concurrency_beyond_the_open_file_limit_is_capped_and_the_results_are_written() {
    let lim = libc::rlimit {
        rlim_cur: LIMIT,
        rlim_max: LIMIT,
    };
    // SAFETY: setrlimit reads the struct we own.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    let (_sim, url) = start_sim();
    let out = tempfile::tempdir().unwrap();
    let mut cfg = common::config(&url, out.path());
    cfg.benchmark_kind = BenchmarkKind::Rate;
    // 1,500 req/s of 650 ms streams would keep ~1,000 in flight: more than 400 descriptors.
    cfg.rates = Some(vec![1_500.0]);
    cfg.duration = Duration::from_secs(1);
    cfg.max_vus = 1_000_000;
    cfg.stop_when_saturated = false;
    cfg.decode_options = Some(TokenizeOptions::fixed(10));
    let summary = inference_benchmarker::run(cfg).expect("the run completes");
    let doc = common::validated(&summary.results_path);
    let step = &summary.steps[0];
    assert_eq!(
        doc["config"]["max_vus"],
        LIMIT - 128,
        "capped below the limit"
    );
    assert_eq!(step.config.max_vus, LIMIT - 128);
    assert!(
        step.dropped_arrivals > 0,
        "arrivals beyond the cap are dropped and counted"
    );
    assert_eq!(
        step.failed_requests, 0,
        "no connection failed for want of a descriptor: {:?}",
        step.errors
    );
    assert_eq!(step.total_requests + step.dropped_arrivals, 1_500);
}
