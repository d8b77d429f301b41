//! Conversation datasets in the original tool's JSON format, from a local file:
//!
//! ```json
//! [{"conversations": [{"role": "system", "content": "..."},
//!                     {"role": "user", "content": "..."}, ...],
//!   "id": "optional, string or number"}]
//! ```
//!
//! The prompt of an entry is its messages up to and including the first `user` turn. System
//! turns keep the `system` role (the original tool sent them as `user`). Entries without a user
//! turn, with an unknown role before it, or with an empty prompt are skipped and counted. No
//! network: a dataset on the Hugging Face hub is an error for now.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::error::Category;

use super::Message;

pub const ROLES: [&str; 3] = ["system", "user", "assistant"];

/// One usable entry: the messages that form its prompt.
#[derive(Clone, Debug, PartialEq)]
pub struct DatasetPrompt {
    /// The entry's `id` as text (numbers are formatted), if it had one.
    pub id: Option<String>,
    /// Ends with the entry's first `user` turn.
    pub messages: Vec<Message>,
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
    conversations: Vec<Message>,
    #[serde(default)]
    id: Option<serde_json::Value>,
}

/// Where the dataset is, from `--dataset` and `--dataset-file`; `None` when neither is given.
///
/// - `--dataset-file F` alone: the local file F.
/// - `--dataset D`: a local file D, or a local folder D holding `--dataset-file`.
/// - `--dataset org/name --dataset-file F` with a local file F: F (the name is only a label of
///   where F came from).
/// - Anything else needs the Hugging Face hub: an error for now.
pub fn resolve(
    dataset: Option<&str>,
    dataset_file: Option<&Path>,
) -> Result<Option<PathBuf>, String> {
    match (dataset, dataset_file) {
        (None, None) => Ok(None),
        (None, Some(file)) => existing_file(file).map(Some),
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
                _ => Err(format!(
                    "dataset '{d}'{} is not a local file or folder (downloads from the Hugging Face hub are not supported yet): give a local JSON file with --dataset-file, or a local folder with --dataset",
                    file.map(|f| format!(" with file '{}'", f.display())).unwrap_or_default()
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

/// Parses a dataset held in memory; `path` is for messages and the result.
pub fn parse(text: &str, path: &Path) -> Result<Dataset, String> {
    let shown = path.display();
    let raw: Vec<RawEntry> =
        serde_json::from_str(text).map_err(|e| parse_error(text, &shown, e))?;
    if raw.is_empty() {
        return Err(format!("dataset file '{shown}' has no entries"));
    }
    let entries = raw.len();
    let mut skipped = Skipped::default();
    let prompts: Vec<DatasetPrompt> = raw
        .into_iter()
        .filter_map(|entry| prompt_of(entry, &mut skipped))
        .collect();
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

/// The entry's messages up to and including its first user turn, or why it has none.
fn prompt_of(entry: RawEntry, skipped: &mut Skipped) -> Option<DatasetPrompt> {
    let user = entry.conversations.iter().position(|m| m.role == "user");
    let Some(user) = user else {
        skipped.no_user_turn += 1;
        return None;
    };
    let mut messages = entry.conversations;
    messages.truncate(user + 1);
    if let Some(bad) = messages.iter().find(|m| !ROLES.contains(&m.role.as_str())) {
        *skipped.unknown_roles.entry(bad.role.clone()).or_default() += 1;
        return None;
    }
    if messages.iter().all(|m| m.content.is_empty()) {
        skipped.empty_prompt += 1;
        return None;
    }
    let id = entry.id.and_then(|v| match v {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    });
    Some(DatasetPrompt { id, messages })
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
            (r#"{"conversations": []}"#, "wrong shape"),
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
        let file = dir.path().join("d.json");
        std::fs::write(&file, "[]").unwrap();
        let d = dir.path().to_str().unwrap();
        let f = file.to_str().unwrap();

        assert_eq!(resolve(None, None).unwrap(), None);
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

        let err = resolve(None, Some(Path::new("nope.json"))).unwrap_err();
        assert!(err.contains("'nope.json' not found"), "{err}");
        let err = resolve(Some(d), None).unwrap_err();
        assert!(err.contains("give --dataset-file"), "{err}");
        let err = resolve(Some(d), Some(Path::new("other.json"))).unwrap_err();
        assert!(err.contains("other.json' not found"), "{err}");
        let err = resolve(Some("org/name"), None).unwrap_err();
        assert!(
            err.contains("'org/name'") && err.contains("hub are not supported"),
            "{err}"
        );
        let err = resolve(Some("org/name"), Some(Path::new("x.json"))).unwrap_err();
        assert!(err.contains("with file 'x.json'"), "{err}");
    }
}
