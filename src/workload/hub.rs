//! Files from the Hugging Face hub (`tokenizer.json`, dataset files), with the hub's own cache
//! layout so a cache filled by `huggingface_hub` (Python) is reused and vice versa:
//!
//! ```text
//! $HF_HUB_CACHE (default $HF_HOME/hub, HF_HOME default ~/.cache/huggingface)
//!   models--org--name/refs/main            the commit the revision "main" points to
//!   models--org--name/snapshots/<commit>/tokenizer.json
//!   datasets--org--name/snapshots/<commit>/file.json
//! ```
//!
//! Downloads happen before the run starts (no actix System exists yet), so a small blocking
//! client (`ureq`) does the work. Environment, as the hub's own clients read it:
//!
//! - `HF_ENDPOINT`: the hub's base URL (default `https://huggingface.co`).
//! - `HF_TOKEN` (or the older `HUGGING_FACE_HUB_TOKEN`), else the file `$HF_HOME/token`: sent as
//!   `Authorization: Bearer …`. The token is never logged, printed or stored by us.
//! - `HF_HUB_OFFLINE=1`: no network at all; only the cache is used.
//!
//! Each fetch asks the hub first (one GET to `/{repo}/resolve/{revision}/{file}`, or
//! `/datasets/{repo}/resolve/…`); when the answer names a commit already in the cache, the body
//! is not read. When the hub cannot be reached, a cached copy is used (and said so).

use std::fmt;
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

/// The default revision.
pub const MAIN: &str = "main";
const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// Connecting should be quick; a dataset download may take a while.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RepoType {
    Model,
    Dataset,
}

impl RepoType {
    fn cache_prefix(self) -> &'static str {
        match self {
            RepoType::Model => "models",
            RepoType::Dataset => "datasets",
        }
    }

    fn url_prefix(self) -> &'static str {
        match self {
            RepoType::Model => "",
            RepoType::Dataset => "datasets/",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            RepoType::Model => "model repository",
            RepoType::Dataset => "dataset repository",
        }
    }
}

/// Where and how to reach the hub. `Debug` never shows the token.
#[derive(Clone, PartialEq, Eq)]
pub struct HubEnv {
    pub endpoint: String,
    pub cache_dir: PathBuf,
    pub token: Option<String>,
    pub offline: bool,
}

impl fmt::Debug for HubEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubEnv")
            .field("endpoint", &self.endpoint)
            .field("cache_dir", &self.cache_dir)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("offline", &self.offline)
            .finish()
    }
}

impl HubEnv {
    /// From the process environment (see the module docs).
    pub fn from_env() -> Self {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// From any variable source (tests pass a map).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Self {
        let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let hf_home = var("HF_HOME").map(PathBuf::from).unwrap_or_else(|| {
            let cache = var("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| var("HOME").map(|h| Path::new(&h).join(".cache")))
                .unwrap_or_else(|| PathBuf::from(".cache"));
            cache.join("huggingface")
        });
        let cache_dir = var("HF_HUB_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| hf_home.join("hub"));
        let token = var("HF_TOKEN")
            .or_else(|| var("HUGGING_FACE_HUB_TOKEN"))
            .or_else(|| std::fs::read_to_string(hf_home.join("token")).ok())
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        let endpoint = var("HF_ENDPOINT")
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string())
            .trim()
            .trim_end_matches('/')
            .to_string();
        let offline = var("HF_HUB_OFFLINE").is_some_and(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            )
        });
        HubEnv {
            endpoint,
            cache_dir,
            token,
            offline,
        }
    }

    /// No network, the given cache: for tests and for callers that must not download.
    pub fn offline_at(cache_dir: PathBuf) -> Self {
        HubEnv {
            endpoint: DEFAULT_ENDPOINT.to_string(),
            cache_dir,
            token: None,
            offline: true,
        }
    }
}

/// Whether `name` can be a hub repository id (`org/name` or `name`).
pub fn is_repo_id(name: &str) -> bool {
    let parts: Vec<&str> = name.split('/').collect();
    parts.len() <= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && !p.starts_with('.')
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        })
}

/// A relative file path inside a repository: no `..`, not absolute.
pub fn is_repo_file(file: &str) -> bool {
    !file.is_empty()
        && Path::new(file)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// `<cache>/models--org--name`.
fn repo_dir(env: &HubEnv, kind: RepoType, repo: &str) -> PathBuf {
    env.cache_dir.join(format!(
        "{}--{}",
        kind.cache_prefix(),
        repo.replace('/', "--")
    ))
}

fn is_commit(revision: &str) -> bool {
    revision.len() == 40 && revision.chars().all(|c| c.is_ascii_hexdigit())
}

/// The cached copy of `file` at `revision`, if any.
pub fn cached(
    env: &HubEnv,
    kind: RepoType,
    repo: &str,
    revision: &str,
    file: &str,
) -> Option<PathBuf> {
    let dir = repo_dir(env, kind, repo);
    let commit = if is_commit(revision) {
        revision.to_string()
    } else {
        std::fs::read_to_string(dir.join("refs").join(revision))
            .ok()?
            .trim()
            .to_string()
    };
    let path = dir.join("snapshots").join(commit).join(file);
    path.is_file().then_some(path)
}

/// The local path of `file` in `repo` at `revision`, downloaded if needed (module docs).
pub fn fetch(
    env: &HubEnv,
    kind: RepoType,
    repo: &str,
    revision: &str,
    file: &str,
) -> Result<PathBuf, String> {
    let what = format!("'{file}' of the {} '{repo}'", kind.noun());
    if !is_repo_id(repo) {
        return Err(format!(
            "'{repo}' is not a Hugging Face hub repository id (org/name)"
        ));
    }
    if !is_repo_file(file) || !is_repo_file(revision) {
        return Err(format!(
            "{what} at revision '{revision}': not a valid file or revision name"
        ));
    }
    let cache = cached(env, kind, repo, revision, file);
    if env.offline {
        return cache.ok_or_else(|| {
            format!(
                "{what} is not in the hub cache {} and HF_HUB_OFFLINE=1 forbids downloading it: download it once with network, or give a local path",
                env.cache_dir.display()
            )
        });
    }
    let url = format!(
        "{}/{}{repo}/resolve/{revision}/{file}",
        env.endpoint,
        kind.url_prefix()
    );
    match download(env, kind, repo, revision, file, &url, &what) {
        Ok(path) => Ok(path),
        Err(Failure::Unreachable(e)) => match cache {
            Some(path) => {
                log::warn!(
                    "the Hugging Face hub at {} could not be reached ({e}); using the cached {}",
                    env.endpoint,
                    path.display()
                );
                Ok(path)
            }
            None => Err(format!(
                "{what} could not be downloaded: the Hugging Face hub at {} could not be reached ({e}) and the file is not in the cache {}. Without network, give a local path instead (a tokenizer.json or a dataset file), or use the built-in tokenizer and synthetic prompts",
                env.endpoint,
                env.cache_dir.display()
            )),
        },
        Err(Failure::Refused(e)) => Err(e),
    }
}

enum Failure {
    /// No answer from the hub: a cached copy may stand in.
    Unreachable(String),
    /// The hub answered no, or the answer could not be stored.
    Refused(String),
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_resolve(Some(CONNECT_TIMEOUT))
        .timeout_connect(Some(CONNECT_TIMEOUT))
        // A hub that accepts the connection but never answers is unreachable too.
        .timeout_recv_response(Some(CONNECT_TIMEOUT * 3))
        .timeout_global(Some(DOWNLOAD_TIMEOUT))
        // A renamed repository redirects on the same host and still needs the token; the CDN
        // that serves large files gets signed URLs and must not see it.
        .redirect_auth_headers(ureq::config::RedirectAuthHeaders::SameHost)
        .user_agent(concat!("inference-benchmarker/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

fn download(
    env: &HubEnv,
    kind: RepoType,
    repo: &str,
    revision: &str,
    file: &str,
    url: &str,
    what: &str,
) -> Result<PathBuf, Failure> {
    let mut req = agent().get(url);
    if let Some(token) = &env.token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let resp = req
        .call()
        .map_err(|e| Failure::Unreachable(e.to_string()))?;
    let status = resp.status().as_u16();
    if !(200..300).contains(&status) {
        return Err(Failure::Refused(status_error(
            env, kind, repo, status, what,
        )));
    }
    let commit = resp
        .headers()
        .get("x-repo-commit")
        .and_then(|v| v.to_str().ok())
        .filter(|c| is_repo_file(c))
        .unwrap_or(revision)
        .to_string();
    let dir = repo_dir(env, kind, repo);
    let target = dir.join("snapshots").join(&commit).join(file);
    let store = |e: std::io::Error| {
        Failure::Refused(format!(
            "{what}: could not store it in the hub cache {}: {e}",
            dir.display()
        ))
    };
    // A snapshot folder is immutable: the same commit means the same file.
    if !target.is_file() {
        let parent = target.parent().unwrap_or(&dir);
        std::fs::create_dir_all(parent).map_err(store)?;
        let mut tmp = tempfile_in(parent).map_err(store)?;
        let mut body = resp.into_body().into_reader();
        std::io::copy(&mut body, &mut tmp.1)
            .map_err(|e| Failure::Unreachable(format!("the download of {what} broke off: {e}")))?;
        tmp.1.flush().map_err(store)?;
        std::fs::rename(&tmp.0, &target).map_err(store)?;
        log::info!("downloaded {what} to {}", target.display());
    }
    if revision != commit {
        let refs = dir.join("refs");
        std::fs::create_dir_all(&refs)
            .and_then(|_| std::fs::write(refs.join(revision), &commit))
            .map_err(store)?;
    }
    Ok(target)
}

/// A fresh file beside the target, renamed into place once complete (a broken download never
/// leaves a partial file under the final name).
fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let path = dir.join(format!(".download-{}-{}", std::process::id(), unique()));
    let file = std::fs::File::create(&path)?;
    Ok((path, file))
}

fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

fn status_error(env: &HubEnv, kind: RepoType, repo: &str, status: u16, what: &str) -> String {
    match status {
        401 | 403 if env.token.is_none() => format!(
            "{what}: the Hugging Face hub refused access (HTTP {status}): the {} '{repo}' is gated or private and no token was given. Accept its terms on the hub, then set HF_TOKEN (or log in so that $HF_HOME/token exists)",
            kind.noun()
        ),
        401 | 403 => format!(
            "{what}: the Hugging Face hub refused access (HTTP {status}) with the token given: check that it is valid and that its account was granted access to the gated or private {} '{repo}'",
            kind.noun()
        ),
        404 => format!(
            "{what}: not found on the Hugging Face hub at {} (HTTP 404): check the repository name, the file name and the revision",
            env.endpoint
        ),
        _ => format!(
            "{what}: the Hugging Face hub at {} answered HTTP {status}",
            env.endpoint
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> HubEnv {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        HubEnv::from_vars(|k| map.get(k).cloned())
    }

    #[test]
    fn environment_defaults_and_overrides() {
        let e = env_of(&[("HOME", "/home/u")]);
        assert_eq!(e.endpoint, "https://huggingface.co");
        assert_eq!(e.cache_dir, Path::new("/home/u/.cache/huggingface/hub"));
        assert!(!e.offline && e.token.is_none());

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "hf_file\n").unwrap();
        let home = dir.path().to_str().unwrap();
        let e = env_of(&[
            ("HF_HOME", home),
            ("HF_ENDPOINT", "http://127.0.0.1:9/"),
            ("HF_HUB_OFFLINE", "1"),
        ]);
        assert_eq!(e.endpoint, "http://127.0.0.1:9");
        assert_eq!(e.cache_dir, dir.path().join("hub"));
        assert_eq!(e.token.as_deref(), Some("hf_file"));
        assert!(e.offline);
        let e = env_of(&[
            ("HF_HOME", home),
            ("HF_TOKEN", "hf_env"),
            ("HF_HUB_CACHE", "/c"),
        ]);
        assert_eq!(e.token.as_deref(), Some("hf_env"));
        assert_eq!(e.cache_dir, Path::new("/c"));
        assert!(
            !format!("{e:?}").contains("hf_env"),
            "Debug must hide the token"
        );
    }

    #[test]
    fn repo_ids_and_files() {
        for ok in ["org/name", "gpt2", "meta-llama/Llama-3.1-8B", "a_b/c.d"] {
            assert!(is_repo_id(ok), "{ok}");
        }
        for bad in [
            "",
            "/x",
            "a/b/c",
            "../x",
            "a/..",
            "a b",
            "./tokenizer.json",
            "/abs/path",
        ] {
            assert!(!is_repo_id(bad), "{bad}");
        }
        assert!(is_repo_file("data/train.json"));
        assert!(!is_repo_file("../x") && !is_repo_file("/x") && !is_repo_file(""));
    }

    #[test]
    fn offline_uses_the_cache_layout() {
        let dir = tempfile::tempdir().unwrap();
        let env = HubEnv::offline_at(dir.path().to_path_buf());
        let err = fetch(&env, RepoType::Model, "org/m", MAIN, "tokenizer.json").unwrap_err();
        assert!(
            err.contains("HF_HUB_OFFLINE=1") && err.contains("'org/m'"),
            "{err}"
        );
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let repo = dir.path().join("datasets--org--d");
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::create_dir_all(repo.join("snapshots").join(commit)).unwrap();
        std::fs::write(repo.join("refs/main"), format!("{commit}\n")).unwrap();
        let file = repo.join("snapshots").join(commit).join("d.json");
        std::fs::write(&file, "[]").unwrap();
        assert_eq!(
            fetch(&env, RepoType::Dataset, "org/d", MAIN, "d.json").unwrap(),
            file
        );
        assert_eq!(
            fetch(&env, RepoType::Dataset, "org/d", commit, "d.json").unwrap(),
            file
        );
        assert!(fetch(&env, RepoType::Model, "org/d", MAIN, "d.json").is_err());
    }
}
