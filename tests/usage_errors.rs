//! Errors are classified right: what the user got wrong is a configuration error (a clear
//! message, exit code 2) in the `sim` subcommand as in the benchmark, never an "internal error";
//! a negative duration says so; listen addresses take host names.

mod common;

use std::net::TcpListener;
use std::process::Output;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A configuration error: exit code 2, a message naming `needle`, no "internal error".
fn assert_config_error(out: &Output, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(needle), "{needle:?} not in: {err}");
    assert!(!err.contains("internal error"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn sim_on_a_port_in_use_is_a_configuration_error() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = common::binary()
        .args(["sim", "--host", "127.0.0.1", "--port", &port])
        .output()
        .unwrap();
    assert_config_error(&out, &port);
    assert!(stderr(&out).contains("cannot listen"), "{}", stderr(&out));
}

#[test]
fn sim_with_a_bad_fault_is_a_configuration_error() {
    for fault in ["status=999", "teleport", "status=503@2"] {
        let out = common::binary()
            .args(["sim", "--port", "0", "--fault", fault])
            .output()
            .unwrap();
        assert_config_error(&out, "fault");
    }
}

#[test]
fn a_negative_duration_says_it_must_be_positive() {
    for args in [
        ["-d", "-5s"],
        ["--duration", "-5s"],
        ["--duration=-5s", "-n"],
        ["-d", "0s"],
        ["--request-timeout", "-1s"],
        ["--prometheus-push-interval", "0s"],
    ] {
        let out = common::benchmark()
            .args(["-u", "http://127.0.0.1:9", "-n"])
            .args(args)
            .output()
            .unwrap();
        assert_config_error(&out, "must be positive");
    }
    // Zero is a valid warmup (none), a negative one is not.
    let out = common::benchmark()
        .args(["-u", "http://127.0.0.1:9", "-n", "-w", "-1s"])
        .output()
        .unwrap();
    assert_config_error(&out, "negative");
}

/// `--prometheus-listen localhost:PORT` serves /metrics (the run's own line names the resolved
/// address); the benchmark runs against the simulated server started by `--demo`.
#[test]
fn prometheus_listen_takes_a_host_name() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let out_dir = tempfile::tempdir().unwrap();
    let out = common::binary()
        .args(["--demo", "-n", "-b", "throughput", "-w", "0s", "-d", "1s"])
        .args(["--prometheus-linger", "0s", "--prometheus-listen"])
        .arg(format!("localhost:{port}"))
        .arg("--output-dir")
        .arg(out_dir.path())
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "Prometheus metrics on http://127.0.0.1:{port}/metrics"
        )),
        "{err}"
    );
    // No port: a configuration error before anything starts (no name that needs a DNS server:
    // tests only talk to this machine).
    for bad in ["localhost", "localhost:http9464"] {
        let out = common::benchmark()
            .args(["-u", "http://127.0.0.1:9", "-n", "--prometheus-listen", bad])
            .output()
            .unwrap();
        assert_config_error(&out, bad);
    }
}

#[test]
fn the_control_endpoint_is_refused_off_loopback_before_anything_starts() {
    // Port 9 has no server: the refusal comes from the flags, before any request.
    let out = common::benchmark()
        .args([
            "-u",
            "http://127.0.0.1:9",
            "-n",
            "--control-listen",
            "0.0.0.0:9470",
        ])
        .output()
        .unwrap();
    assert_config_error(&out, "loopback");
}
