//! The Hugging Face hub path without internet: a loopback HTTP server answers the hub's
//! file-resolution endpoints (`/{repo}/resolve/{rev}/{file}`, `/datasets/{repo}/resolve/…`),
//! including a gated repository that answers 401 without a token. Files land in the hub cache
//! layout, and a second run finds them there with the server stopped.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use inference_benchmarker::workload::hub::HubEnv;
use inference_benchmarker::workload::{prepare, WorkloadConfig};

const COMMIT: &str = "4f2a9c0e1b3d5f7a9c0e1b3d5f7a9c0e1b3d5f7a";
const TOKEN: &str = "hf_test_secret_token";

fn tokenizer_json() -> String {
    inference_benchmarker::workload::tokenizer::builtin()
        .to_string(false)
        .unwrap()
}

const DATASET: &str = concat!(
    r#"{"conversations": [{"from": "human", "value": "What is the hub?"}]}"#,
    "\n",
    r#"{"conversations": [{"role": "user", "content": "Where are files cached?"}]}"#,
    "\n"
);

/// A stand-in for the chat profile's file: conversations of several user turns.
const CHAT_TURNS: &str = r#"[
  {"id": "c1", "conversations": [{"role": "system", "content": "Be brief."},
     {"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."},
     {"role": "user", "content": "Another one?"}, {"role": "assistant", "content": "Red."},
     {"role": "user", "content": "And a third?"}]},
  {"id": "c2", "conversations": [{"from": "human", "value": "Hello, who are you?"},
     {"from": "gpt", "value": "A model."}, {"from": "human", "value": "What can you do?"}]}
]"#;

/// A stand-in for the code-generation and classification profiles' files: prompts longer than
/// their 10,000-token cut.
fn long_prompts() -> String {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let entries: Vec<serde_json::Value> = (0..4)
        .map(|i| {
            let text = inference_benchmarker::workload::synthetic::text(&mut rng, 14_000);
            serde_json::json!({"id": i, "conversations": [{"role": "user", "content": text}]})
        })
        .collect();
    serde_json::Value::Array(entries).to_string()
}

/// A loopback stand-in for the hub: one request per connection.
struct FakeHub {
    url: String,
    stop: Arc<AtomicBool>,
    hits: Arc<AtomicUsize>,
    auth_seen: Arc<Mutex<Vec<Option<String>>>>,
    thread: Option<JoinHandle<()>>,
    addr: std::net::SocketAddr,
}

impl FakeHub {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let hits = Arc::new(AtomicUsize::new(0));
        let auth_seen = Arc::new(Mutex::new(Vec::new()));
        let (s, h, a) = (stop.clone(), hits.clone(), auth_seen.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                h.fetch_add(1, Ordering::SeqCst);
                serve(conn, &a);
            }
        });
        FakeHub {
            url: format!("http://{addr}"),
            stop,
            hits,
            auth_seen,
            thread: Some(thread),
            addr,
        }
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

fn serve(conn: TcpStream, auth_seen: &Mutex<Vec<Option<String>>>) {
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut auth = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("authorization") {
                auth = Some(v.trim().to_string());
            }
        }
    }
    auth_seen.lock().unwrap().push(auth.clone());
    let authorized = auth.as_deref() == Some(&format!("Bearer {TOKEN}"));
    let (status, body) = match path.as_str() {
        "/org/tok/resolve/main/tokenizer.json" => ("200 OK", tokenizer_json()),
        "/datasets/org/ds/resolve/main/chat.jsonl" => ("200 OK", DATASET.to_string()),
        "/datasets/hlarcher/inference-benchmarker/resolve/main/share_gpt_turns.json" => {
            ("200 OK", CHAT_TURNS.to_string())
        }
        "/datasets/hlarcher/inference-benchmarker/resolve/main/share_gpt_filtered_small.json" => {
            ("200 OK", DATASET.to_string())
        }
        "/datasets/hlarcher/inference-benchmarker/resolve/main/github_code.json"
        | "/datasets/hlarcher/inference-benchmarker/resolve/main/classification.json" => {
            ("200 OK", long_prompts())
        }
        "/org/gated/resolve/main/tokenizer.json" if authorized => ("200 OK", tokenizer_json()),
        "/org/gated/resolve/main/tokenizer.json" => (
            "401 Unauthorized",
            r#"{"error":"Access to model org/gated is restricted."}"#.to_string(),
        ),
        _ => (
            "404 Not Found",
            r#"{"error":"Entry not found"}"#.to_string(),
        ),
    };
    let mut conn = conn;
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nx-repo-commit: {COMMIT}\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn env(url: &str, cache: &Path, token: Option<&str>) -> HubEnv {
    HubEnv {
        endpoint: url.to_string(),
        cache_dir: cache.to_path_buf(),
        token: token.map(str::to_string),
        offline: false,
    }
}

fn workload(hub: HubEnv, tokenizer: &str) -> WorkloadConfig {
    WorkloadConfig {
        tokenizer_name: Some(tokenizer.to_string()),
        dataset: Some("org/ds".into()),
        dataset_file: Some(PathBuf::from("chat.jsonl")),
        prompt_options: None,
        decode_options: None,
        draw_prompt_lengths: false,
        image_options: None,
        seed: 1,
        synthetic_prompts: 10,
        hub,
        profile: None,
        trace: None,
        cache_salt: None,
    }
}

#[test]
fn downloads_into_the_hub_cache_then_hits_it_with_the_server_stopped() {
    let cache = tempfile::tempdir().unwrap();
    let hub = FakeHub::start();
    let w = prepare(&workload(env(&hub.url, cache.path(), None), "org/tok")).unwrap();
    assert_eq!(w.tokenizer_label, "org/tok");
    assert_eq!(w.requests.len(), 2);
    let snapshot = cache
        .path()
        .join("datasets--org--ds/snapshots")
        .join(COMMIT);
    assert_eq!(w.source, snapshot.join("chat.jsonl").display().to_string());
    let tok_file = cache
        .path()
        .join("models--org--tok/snapshots")
        .join(COMMIT)
        .join("tokenizer.json");
    assert_eq!(
        std::fs::read_to_string(&tok_file).unwrap(),
        tokenizer_json()
    );
    for repo in ["models--org--tok", "datasets--org--ds"] {
        let refs = cache.path().join(repo).join("refs/main");
        assert_eq!(std::fs::read_to_string(refs).unwrap(), COMMIT);
    }
    assert_eq!(hub.hits.load(Ordering::SeqCst), 2);
    // Asked again while the server is up: the commit is cached, nothing is rewritten.
    let again = prepare(&workload(env(&hub.url, cache.path(), None), "org/tok")).unwrap();
    assert_eq!(again.requests, w.requests);
    let url = hub.url.clone();
    hub.stop();

    // Server gone: the cache answers, the same workload comes out.
    let cached = prepare(&workload(env(&url, cache.path(), None), "org/tok")).unwrap();
    assert_eq!(cached.requests, w.requests);
    let offline = prepare(&workload(
        HubEnv::offline_at(cache.path().into()),
        "org/tok",
    ))
    .unwrap();
    assert_eq!(offline.requests, w.requests);
    // Nothing cached for another repository: a clear error naming what to do without network.
    let err = prepare(&workload(env(&url, cache.path(), None), "org/other")).unwrap_err();
    assert!(
        err.contains("'org/other'")
            && err.contains("could not be reached")
            && err.contains("local path"),
        "{err}"
    );
}

#[test]
fn gated_repository_needs_the_token_and_never_shows_it() {
    let cache = tempfile::tempdir().unwrap();
    let hub = FakeHub::start();
    let err = prepare(&workload(env(&hub.url, cache.path(), None), "org/gated")).unwrap_err();
    assert!(
        err.contains("HTTP 401") && err.contains("gated or private") && err.contains("HF_TOKEN"),
        "{err}"
    );
    let err = prepare(&workload(
        env(&hub.url, cache.path(), Some("hf_wrong")),
        "org/gated",
    ))
    .unwrap_err();
    assert!(
        err.contains("with the token given") && !err.contains("hf_wrong"),
        "{err}"
    );
    let w = prepare(&workload(
        env(&hub.url, cache.path(), Some(TOKEN)),
        "org/gated",
    ))
    .unwrap();
    assert_eq!(w.tokenizer_label, "org/gated");
    assert!(hub
        .auth_seen
        .lock()
        .unwrap()
        .contains(&Some(format!("Bearer {TOKEN}"))));
    hub.stop();
}

/// The environment variables reach the binary: HF_ENDPOINT, HF_HOME (cache and token file).
#[test]
fn binary_uses_the_hub_environment_and_its_cache() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("token"), format!("{TOKEN}\n")).unwrap();
    let hub = FakeHub::start();
    let run = |endpoint: &str| {
        let out = tempfile::tempdir().unwrap();
        let output = common::binary()
            .args([
                "--demo",
                "-w",
                "0s",
                "-d",
                "1s",
                "--benchmark-kind",
                "throughput",
            ])
            .args(["--max-vus", "2", "--tokenizer-name", "org/gated"])
            .args([
                "--dataset",
                "org/ds",
                "--dataset-file",
                "chat.jsonl",
                "--output-dir",
            ])
            .arg(out.path())
            .env("HF_ENDPOINT", endpoint)
            .env("HF_HOME", home.path())
            .env_remove("HF_TOKEN")
            .env_remove("HF_HUB_CACHE")
            .env_remove("HF_HUB_OFFLINE")
            .output()
            .expect("the binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stderr}");
        assert!(!stderr.contains(TOKEN), "the token is never printed");
        let doc = common::validated(&common::results_file(out.path()));
        assert!(!doc.to_string().contains(TOKEN), "nor written");
        doc
    };
    let doc = run(&hub.url);
    assert_eq!(doc["config"]["workload"]["tokenizer"], "org/gated");
    assert_eq!(doc["config"]["workload"]["prompts"], 2);
    let url = hub.url.clone();
    hub.stop();
    let doc = run(&url);
    assert_eq!(doc["config"]["workload"]["tokenizer"], "org/gated");
    assert!(home
        .path()
        .join("hub/models--org--gated/refs/main")
        .is_file());
}

/// `--profile chat` fetches its file from the hub and walks the conversations turn by turn.
#[test]
fn chat_profile_runs_multi_turn_from_the_hub() {
    let home = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let hub = FakeHub::start();
    let output = common::binary()
        .args(["--demo", "--profile", "chat", "-w", "0s", "-d", "1s"])
        .args([
            "--benchmark-kind",
            "throughput",
            "--max-vus",
            "2",
            "--decode-options",
            "num_tokens=8,min_tokens=8,max_tokens=8",
            "--output-dir",
        ])
        .arg(out.path())
        .env("HF_ENDPOINT", &hub.url)
        .env("HF_HOME", home.path())
        .env_remove("HF_TOKEN")
        .env_remove("HF_HUB_CACHE")
        .env_remove("HF_HUB_OFFLINE")
        .output()
        .expect("the binary runs");
    hub.stop();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("follow-up turns sent with the model's answers"),
        "{stderr}"
    );
    let doc = common::validated(&common::results_file(out.path()));
    assert_eq!(doc["config"]["workload"]["multi_turn_conversations"], 2);
    assert_eq!(doc["config"]["dataset_file"], "share_gpt_turns.json");
}

/// The binary against an in-process simulated server that records what it received, with the
/// hub at `hub` and an empty cache; returns the results and the prompt lengths the server saw.
fn run_against_sim(hub: &FakeHub, args: &[&str]) -> (serde_json::Value, Vec<u64>) {
    use inference_benchmarker::sim::{SimConfig, SimServer};
    let sim = SimServer::start(
        SimConfig {
            record: true,
            fixed_ttft_ms: Some(1.0),
            fixed_itl_ms: Some(1.0),
            ..SimConfig::default()
        },
        Some(
            inference_benchmarker::workload::tokenizer::load(None)
                .unwrap()
                .tokenizer,
        ),
    )
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let output = common::binary()
        .args([
            "-u",
            &sim.url(),
            "-w",
            "0s",
            "-d",
            "1s",
            "-b",
            "throughput",
            "-m",
            "2",
        ])
        .args(["--no-console", "--no-report", "--output-dir"])
        .arg(out.path())
        .args(args)
        .env("HF_ENDPOINT", &hub.url)
        .env("HF_HOME", home.path())
        .env_remove("HF_TOKEN")
        .env_remove("HF_HUB_CACHE")
        .env_remove("HF_HUB_OFFLINE")
        .output()
        .expect("the binary runs");
    let records = sim.records();
    sim.stop();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let doc = common::validated(&common::results_file(out.path()));
    (doc, records.iter().map(|r| r.prompt_tokens).collect())
}

/// Without --dataset, the original tool's default dataset is fetched from the hub, as it did.
#[test]
fn no_dataset_means_the_original_default_from_the_hub() {
    let hub = FakeHub::start();
    let (doc, prompts) = run_against_sim(&hub, &[]);
    hub.stop();
    let source = doc["config"]["dataset_source"].as_str().unwrap();
    assert!(
        source.ends_with(&format!(
            "datasets--hlarcher--inference-benchmarker/snapshots/{COMMIT}/share_gpt_filtered_small.json"
        )),
        "{source}"
    );
    assert_eq!(doc["config"]["workload"]["prompts"], 2);
    assert!(!prompts.is_empty());
}

/// The profiles cut every prompt to exactly their num_tokens, as the original tool did:
/// checked on what the simulated server received.
#[test]
fn code_generation_and_classification_send_their_exact_prompt_lengths() {
    let hub = FakeHub::start();
    for (profile, tokens) in [("code-generation", 4096), ("classification", 10_000)] {
        let (doc, prompts) = run_against_sim(&hub, &["--profile", profile]);
        assert!(!prompts.is_empty(), "{profile}: requests were sent");
        assert!(
            prompts.iter().all(|&p| p == tokens),
            "{profile}: prompts of {prompts:?} tokens, not all {tokens}"
        );
        assert_eq!(doc["config"]["prompt_options"]["num_tokens"], tokens);
        assert_eq!(doc["config"]["profile"], profile);
    }
    hub.stop();
}
