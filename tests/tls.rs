//! https:// against a loopback server with a self-signed certificate: refused cleanly without
//! `--ca-cert`/`--insecure`, measured with either.

mod common;

use inference_benchmarker::sim::{SimConfig, SimServer};

fn run(url: &str, out: &std::path::Path, extra: &[&str]) -> std::process::Output {
    common::benchmark()
        .args([
            "-u", url, "-w", "0s", "-d", "1s", "-b", "rate", "-r", "5", "-n",
        ])
        .args([
            "--decode-options",
            "num_tokens=4,min_tokens=4,max_tokens=4,variance=0",
        ])
        .args(extra)
        .arg("--output-dir")
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn self_signed_https_needs_ca_cert_or_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("a self-signed certificate");
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let sim = SimServer::start(
        SimConfig {
            tls_cert: Some(cert_path.clone()),
            tls_key: Some(key_path),
            ..SimConfig::default()
        },
        None,
    )
    .unwrap();
    let url = sim.url();
    assert!(url.starts_with("https://"), "{url}");

    let refused = run(&url, &dir.path().join("a"), &[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.to_lowercase().contains("certificate"),
        "the reason is said: {stderr}"
    );

    let ca = cert_path.to_string_lossy().into_owned();
    let trusted = run(&url, &dir.path().join("b"), &["--ca-cert", &ca]);
    assert!(
        trusted.status.success(),
        "{}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    let doc = common::validated(&common::results_file(&dir.path().join("b")));
    assert_eq!(doc["results"][0]["successful_requests"], 5);

    let insecure = run(&url, &dir.path().join("c"), &["--insecure"]);
    let stderr = String::from_utf8_lossy(&insecure.stderr);
    assert!(insecure.status.success(), "{stderr}");
    assert!(
        stderr.contains("--insecure"),
        "the user is warned: {stderr}"
    );
    sim.stop();
}
