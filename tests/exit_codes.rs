//! One test per row of the README's exit-code table, each making the binary end that way against
//! the simulated server; and a test that the table lists exactly the codes tested here.

mod common;

use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use inference_benchmarker::sim::{SimConfig, SimServer};

/// The codes the tests below cover, as the README's table must list them.
const TESTED: [i32; 8] = [0, 1, 2, 3, 4, 5, 6, 130];

fn sim_with(cfg: SimConfig) -> SimServer {
    SimServer::start(cfg, None).expect("simulated server starts")
}

fn sim() -> SimServer {
    sim_with(SimConfig::default())
}

/// A short closed-loop run against `url` writing into `out`, with `extra` flags.
fn short_run(url: &str, out: &std::path::Path, extra: &[&str]) -> Command {
    run_for("1s", url, out, extra)
}

/// A closed-loop run of `duration` against `url` writing into `out`, with `extra` flags.
fn run_for(duration: &str, url: &str, out: &std::path::Path, extra: &[&str]) -> Command {
    let mut c = common::benchmark();
    c.args([
        "-u",
        url,
        "-w",
        "0s",
        "-d",
        duration,
        "-m",
        "4",
        "-b",
        "throughput",
    ])
    .args([
        "--decode-options",
        "num_tokens=8,max_tokens=8,min_tokens=8,variance=0",
    ])
    .args(["-n", "--no-report", "--output-dir"])
    .arg(out)
    .args(extra);
    c
}

fn run(mut c: Command) -> (Option<i32>, String) {
    let out: Output = c.output().expect("the benchmark runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_readme_table_lists_exactly_the_tested_codes() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let table = readme
        .split("## Exit codes")
        .nth(1)
        .expect("an Exit codes section")
        .split("\n## ")
        .next()
        .unwrap();
    let mut codes: Vec<i32> = table
        .lines()
        .filter_map(|l| l.strip_prefix("| "))
        .filter_map(|l| l.split(" |").next()?.trim().parse().ok())
        .collect();
    codes.sort_unstable();
    assert_eq!(
        codes, TESTED,
        "the README's exit-code table and these tests disagree"
    );
}

#[test]
fn code_0_the_run_completed() {
    let sim = sim();
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = run(short_run(&sim.url(), out.path(), &[]));
    sim.stop();
    assert_eq!(code, Some(0), "{stderr}");
    let doc = common::validated(&common::results_file(out.path()));
    assert_eq!(doc["status"], "completed");
}

/// Results that cannot be written mid-run (the disk filled up: here the file-size limit, with
/// SIGXFSZ ignored so the write fails with EFBIG instead of killing the process).
#[test]
fn code_1_the_results_could_not_be_written() {
    let sim = sim();
    let out = tempfile::tempdir().unwrap();
    let c = short_run(&sim.url(), out.path(), &["--save-requests"]);
    // The command's own program and arguments, run under a shell that sets the limits first.
    let program = c.get_program().to_owned();
    let args: Vec<_> = c.get_args().map(ToOwned::to_owned).collect();
    let mut shell = Command::new("bash");
    shell
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 16; exec \"$@\"")
        .arg("bash")
        .arg(program)
        .args(args);
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => shell.env(k, v),
            None => shell.env_remove(k),
        };
    }
    let (code, stderr) = run(shell);
    sim.stop();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("internal error"), "{stderr}");
}

#[test]
fn code_2_bad_arguments() {
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = run({
        let mut c = common::benchmark();
        c.args([
            "-u",
            "http://127.0.0.1:9",
            "-n",
            "--duration=-1s",
            "--output-dir",
        ])
        .arg(out.path());
        c
    });
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--duration"), "{stderr}");
    let (code, stderr) = run({
        let mut c = common::binary();
        c.args(["sim", "--port", "0", "--fault", "no-such-fault"]);
        c
    });
    assert_eq!(code, Some(2), "{stderr}");
}

#[test]
fn code_3_a_server_that_is_down() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = run(short_run(
        &format!("http://127.0.0.1:{port}"),
        out.path(),
        &[],
    ));
    assert_eq!(code, Some(3), "{stderr}");
}

/// A typo in the route (`/v1/chat/completion`) is a 404 from the server: 3, as the table says.
#[test]
fn code_3_a_url_the_server_answers_404() {
    let sim = sim();
    let out = tempfile::tempdir().unwrap();
    let url = format!("{}/v1/chat/completion", sim.url());
    let (code, stderr) = run(short_run(&url, out.path(), &[]));
    sim.stop();
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("HTTP 404") && stderr.contains("--url"),
        "{stderr}"
    );
}

/// A pre-flight answered 5xx every time (after its retries) stops the run; a 4xx at once.
#[test]
fn code_3_a_pre_flight_that_keeps_failing() {
    let sim = sim_with(SimConfig {
        fail_probes: 100,
        ..SimConfig::default()
    });
    let out = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let (code, stderr) = run(short_run(&sim.url(), out.path(), &[]));
    sim.stop();
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("retry 5 of 5"), "retried 5 times: {stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

/// One 5xx (or two) at the pre-flight check is the server's state, not a wrong request: the run
/// retries, then measures — 70 % of its requests fail, which is what the run is for.
#[test]
fn a_flaky_server_is_measured_not_refused() {
    let sim = sim_with(SimConfig {
        fail_probes: 2,
        faults: vec!["status=500@0.7".into()],
        ..SimConfig::default()
    });
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = run(short_run(
        &sim.url(),
        out.path(),
        &["--max-error-rate", "1"],
    ));
    sim.stop();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("retry 1 of 5") && stderr.contains("retry 2 of 5"),
        "{stderr}"
    );
    assert!(!stderr.contains("retry 3 of 5"), "{stderr}");
    let doc = common::validated(&common::results_file(out.path()));
    let step = &doc["results"][0];
    let (failed, total) = (
        step["failed_requests"].as_f64().unwrap(),
        step["total_requests"].as_f64().unwrap(),
    );
    assert!(total >= 20.0, "{step}");
    assert!(
        (0.5..0.9).contains(&(failed / total)),
        "{failed} of {total}"
    );
}

#[test]
fn code_4_the_server_failed_the_run() {
    let sim = sim_with(SimConfig {
        faults: vec!["status=503@0.99999".into()],
        ..SimConfig::default()
    });
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = run(short_run(&sim.url(), out.path(), &[]));
    sim.stop();
    assert_eq!(code, Some(4), "{stderr}");
    let doc = common::validated(&common::results_file(out.path()));
    assert_eq!(doc["status"], "failed");
}

#[test]
fn code_5_a_threshold_failed() {
    let sim = sim();
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = run(short_run(
        &sim.url(),
        out.path(),
        &["--threshold", "p50(e2e)<1us"],
    ));
    sim.stop();
    assert_eq!(code, Some(5), "{stderr}");
}

/// A step that finished no request measured nothing: not `completed` with a 0/0 row.
#[test]
fn code_6_a_step_that_measured_nothing() {
    let sim = sim();
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = run(run_for("1ms", &sim.url(), out.path(), &[]));
    sim.stop();
    assert_eq!(code, Some(6), "{stderr}");
    assert!(
        stderr.contains("measured nothing") && stderr.contains("--duration"),
        "{stderr}"
    );
    let doc = common::validated(&common::results_file(out.path()));
    assert_eq!(doc["status"], "failed");
}

#[test]
fn code_130_interrupted() {
    let sim = sim();
    let out = tempfile::tempdir().unwrap();
    let child = run_for("60s", &sim.url(), out.path(), &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once the run has started (its results file exists), its signal handlers are in place.
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_dir(out.path()).unwrap().next().is_none() {
        assert!(Instant::now() < deadline, "the run never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let done = child.wait_with_output().unwrap();
    sim.stop();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(130), "{stderr}");
    let doc = common::validated(&common::results_file(out.path()));
    assert_eq!(doc["status"], "interrupted");
}
