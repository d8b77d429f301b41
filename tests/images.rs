//! Image inputs, request by request against the simulated server's record: every request's
//! image count and bytes as the server decoded them, its image tokens in the server's prompt
//! tokens, its time to first token within the accuracy `tests/accuracy.rs` holds; the step's
//! figures as the sums of the requests'; a local dataset's image files sent as they are; a
//! malformed image answered 400 with its message; the engine's prefill growing with image size.

mod common;

use std::path::Path;
use std::time::Duration;

use common::timing;
use inference_benchmarker::config::image_options::ImageOptions;
use inference_benchmarker::config::{BenchmarkKind, Endpoint};
use inference_benchmarker::sim::{image_tokens, MsRange, SimConfig, SimServer};
use inference_benchmarker::workload::images::synthetic_png;
use inference_benchmarker::workload::options::TokenizeOptions;

const OUTPUT_TOKENS: u64 = 16;

fn timed_sim() -> SimServer {
    SimServer::start(
        SimConfig {
            random_ttft_ms: Some(MsRange {
                min: 20.0,
                max: 120.0,
            }),
            random_itl_ms: Some(MsRange {
                min: 2.0,
                max: 12.0,
            }),
            record: true,
            seed: 11,
            ..SimConfig::default()
        },
        None,
    )
    .expect("simulated server starts")
}

/// `--image-options`: every request carries its seeded images; what we report of them and of
/// their timing is what the server saw.
#[test]
fn synthetic_images_match_the_servers_record() {
    timing::timed("synthetic images", || synthetic_images(Endpoint::Chat));
}

/// The same through the Responses API: its images are `input_image` parts.
#[test]
fn responses_images_match_the_servers_record() {
    timing::timed("responses images", || synthetic_images(Endpoint::Responses));
}

fn synthetic_images(endpoint: Endpoint) -> Result<(), String> {
    let sim = timed_sim();
    let out = tempfile::tempdir().unwrap();
    let mut cfg = common::config(&sim.url(), out.path());
    cfg.endpoint = endpoint;
    cfg.benchmark_kind = BenchmarkKind::Rate;
    cfg.rates = Some(vec![20.0]);
    cfg.duration = Duration::from_secs(3);
    cfg.decode_options = Some(TokenizeOptions::fixed(OUTPUT_TOKENS));
    cfg.image_options = Some(ImageOptions {
        width: 100,
        height: 60,
        count: 2,
    });
    cfg.save_requests = true;
    let floor = timing::start_floor(sim.addr(), 30, OUTPUT_TOKENS as u32);
    let summary = inference_benchmarker::run(cfg).expect("the run completes");
    let floor = floor.join().expect("the floor client ends");
    let records = sim.records();
    sim.stop();

    let by_id = common::by_request_id(&records);
    let lines = common::requests_log(&summary.results_path);
    assert_eq!(lines.len(), 60, "20 req/s for 3 s");
    let per_image = image_tokens(100, 60);
    assert_eq!(per_image, 4 * 3);
    let (mut images, mut bytes, mut ttft_errors) = (0, 0, Vec::new());
    for l in &lines {
        let server = by_id[l["id"].as_str().unwrap()];
        assert_eq!(l["outcome"], "ok", "{l}");
        assert_eq!(server.extras.image_count, 2);
        assert_eq!(l["image_count"], 2);
        assert_eq!(
            l["image_bytes"].as_u64().unwrap(),
            server.extras.image_bytes
        );
        assert_eq!(server.extras.image_tokens, 2 * per_image);
        // The server's prompt tokens (usage) include the image tokens.
        assert_eq!(
            l["server_prompt_tokens"].as_u64().unwrap(),
            server.prompt_tokens
        );
        assert!(server.prompt_tokens > server.extras.image_tokens);
        let ttft = l["ttft_ms"].as_f64().unwrap();
        ttft_errors.push(ttft - f64::from(server.token_offsets_us[0]) / 1e3);
        images += 2;
        bytes += server.extras.image_bytes;
    }
    let floor_errors = timing::floor_errors(&floor, &by_id);
    timing::within_floor("TTFT error", ttft_errors, &floor_errors)?;

    let doc = common::validated(&summary.results_path);
    let step = &doc["results"][0]["images_and_tools"];
    assert_eq!(step["images"], images);
    assert_eq!(step["images_sent"], images);
    assert_eq!(step["image_bytes"], bytes);
    assert_eq!(step["requests_with_images"], 60);
    assert_eq!(step["images_per_request"], 2.0);
    let duration_s = doc["results"][0]["duration_ms"].as_f64().unwrap() / 1e3;
    let throughput = step["image_throughput"].as_f64().unwrap();
    assert!((throughput - images as f64 / duration_s).abs() < 0.01 * throughput);
    assert_eq!(step["requests_with_tools"], 0);
    assert_eq!(step["time_to_first_tool_call_ms"]["count"], 0);
    Ok(())
}

fn write_png(path: &Path, width: u32, height: u32, seed: u64) -> u64 {
    let png = synthetic_png(width, height, seed).unwrap();
    std::fs::write(path, &png).unwrap();
    png.len() as u64
}

/// A local dataset naming image files relative to itself: each request sends its entry's files,
/// byte for byte; a malformed image is answered 400 and recorded with the server's message.
#[test]
fn dataset_images_are_sent_and_bad_ones_rejected() {
    let _one = common::timing::one_timed_run();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("img")).unwrap();
    let small = write_png(&dir.path().join("img/small.png"), 28, 28, 1);
    let large = write_png(&dir.path().join("img/large.png"), 280, 140, 2);
    let dataset = serde_json::json!([
        {"conversations": [{"role": "user", "content": "Entry one: describe it."}],
         "images": ["img/small.png"]},
        {"conversations": [{"role": "user", "content": "Entry two: compare them."}],
         "images": ["img/small.png", "img/large.png"]},
        // Valid base64, not a PNG: the client sends it, the server refuses it.
        {"conversations": [{"role": "user", "content": "Entry three: broken."}],
         "images": ["data:image/png;base64,AAAA"]},
    ]);
    let file = dir.path().join("vision.json");
    std::fs::write(&file, dataset.to_string()).unwrap();
    let sim = SimServer::start(
        SimConfig {
            fixed_ttft_ms: Some(5.0),
            fixed_itl_ms: Some(2.0),
            record: true,
            ..SimConfig::default()
        },
        None,
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut cfg = common::config(&sim.url(), out.path());
    cfg.dataset = None;
    cfg.dataset_file = Some(file);
    cfg.prompt_options = None;
    cfg.benchmark_kind = BenchmarkKind::Throughput;
    cfg.max_vus = 2;
    cfg.duration = Duration::from_secs(1);
    cfg.max_error_rate = None;
    cfg.save_requests = true;
    let summary = inference_benchmarker::run(cfg).expect("the run completes");
    let records = sim.records();
    sim.stop();

    let by_id = common::by_request_id(&records);
    let lines = common::requests_log(&summary.results_path);
    let mut seen = [0; 3];
    for l in &lines {
        let server = by_id[l["id"].as_str().unwrap()];
        // A refused request's messages are not recorded: the broken entry is the one refused.
        let entry = match server.messages.first() {
            None => 2,
            Some((_, text)) => ["Entry one", "Entry two"]
                .iter()
                .position(|e| text.starts_with(e))
                .unwrap_or_else(|| panic!("unknown prompt {text:?}")),
        };
        seen[entry] += 1;
        match entry {
            0 | 1 => {
                let (count, want) = [(1, small), (2, small + large)][entry];
                assert_eq!(l["outcome"], "ok", "{l}");
                assert_eq!(
                    (l["image_count"].as_u64(), server.extras.image_count),
                    (Some(count), count as u32)
                );
                assert_eq!(
                    server.extras.image_bytes, want,
                    "the files' bytes, decoded by the server"
                );
                assert_eq!(l["image_bytes"].as_u64(), Some(want));
                let tokens = image_tokens(28, 28)
                    + if entry == 1 {
                        image_tokens(280, 140)
                    } else {
                        0
                    };
                assert_eq!(server.extras.image_tokens, tokens);
            }
            _ => {
                assert_eq!(server.status, 400);
                assert_eq!(l["outcome"], "http_4xx");
                let error = l["error"].as_str().unwrap();
                assert!(error.contains("image_url: not a PNG image"), "{error}");
                assert_eq!(l["image_count"], 1);
            }
        }
    }
    assert!(
        seen.iter().all(|&n| n > 0),
        "every entry was sent: {seen:?}"
    );
    let doc = common::validated(&summary.results_path);
    let step = &doc["results"][0]["images_and_tools"];
    assert_eq!(
        step["requests_with_images"].as_u64().unwrap(),
        (seen[0] + seen[1]) as u64
    );
    assert_eq!(
        step["images_sent"].as_u64().unwrap(),
        (seen[0] + 2 * seen[1] + seen[2]) as u64
    );
}

/// The engine's prefill grows with image size: the same prompts with 560 × 560 images (400
/// image tokens each) wait their prefill longer than with 28 × 28 ones (1 token each).
#[test]
fn larger_images_cost_prefill_time() {
    let _one = common::timing::one_timed_run();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("two.json");
    let dataset = serde_json::json!([
        {"conversations": [{"role": "user", "content": "What is in the first picture?"}]},
        {"conversations": [{"role": "user", "content": "And what is in the second one?"}]},
    ]);
    std::fs::write(&file, dataset.to_string()).unwrap();
    let ttft = |side: u32| {
        let sim = SimServer::start(
            SimConfig {
                prefill_us_per_token: 200.0,
                // Every request pays its whole prefill: the pool repeats its two prompts.
                prefix_cache_blocks: 0,
                record: true,
                ..SimConfig::default()
            },
            None,
        )
        .unwrap();
        let out = tempfile::tempdir().unwrap();
        let mut cfg = common::config(&sim.url(), out.path());
        cfg.dataset = None;
        cfg.dataset_file = Some(file.clone());
        cfg.prompt_options = None;
        cfg.benchmark_kind = BenchmarkKind::Throughput;
        cfg.max_vus = 1;
        cfg.duration = Duration::from_secs(1);
        cfg.image_options = Some(ImageOptions {
            width: side,
            height: side,
            count: 1,
        });
        let summary = inference_benchmarker::run(cfg).expect("the run completes");
        let records = sim.records();
        sim.stop();
        let extra = records[0].extras.image_tokens;
        assert!(records.iter().all(|r| r.extras.image_tokens == extra));
        (summary.steps[0].time_to_first_token_ms.p50, extra)
    };
    let (small, small_tokens) = ttft(28);
    let (large, large_tokens) = ttft(560);
    assert_eq!((small_tokens, large_tokens), (1, 400));
    // 399 more tokens at 200 µs: 80 ms more prefill.
    assert!(
        large - small > 60.0,
        "TTFT p50 {small:.1} ms vs {large:.1} ms"
    );
}
