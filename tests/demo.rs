//! The README's first command, shortened: `--demo` runs offline against the built-in simulated
//! server, prints the table and writes results that validate against the schema.

mod common;

#[test]
fn demo_runs_offline_and_writes_valid_results() {
    let out = tempfile::tempdir().unwrap();
    let run = common::binary()
        .args([
            "--demo",
            "-w",
            "1s",
            "-d",
            "2s",
            "--num-rates",
            "2",
            "--output-dir",
        ])
        .arg(out.path())
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        run.status.code()
    );
    assert!(stdout.contains("| Benchmark"), "a summary table: {stdout}");
    assert!(stdout.contains("throughput") && stdout.contains("constant@"));

    let doc = common::validated(&common::results_file(out.path()));
    assert_eq!(doc["status"], "completed");
    assert_eq!(
        doc["config"]["keep_alive"], true,
        "the simulated server keeps connections open"
    );
    let steps = doc["results"].as_array().unwrap();
    assert_eq!(steps.len(), 3, "throughput + 2 rates");
    assert_eq!(steps[0]["id"], "throughput");
    for s in steps {
        assert!(
            s["successful_requests"].as_u64().unwrap() > 0,
            "{}",
            s["id"]
        );
        assert_eq!(s["failed_requests"], 0, "{}", s["id"]);
    }
    for s in &steps[1..] {
        assert_eq!(s["executor_type"], "ConstantArrivalRate");
    }
}
