//! Conversation datasets, from a local file or the Hugging Face hub. Accepted shapes, as a JSON
//! array or as JSON Lines (one entry per line):
//!
//! ```json
//! [{"conversations": [{"role": "system", "content": "..."},
//!                     {"role": "user", "content": "..."}, ...],
//!   "id": "optional, string or number"}]
//! ```
//!
//! (the original tool's), and ShareGPT's `{"conversations": [{"from": "human", "value": "..."}]}`
//! with `from` = `human` (user), `gpt` (assistant) or `system`.
//!
//! The first prompt of an entry is its messages up to and including the first `user` turn.
//! System turns keep the `system` role (the original tool sent them as `user`). Every later
//! `user` turn is kept as a follow-up turn of a multi-turn conversation; the dataset's own
//! `assistant` answers after the first user turn are not sent: the model's real answers take
//! their place during the run. Entries without a user turn, with an unknown role before it, or
//! with an empty prompt are skipped and counted.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::error::Category;

use super::hub::{self, HubEnv, RepoType};
use super::Message;

/// `--dataset synthetic`: the built-in synthetic source.
pub const SYNTHETIC: &str = "synthetic";

pub const ROLES: [&str; 3] = ["system", "user", "assistant"];

/// One usable entry: the messages that form its prompt.
#[derive(Clone, Debug, PartialEq)]
pub struct DatasetPrompt {
    /// The entry's `id` as text (numbers are formatted), if it had one.
    pub id: Option<String>,
    /// Ends with the entry's first `user` turn.
    pub messages: Vec<Message>,
    /// The contents of the entry's later `user` turns, in order (multi-turn chat).
    pub later_turns: Vec<String>,
    /// Its images and tools.
    pub extras: EntryExtras,
}

/// A dataset entry's images (sent with its first user turn) and tools (an agent-like loop).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EntryExtras {
    /// Image files relative to the dataset file, or `data:` URIs.
    pub images: Vec<String>,
    /// OpenAI function-tool definitions.
    pub tools: Option<serde_json::Value>,
    /// The contents of its `tool` turns after the first user turn: the results sent back for
    /// the model's tool calls, in order.
    pub tool_results: Vec<String>,
}

/// Why entries were skipped, with counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Skipped {
    pub no_user_turn: usize,
    pub empty_prompt: usize,
    /// Role name → entries skipped for it.
    pub unknown_roles: BTreeMap<String, usize>,
}

impl Skipped {
    pub fn total(&self) -> usize {
        self.no_user_turn + self.empty_prompt + self.unknown_roles.values().sum::<usize>()
    }
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.no_user_turn > 0 {
            parts.push(format!("{} without a user turn", self.no_user_turn));
        }
        if self.empty_prompt > 0 {
            parts.push(format!("{} with an empty prompt", self.empty_prompt));
        }
        for (role, n) in &self.unknown_roles {
            parts.push(format!("{n} with unknown role '{role}'"));
        }
        if parts.is_empty() {
            parts.push("none".into());
        }
        f.write_str(&parts.join(", "))
    }
}

#[derive(Clone, Debug)]
pub struct Dataset {
    pub path: PathBuf,
    /// Entries in the file.
    pub entries: usize,
    pub prompts: Vec<DatasetPrompt>,
    pub skipped: Skipped,
}

#[derive(Deserialize)]
struct RawEntry {
    conversations: Vec<RawMessage>,
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    images: Vec<String>,
    #[serde(default)]
    tools: Option<serde_json::Value>,
}

/// `{role, content}` or ShareGPT's `{from, value}`.
#[derive(Deserialize)]
struct RawMessage {
    role: Option<String>,
    content: Option<String>,
    from: Option<String>,
    value: Option<String>,
    /// An assistant turn that calls tools may have no content (the model's own calls are sent
    /// back instead of these).
    tool_calls: Option<serde::de::IgnoredAny>,
}

impl RawMessage {
    fn into_message(self) -> Result<Message, &'static str> {
        let content = match (&self.role, self.content, self.tool_calls) {
            (Some(_), None, Some(_)) => Some(String::new()),
            (_, content, _) => content,
        };
        match (self.role, content, self.from, self.value) {
            (Some(role), Some(content), _, _) => Ok(Message {
                role,
                content,
                extras: None,
            }),
            (None, None, Some(from), Some(value)) => Ok(Message {
                role: sharegpt_role(&from).unwrap_or(&from).to_string(),
                content: value,
                extras: None,
            }),
            (Some(_), None, _, _) => Err("missing field `content`"),
            (None, Some(_), _, _) => Err("missing field `role`"),
            (None, None, Some(_), None) => Err("missing field `value`"),
            (None, None, None, _) => {
                Err("a message needs `role` and `content` (or ShareGPT's `from` and `value`)")
            }
        }
    }
}

/// ShareGPT speaker names → roles.
fn sharegpt_role(from: &str) -> Option<&'static str> {
    Some(match from {
        "human" | "user" => "user",
        "gpt" | "chatgpt" | "bard" | "bing" | "assistant" => "assistant",
        "system" => "system",
        _ => return None,
    })
}

/// The original tool's default dataset: its `--dataset` and `--dataset-file` defaults.
pub const DEFAULT_DATASET: &str = "hlarcher/inference-benchmarker";
pub const DEFAULT_FILE: &str = "share_gpt_filtered_small.json";

/// Where the dataset is, from `--dataset` and `--dataset-file`; `None` for synthetic prompts.
/// Without either, the original tool's default: [`DEFAULT_FILE`] of the hub dataset
/// [`DEFAULT_DATASET`], as the original fetched it.
///
/// - `--dataset-file F` alone: the local file F; otherwise file F of [`DEFAULT_DATASET`] (the
///   original tool's default `--dataset`), when F can be a file name in a repository.
/// - `--dataset D`: a local file D, or a local folder D holding `--dataset-file`.
/// - `--dataset org/name --dataset-file F` with a local file F: F (the name is only a label of
///   where F came from).
/// - `--dataset org/name [--dataset-file F]` otherwise: file F (default [`DEFAULT_FILE`]) of the
///   hub dataset repository `org/name` (downloaded, or from the hub cache).
/// - `--dataset synthetic` (when no local path has that name): no dataset, the built-in
///   synthetic prompts, whatever `--dataset-file` says (so it overrides a profile's file).
pub fn resolve(
    dataset: Option<&str>,
    dataset_file: Option<&Path>,
    hub: &HubEnv,
) -> Result<Option<PathBuf>, String> {
    match (dataset, dataset_file) {
        (None, Some(file)) if file.is_file() => Ok(Some(file.to_path_buf())),
        (None, Some(file)) if !hub::is_repo_file(&file.to_string_lossy()) => Err(format!(
            "dataset file '{}' not found",
            file.display()
        )),
        // As the original tool: a name that is no local file is a file of the default dataset.
        (None, Some(file)) => hub::fetch(
            hub,
            RepoType::Dataset,
            DEFAULT_DATASET,
            hub::MAIN,
            &file.to_string_lossy(),
        )
        .map(Some)
        .map_err(|e| {
            format!(
                "dataset file '{}' not found: there is no such local file{}; as the original tool, it was then looked for in the default hub dataset, and {e}",
                file.display(),
                std::env::current_dir().map_or(String::new(), |d| format!(" in {}", d.display()))
            )
        }),
        (None, None) => resolve(Some(DEFAULT_DATASET), None, hub),
        (Some(SYNTHETIC), _) if !Path::new(SYNTHETIC).exists() => Ok(None),
        (Some(d), file) => {
            let dir = Path::new(d);
            if dir.is_file() && file.is_none() {
                return Ok(Some(dir.to_path_buf()));
            }
            if dir.is_dir() {
                let file = file.ok_or_else(|| {
                    format!(
                        "dataset folder '{d}': give --dataset-file naming the JSON file inside it"
                    )
                })?;
                return existing_file(&dir.join(file)).map(Some);
            }
            match file {
                Some(file) if file.is_file() => Ok(Some(file.to_path_buf())),
                file if hub::is_repo_id(d) => {
                    let name = file.map_or(DEFAULT_FILE.into(), |f| f.to_string_lossy());
                    hub::fetch(hub, RepoType::Dataset, d, hub::MAIN, &name)
                        .map(Some)
                        .map_err(|e| format!("dataset '{d}' is not a local file or folder, and from the Hugging Face hub: {e}"))
                }
                Some(file) => Err(format!(
                    "dataset '{d}' with file '{}': neither a local file or folder nor a Hugging Face hub dataset id (org/name)",
                    file.display()
                )),
                None => Err(format!(
                    "dataset '{d}' is neither a local file or folder nor a Hugging Face hub dataset id (org/name)"
                )),
            }
        }
    }
}

fn existing_file(path: &Path) -> Result<PathBuf, String> {
    if path.is_file() {
        Ok(path.to_path_buf())
    } else {
        Err(format!("dataset file '{}' not found", path.display()))
    }
}

/// Reads and parses a dataset file; errors name the path and what is wrong.
pub fn load(path: &Path) -> Result<Dataset, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("dataset file '{}' could not be read: {e}", path.display()))?;
    parse(&text, path)
}

/// Parses a dataset held in memory (a JSON array, or JSON Lines); `path` is for messages and
/// the result.
pub fn parse(text: &str, path: &Path) -> Result<Dataset, String> {
    let shown = path.display();
    let raw = if is_json_lines(text) {
        parse_lines(text, &shown)?
    } else {
        serde_json::from_str::<Vec<RawEntry>>(text).map_err(|e| parse_error(text, &shown, e))?
    };
    if raw.is_empty() {
        return Err(format!("dataset file '{shown}' has no entries"));
    }
    let entries = raw.len();
    let mut skipped = Skipped::default();
    let mut prompts = Vec::with_capacity(entries);
    for (i, entry) in raw.into_iter().enumerate() {
        let messages = entry
            .conversations
            .into_iter()
            .map(RawMessage::into_message)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("dataset file '{shown}', entry {}: {e}", i + 1))?;
        if let Some(mut p) = prompt_of(messages, entry.id, &mut skipped) {
            p.extras.images = entry.images;
            p.extras.tools = entry.tools.filter(|t| !t.is_null());
            prompts.push(p);
        }
    }
    if prompts.is_empty() {
        return Err(format!(
            "dataset file '{shown}': none of its {entries} entries has a usable prompt (skipped: {skipped})"
        ));
    }
    if skipped.total() > 0 {
        log::info!(
            "dataset '{shown}': {} of {entries} entries skipped: {skipped}",
            skipped.total()
        );
    }
    Ok(Dataset {
        path: path.to_path_buf(),
        entries,
        prompts,
        skipped,
    })
}

/// JSON Lines start with an object; a JSON array with `[`.
fn is_json_lines(text: &str) -> bool {
    text.trim_start().starts_with('{')
}

fn parse_lines(text: &str, shown: &dyn fmt::Display) -> Result<Vec<RawEntry>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str::<RawEntry>(line).map_err(|e| {
                let line = i + 1;
                if e.classify() == Category::Data {
                    format!("dataset file '{shown}' has the wrong shape (JSON Lines, line {line}: {e}): expected {{\"conversations\": [{{\"role\": \"user\", \"content\": \"...\"}}, ...]}} on each line")
                } else {
                    format!("dataset file '{shown}' is not valid JSON (JSON Lines, line {line}): {e}")
                }
            })
        })
        .collect()
}

/// "not valid JSON" or "wrong shape". A shape error can come before a syntax error further
/// on ("{not json" is a map first), so the syntax of the whole text is checked before blaming
/// the shape.
fn parse_error(text: &str, shown: &dyn fmt::Display, e: serde_json::Error) -> String {
    if e.classify() != Category::Data {
        return format!("dataset file '{shown}' is not valid JSON: {e}");
    }
    match serde_json::from_str::<IgnoredAny>(text) {
        Err(syntax) => format!("dataset file '{shown}' is not valid JSON: {syntax}"),
        Ok(_) => format!(
            "dataset file '{shown}' has the wrong shape ({e}): expected [{{\"conversations\": [{{\"role\": \"user\", \"content\": \"...\"}}, ...]}}, ...]"
        ),
    }
}

/// The entry's messages up to and including its first user turn (and its later user turns),
/// or why it has none.
fn prompt_of(
    mut messages: Vec<Message>,
    id: Option<serde_json::Value>,
    skipped: &mut Skipped,
) -> Option<DatasetPrompt> {
    let Some(user) = messages.iter().position(|m| m.role == "user") else {
        skipped.no_user_turn += 1;
        return None;
    };
    let (mut later_turns, mut tool_results) = (Vec::new(), Vec::new());
    for m in messages.drain(user + 1..) {
        match m.role.as_str() {
            "user" if !m.content.is_empty() => later_turns.push(m.content),
            "tool" => tool_results.push(m.content),
            _ => {}
        }
    }
    if let Some(bad) = messages.iter().find(|m| !ROLES.contains(&m.role.as_str())) {
        *skipped.unknown_roles.entry(bad.role.clone()).or_default() += 1;
        return None;
    }
    if messages.iter().all(|m| m.content.is_empty()) {
        skipped.empty_prompt += 1;
        return None;
    }
    let id = id.and_then(|v| match v {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    });
    Some(DatasetPrompt {
        id,
        messages,
        later_turns,
        extras: EntryExtras {
            tool_results,
            ..EntryExtras::default()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Dataset, String> {
        parse(text, Path::new("data.json"))
    }

    fn msg(role: &str, content: &str) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
            extras: None,
        }
    }

    #[test]
    fn prompt_is_up_to_first_user_turn_with_system_kept() {
        let ds = p(r#"[{"id": 7, "conversations": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi?"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "More?"}]}]"#)
        .unwrap();
        assert_eq!(ds.entries, 1);
        assert_eq!(
            ds.prompts,
            vec![DatasetPrompt {
                id: Some("7".into()),
                messages: vec![msg("system", "Be brief."), msg("user", "Hi?")],
                later_turns: vec!["More?".into()],
                extras: Default::default(),
            }]
        );
    }

    #[test]
    fn skips_are_counted() {
        let ds = p(r#"[
            {"conversations": [{"role": "user", "content": "ok"}], "id": "a", "extra": 1},
            {"conversations": [{"role": "assistant", "content": "no user"}]},
            {"conversations": []},
            {"conversations": [{"role": "tool", "content": "x"}, {"role": "user", "content": "y"}]},
            {"conversations": [{"role": "user", "content": ""}]},
            {"conversations": [{"role": "user", "content": "fine"}, {"role": "tool", "content": "after"}]}
        ]"#)
        .unwrap();
        assert_eq!(ds.entries, 6);
        assert_eq!(ds.prompts.len(), 2);
        assert_eq!(ds.prompts[0].id.as_deref(), Some("a"));
        assert_eq!(ds.prompts[1].id, None);
        assert_eq!(ds.skipped.no_user_turn, 2);
        assert_eq!(ds.skipped.empty_prompt, 1);
        assert_eq!(ds.skipped.unknown_roles.get("tool"), Some(&1));
        assert_eq!(ds.skipped.total(), 4);
        let shown = ds.skipped.to_string();
        assert!(
            shown.contains("2 without a user turn") && shown.contains("unknown role 'tool'"),
            "{shown}"
        );
    }

    #[test]
    fn errors_name_the_path_and_problem() {
        let cases = [
            ("{not json", "is not valid JSON"),
            ("", "is not valid JSON"),
            (r#""just a string""#, "wrong shape"),
            (r#"{"conversations": 3}"#, "wrong shape (JSON Lines, line 1"),
            (
                "{\"conversations\": []}\n{oops",
                "not valid JSON (JSON Lines, line 2)",
            ),
            (r#"[{"messages": []}]"#, "missing field `conversations`"),
            (
                r#"[{"conversations": [{"role": "user"}]}]"#,
                "missing field `content`",
            ),
            ("[]", "has no entries"),
            (
                r#"[{"conversations": [{"role": "assistant", "content": "x"}]}]"#,
                "none of its 1 entries has a usable prompt (skipped: 1 without a user turn)",
            ),
        ];
        for (text, needle) in cases {
            let err = p(text).unwrap_err();
            assert!(
                err.contains("'data.json'") && err.contains(needle),
                "{text:?}: {err}"
            );
        }
    }

    #[test]
    fn load_reads_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("d.json");
        std::fs::write(
            &file,
            r#"[{"conversations":[{"role":"user","content":"q"}]}]"#,
        )
        .unwrap();
        let ds = load(&file).unwrap();
        assert_eq!(ds.path, file);
        assert_eq!(ds.prompts.len(), 1);
        let missing = dir.path().join("missing.json");
        let err = load(&missing).unwrap_err();
        assert!(
            err.contains("missing.json") && err.contains("could not be read"),
            "{err}"
        );
    }

    #[test]
    fn resolve_local_paths_and_hub_names() {
        let dir = tempfile::tempdir().unwrap();
        let offline = HubEnv::offline_at(dir.path().join("hub"));
        let resolve = |d, f| super::resolve(d, f, &offline);
        let file = dir.path().join("d.json");
        std::fs::write(&file, "[]").unwrap();
        let d = dir.path().to_str().unwrap();
        let f = file.to_str().unwrap();

        assert_eq!(resolve(Some("synthetic"), None).unwrap(), None);
        assert_eq!(resolve(Some("synthetic"), Some(&file)).unwrap(), None);
        assert_eq!(resolve(None, Some(&file)).unwrap(), Some(file.clone()));
        assert_eq!(resolve(Some(f), None).unwrap(), Some(file.clone()));
        assert_eq!(
            resolve(Some(d), Some(Path::new("d.json"))).unwrap(),
            Some(file.clone())
        );
        assert_eq!(
            resolve(Some("org/name"), Some(&file)).unwrap(),
            Some(file.clone())
        );

        // Nothing given: the original tool's default, from the hub (here: its cache, empty).
        let err = resolve(None, None).unwrap_err();
        assert!(
            err.contains("'share_gpt_filtered_small.json' of the dataset repository 'hlarcher/inference-benchmarker'")
                && err.contains("HF_HUB_OFFLINE=1"),
            "{err}"
        );
        // A file name alone that is no local file: the default dataset's file, as the original.
        let err = resolve(None, Some(Path::new("nope.json"))).unwrap_err();
        assert!(
            err.starts_with("dataset file 'nope.json' not found: there is no such local file")
                && err.contains(
                    "'nope.json' of the dataset repository 'hlarcher/inference-benchmarker'"
                ),
            "{err}"
        );
        let err = resolve(None, Some(Path::new("/no/such/file.json"))).unwrap_err();
        assert!(err.contains("'/no/such/file.json' not found"), "{err}");
        let err = resolve(Some(d), None).unwrap_err();
        assert!(err.contains("give --dataset-file"), "{err}");
        let err = resolve(Some(d), Some(Path::new("other.json"))).unwrap_err();
        assert!(err.contains("other.json' not found"), "{err}");
        // A hub dataset alone: the original tool's default file of it.
        let err = resolve(Some("org/name"), None).unwrap_err();
        assert!(
            err.contains("'share_gpt_filtered_small.json' of the dataset repository 'org/name'"),
            "{err}"
        );
        let err = resolve(Some("org/name"), Some(Path::new("x.json"))).unwrap_err();
        assert!(
            err.contains("'x.json' of the dataset repository 'org/name'")
                && err.contains("HF_HUB_OFFLINE=1"),
            "{err}"
        );
        let err = resolve(Some("a b"), Some(Path::new("x.json"))).unwrap_err();
        assert!(err.contains("with file 'x.json'"), "{err}");
    }

    #[test]
    fn sharegpt_and_json_lines() {
        let sharegpt = r#"[{"id": "s1", "conversations": [
            {"from": "system", "value": "Be kind."},
            {"from": "human", "value": "Hi"},
            {"from": "gpt", "value": "Hello!"},
            {"from": "human", "value": "How are you?"},
            {"from": "gpt", "value": "Fine."},
            {"from": "human", "value": "Bye"}]}]"#;
        let expected = DatasetPrompt {
            id: Some("s1".into()),
            messages: vec![msg("system", "Be kind."), msg("user", "Hi")],
            later_turns: vec!["How are you?".into(), "Bye".into()],
            extras: Default::default(),
        };
        assert_eq!(p(sharegpt).unwrap().prompts, vec![expected.clone()]);
        let lines = concat!(
            r#"{"id": "s1", "conversations": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "How are you?"}, {"role": "user", "content": "Bye"}]}"#,
            "\n\n",
            r#"{"conversations": [{"from": "human", "value": "Second"}, {"from": "bot", "value": "?"}]}"#,
            "\n"
        );
        let ds = p(lines).unwrap();
        assert_eq!(ds.entries, 2);
        assert_eq!(ds.prompts[0], expected);
        assert_eq!(ds.prompts[1].messages, vec![msg("user", "Second")]);
        assert!(ds.prompts[1].later_turns.is_empty());
        let err = p(r#"[{"conversations": [{"from": "human"}]}]"#).unwrap_err();
        assert!(err.contains("entry 1: missing field `value`"), "{err}");
        let ds = p(r#"[{"conversations": [{"from": "tool", "value": "x"}, {"from": "human", "value": "y"}]}, {"conversations": [{"from": "human", "value": "z"}]}]"#).unwrap();
        assert_eq!(ds.skipped.unknown_roles.get("tool"), Some(&1));
    }
}
