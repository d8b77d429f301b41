//! `prepare` end to end: synthetic, dataset and trace workloads, cuts on message boundaries.

use super::from_dataset::{
    join_contents, message_starts, off_separator, truncate_messages, PROGRESS_BATCH,
};
use super::tokenizer::count_tokens;
use super::*;
use std::path::Path;

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::dataset::DatasetPrompt;

fn cfg() -> WorkloadConfig {
    WorkloadConfig {
        tokenizer_name: None,
        dataset: Some(dataset::SYNTHETIC.into()),
        dataset_file: None,
        prompt_options: None,
        decode_options: None,
        draw_prompt_lengths: false,
        image_options: None,
        seed: 1,
        synthetic_prompts: 20,
        hub: hub::HubEnv::offline_at(PathBuf::from("/nonexistent/hub-cache")),
        profile: None,
        trace: None,
        cache_salt: None,
    }
}

fn msg(role: &str, content: &str) -> Message {
    Message {
        role: role.into(),
        content: content.into(),
        extras: None,
    }
}

fn write_dataset(dir: &Path, json: &str) -> PathBuf {
    let file = dir.join("ds.json");
    std::fs::write(&file, json).unwrap();
    file
}

#[test]
fn synthetic_default_lengths() {
    let w = prepare(&cfg()).unwrap();
    assert_eq!(w.source, "synthetic");
    assert_eq!(w.tokenizer_label, "builtin");
    assert_eq!(w.requests.len(), 20);
    for r in &w.requests {
        assert_eq!(r.prompt_tokens, DEFAULT_PROMPT_TOKENS);
        assert_eq!(count_tokens(&w.tokenizer, &r.prompt), DEFAULT_PROMPT_TOKENS);
        assert_eq!(r.messages, vec![msg("user", &r.prompt)]);
        assert_eq!(r.max_tokens, None);
    }
}

#[test]
fn synthetic_sampled_lengths_and_max_tokens() {
    let mut c = cfg();
    c.prompt_options = Some(
        "num_tokens=50,min_tokens=30,max_tokens=70,variance=100"
            .parse()
            .unwrap(),
    );
    c.decode_options = Some(
        "num_tokens=20,min_tokens=10,max_tokens=30,variance=25"
            .parse()
            .unwrap(),
    );
    // As the original tool: every prompt exactly num_tokens.
    let w = prepare(&c).unwrap();
    assert!(w.requests.iter().all(|r| r.prompt_tokens == 50));
    // Drawn when asked for.
    c.draw_prompt_lengths = true;
    let w = prepare(&c).unwrap();
    let lengths: Vec<u64> = w.requests.iter().map(|r| r.prompt_tokens).collect();
    assert!(lengths.iter().all(|l| (30..=70).contains(l)));
    assert!(
        lengths.iter().any(|&l| l != 50),
        "variance must vary lengths"
    );
    for r in &w.requests {
        assert_eq!(count_tokens(&w.tokenizer, &r.prompt), r.prompt_tokens);
        assert!((10..=30).contains(&r.max_tokens.unwrap()));
    }
}

#[test]
fn prepare_is_deterministic_per_seed() {
    let a = prepare(&cfg()).unwrap();
    let b = prepare(&cfg()).unwrap();
    let mut c = cfg();
    c.seed = 2;
    let c = prepare(&c).unwrap();
    assert_eq!(a.requests, b.requests);
    assert_ne!(a.requests, c.requests);
    // Prompts differ from each other.
    assert_ne!(a.requests[0].prompt, a.requests[1].prompt);
}

#[test]
fn zero_synthetic_prompts_is_an_error() {
    let mut c = cfg();
    c.synthetic_prompts = 0;
    assert!(prepare(&c).unwrap_err().contains("at least 1"));
}

#[test]
fn errors_from_tokenizer_and_dataset_resolution() {
    let mut c = cfg();
    c.tokenizer_name = Some("org/model".into());
    let err = prepare(&c).unwrap_err();
    assert!(
        err.contains("'org/model'") && err.contains("HF_HUB_OFFLINE=1"),
        "{err}"
    );
    let mut c = cfg();
    c.dataset = Some("a b".into());
    let err = prepare(&c).unwrap_err();
    assert!(err.contains("neither a local file"), "{err}");
    // No dataset given and no network: the original tool's default dataset cannot be had;
    // both ways out are offered.
    let mut c = cfg();
    c.dataset = None;
    let err = prepare(&c).unwrap_err();
    assert!(
        err.contains("HF_HUB_OFFLINE=1")
            && err.contains(
                "with no --dataset given, the benchmark runs on 'share_gpt_filtered_small.json'"
            )
            && err.contains("--dataset-file /path/to/share_gpt_filtered_small.json")
            && err.contains("--dataset synthetic"),
        "{err}"
    );
    // A local file that is not there: said first, before the hub it was then looked for in.
    c.dataset_file = Some("nonexist.json".into());
    let err = prepare(&c).unwrap_err();
    assert!(
        err.starts_with("dataset file 'nonexist.json' not found: there is no such local file")
            && err.contains(
                "check the path given to --dataset-file: no local file 'nonexist.json' exists"
            )
            && !err.contains("copy that file here"),
        "{err}"
    );
    // A profile's file without network: how to run it anyway.
    let mut c = cfg();
    c.profile = Some("chat".into());
    c.dataset = Some(profiles::PROFILE_DATASET.into());
    c.dataset_file = Some("share_gpt_turns.json".into());
    let err = prepare(&c).unwrap_err();
    assert!(
        err.contains("HF_HUB_OFFLINE=1")
            && err.contains("--dataset-file /path/to/share_gpt_turns.json")
            && err.contains("--dataset synthetic"),
        "{err}"
    );
    c.dataset = Some("synthetic".into());
    assert_eq!(prepare(&c).unwrap().source, "synthetic");
}

#[test]
fn dataset_whole_prompts() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_dataset(
        dir.path(),
        r#"[{"conversations":[{"role":"system","content":"Be nice."},{"role":"user","content":"What is a cat?"},{"role":"assistant","content":"An animal."}]},
            {"conversations":[{"role":"user","content":"Hello there"}]}]"#,
    );
    let mut c = cfg();
    c.dataset = None;
    c.dataset_file = Some(file.clone());
    c.decode_options = Some(TokenizeOptions::fixed(64));
    let w = prepare(&c).unwrap();
    assert_eq!(w.source, file.display().to_string());
    assert_eq!(w.requests.len(), 2);
    let r = &w.requests[0];
    assert_eq!(
        r.messages,
        vec![msg("system", "Be nice."), msg("user", "What is a cat?")]
    );
    assert_eq!(r.prompt, "Be nice.\nWhat is a cat?");
    assert_eq!(r.prompt_tokens, count_tokens(&w.tokenizer, &r.prompt));
    assert_eq!(r.max_tokens, Some(64));
}

#[test]
fn dataset_prompts_cut_to_sampled_length() {
    let dir = tempfile::tempdir().unwrap();
    let long = synthetic::text(&mut StdRng::seed_from_u64(4), 200);
    let json = serde_json::json!([
        {"conversations": [{"role": "system", "content": "You answer questions."}, {"role": "user", "content": long}]},
        {"conversations": [{"role": "user", "content": "Too short."}]},
        {"conversations": [{"role": "system", "content": long}, {"role": "user", "content": "Loses its user turn."}]},
    ]);
    let file = write_dataset(dir.path(), &json.to_string());
    let mut c = cfg();
    c.dataset = None;
    c.dataset_file = Some(file);
    c.prompt_options = Some(TokenizeOptions::fixed(40));
    let w = prepare(&c).unwrap();
    assert_eq!(w.requests.len(), 1);
    let r = &w.requests[0];
    assert_eq!(r.prompt_tokens, 40);
    assert_eq!(count_tokens(&w.tokenizer, &r.prompt), 40);
    assert_eq!(r.messages.len(), 2);
    assert_eq!(r.messages[0], msg("system", "You answer questions."));
    assert_eq!(r.messages[1].role, "user");
    assert!(long.starts_with(&r.messages[1].content));
    assert_eq!(r.prompt, join_contents(&r.messages));
}

#[test]
fn later_turns_are_tokenized_with_their_own_max_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let long = synthetic::text(&mut StdRng::seed_from_u64(4), 200);
    let json = serde_json::json!([
        {"conversations": [{"role": "user", "content": long}, {"role": "assistant", "content": "x"},
                           {"role": "user", "content": "Second question?"}, {"role": "user", "content": "Third."}]},
        {"conversations": [{"role": "user", "content": "Single."}]},
    ]);
    let file = write_dataset(dir.path(), &json.to_string());
    for prompt_options in [None, Some(TokenizeOptions::fixed(40))] {
        let mut c = cfg();
        c.dataset = None;
        c.dataset_file = Some(file.clone());
        c.prompt_options = prompt_options.clone();
        c.decode_options = Some(
            "num_tokens=20,min_tokens=10,max_tokens=30,variance=25"
                .parse()
                .unwrap(),
        );
        let w = prepare(&c).unwrap();
        let r = &w.requests[0];
        assert_eq!(r.later_turns.len(), 2, "{prompt_options:?}");
        for t in &r.later_turns {
            assert_eq!(t.tokens, count_tokens(&w.tokenizer, &t.content));
            assert!((10..=30).contains(&t.max_tokens.unwrap()));
        }
        assert_eq!(r.later_turns[1].content, "Third.");
        assert_eq!(w.describe()["multi_turn_conversations"], 1);
    }
}

#[test]
fn cuts_are_exact_across_progress_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(5);
    let n = PROGRESS_BATCH + 100;
    let entries: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let text = synthetic::text(&mut rng, 40);
            serde_json::json!({"id": i, "conversations": [{"role": "system", "content": "Sys."}, {"role": "user", "content": text}]})
        })
        .collect();
    let file = write_dataset(dir.path(), &serde_json::Value::Array(entries).to_string());
    let mut c = cfg();
    c.dataset = None;
    c.dataset_file = Some(file);
    c.prompt_options = Some(TokenizeOptions::fixed(20));
    let w = prepare(&c).unwrap();
    assert_eq!(w.requests.len(), n);
    for r in &w.requests {
        assert_eq!(r.prompt_tokens, 20);
        assert_eq!(count_tokens(&w.tokenizer, &r.prompt), 20);
        assert_eq!(r.messages[0], msg("system", "Sys."));
    }
}

#[test]
fn dataset_none_long_enough_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_dataset(
        dir.path(),
        r#"[{"conversations":[{"role":"user","content":"Short."}]}]"#,
    );
    let mut c = cfg();
    c.dataset = None;
    c.dataset_file = Some(file);
    c.prompt_options = Some(TokenizeOptions::fixed(500));
    let err = prepare(&c).unwrap_err();
    assert!(
        err.contains("no prompt is long enough") && err.contains("1 shorter"),
        "{err}"
    );
}

#[test]
fn separators_and_truncation() {
    let p = DatasetPrompt {
        id: None,
        messages: vec![msg("system", "abc"), msg("system", ""), msg("user", "defg")],
        later_turns: Vec::new(),
        extras: Default::default(),
    };
    let starts = message_starts(&p.messages);
    assert_eq!(starts, vec![0, 4, 5]);
    assert_eq!(join_contents(&p.messages), "abc\n\ndefg");
    // Just after a separator → back before it (through the empty message too).
    assert_eq!(off_separator(&starts, 5), 3);
    assert_eq!(off_separator(&starts, 4), 3);
    assert_eq!(off_separator(&starts, 7), 7);
    assert_eq!(off_separator(&starts, 0), 0);
    let kept = truncate_messages(&p, &starts, 7).unwrap();
    assert_eq!(
        kept,
        vec![msg("system", "abc"), msg("system", ""), msg("user", "de")]
    );
    assert_eq!(join_contents(&kept), "abc\n\nde");
    assert_eq!(truncate_messages(&p, &starts, 3), None);
    assert_eq!(truncate_messages(&p, &starts, 10).unwrap(), p.messages);
}

#[test]
fn dataset_images_and_tools_are_prepared() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.png"),
        images::synthetic_png(8, 8, 3).unwrap(),
    )
    .unwrap();
    let ds = r#"[
        {"id": "agent", "images": ["a.png"],
         "tools": [{"type": "function", "function": {"name": "f"}}],
         "conversations": [
            {"role": "user", "content": "Call f."},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "x", "type": "function",
                "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "x", "content": "result one"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "Again."}]},
        {"tools": [], "conversations": [{"role": "user", "content": "No results."}]}
    ]"#;
    let mut c = cfg();
    c.dataset = None;
    c.dataset_file = Some(write_dataset(dir.path(), ds));
    c.decode_options = Some(TokenizeOptions::fixed(5));
    let w = prepare(&c).unwrap();
    let first = &w.requests[0];
    let extras = first.messages[0].extras.as_ref().unwrap();
    assert_eq!(extras.images.len(), 1);
    assert!(extras.images[0]
        .data_uri
        .starts_with("data:image/png;base64,"));
    let tools = first.tools.as_ref().unwrap();
    assert_eq!(tools.definitions[0]["function"]["name"], "f");
    assert_eq!(tools.results.len(), 1);
    assert_eq!(tools.result(0).content, "result one");
    assert_eq!(tools.result(5).content, "result one");
    assert_eq!(tools.result(0).max_tokens, Some(5));
    assert_eq!(first.later_turns.len(), 1);
    assert!(first.is_conversation());
    let second = &w.requests[1];
    let tools = second.tools.as_ref().unwrap();
    assert_eq!(
        tools.result(0).content,
        super::entry_extras::DEFAULT_TOOL_RESULT
    );
    assert_eq!(w.describe()["images"], 1);
    assert_eq!(w.describe()["prompts_with_tools"], 2);

    for (bad, needle) in [
        (
            r#"[{"images": ["missing.png"], "conversations": [{"role": "user", "content": "x"}]}]"#,
            "prompt #1: image",
        ),
        (
            r#"[{"tools": {"a": 1}, "conversations": [{"role": "user", "content": "x"}]}]"#,
            "`tools` must be a list",
        ),
    ] {
        c.dataset_file = Some(write_dataset(dir.path(), bad));
        let err = prepare(&c).unwrap_err();
        assert!(err.contains(needle), "{err}");
    }
}

#[test]
fn image_options_add_seeded_images_and_keep_the_prompts() {
    let plain = prepare(&cfg()).unwrap();
    let mut c = cfg();
    c.image_options = Some("width=30,height=20,count=2".parse().unwrap());
    let with = prepare(&c).unwrap();
    let again = prepare(&c).unwrap();
    for ((p, w), a) in plain
        .requests
        .iter()
        .zip(&with.requests)
        .zip(&again.requests)
    {
        assert_eq!(p.prompt, w.prompt, "the same prompts with images");
        let images = &w.messages[0].extras.as_ref().unwrap().images;
        assert_eq!(images.len(), 2);
        assert_eq!(images, &a.messages[0].extras.as_ref().unwrap().images);
    }
    assert_eq!(with.describe()["images"], 40);
}

/// `--cache-salt`: a salt changes every synthetic prompt's first tokens and nothing else (the
/// same lengths, the same seeded text after them); the same salt gives the same prompts, none
/// gives the seed's prompts alone.
#[test]
fn cache_salt_changes_only_the_first_tokens() {
    let with = |salt: Option<&str>| {
        let mut c = cfg();
        c.prompt_options = Some("num_tokens=60".parse().unwrap());
        c.cache_salt = salt.map(str::to_string);
        prepare(&c).unwrap()
    };
    let (a, b, none) = (with(Some("a")), with(Some("b")), with(None));
    assert_eq!(a.requests, with(Some("a")).requests, "a fixed salt replays");
    assert_eq!(none.requests, with(None).requests);
    let head = super::salt::SALT_TOKENS as usize;
    let ids = |text: &str| {
        a.tokenizer
            .encode_fast(text, false)
            .unwrap()
            .get_ids()
            .to_vec()
    };
    for ((a, b), n) in a.requests.iter().zip(&b.requests).zip(&none.requests) {
        let (ia, ib, inone) = (ids(&a.prompt), ids(&b.prompt), ids(&n.prompt));
        assert_eq!((ia.len(), ib.len(), inone.len()), (60, 60, 60));
        assert_eq!((a.prompt_tokens, b.prompt_tokens), (60, 60));
        assert_ne!(ia[..head], ib[..head], "{:?} / {:?}", a.prompt, b.prompt);
        assert_eq!(ia[head..], ib[head..], "{:?} / {:?}", a.prompt, b.prompt);
        assert_ne!(ia[..head], inone[..head]);
        assert_eq!(a.messages[0].content, a.prompt);
    }
    // The salts differ from prompt to prompt: no shared first tokens within a run.
    let firsts: std::collections::HashSet<Vec<u32>> = a
        .requests
        .iter()
        .map(|r| ids(&r.prompt)[..head].to_vec())
        .collect();
    assert_eq!(firsts.len(), a.requests.len());
}

/// A trace's prompts that shared a prefix still share it under a salt (their first block names
/// their salt), and another salt changes them all.
#[test]
fn cache_salt_keeps_a_traces_shared_prefixes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jsonl");
    std::fs::write(
        &path,
        "{\"timestamp\": 0, \"input_length\": 700, \"output_length\": 5, \"hash_ids\": [4, 1]}\n\
         {\"timestamp\": 10, \"input_length\": 700, \"output_length\": 5, \"hash_ids\": [4, 2]}\n\
         {\"timestamp\": 20, \"input_length\": 700, \"output_length\": 5}\n",
    )
    .unwrap();
    let with = |salt: &str| {
        let mut c = cfg();
        c.trace = Some(TraceSource {
            path: path.clone(),
            speedup: 1.0,
            shard: None,
        });
        c.cache_salt = Some(salt.into());
        prepare(&c).unwrap()
    };
    let (a, b) = (with("a"), with("b"));
    let p = |w: &Workload, k: usize| w.requests[k].prompt.clone();
    let common = |x: &str, y: &str| x.bytes().zip(y.bytes()).take_while(|(a, b)| a == b).count();
    assert!(common(&p(&a, 0), &p(&a, 1)) > 1000, "block 4 still shared");
    assert!(common(&p(&a, 0), &p(&a, 2)) < 40);
    for k in 0..3 {
        assert_eq!(a.requests[k].prompt_tokens, 700);
        assert!(common(&p(&a, k), &p(&b, k)) < 40, "another salt");
    }
}
