//! The source tree's shape (issue #16): files of one job each and at most 600 lines before their
//! tests, `src/request/` pure HTTP/SSE that knows nothing of the load models, and no import
//! cycles between the folders of `src/`. Pure file reading: no build, no network.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Lines a source file may have before its first `#[cfg(test)]` line.
const MAX_LINES: usize = 600;

/// The top-level modules of `src/` allowed in one import cycle: none (the configuration holds
/// its own types: `config/arrival.rs`, `config/options.rs`).
const KNOWN_CYCLE: &[&str] = &[];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// A file that is tests and nothing else: `tests.rs`, or anything under a `tests/` folder.
fn wholly_tests(path: &Path, base: &Path) -> bool {
    let rel = path.strip_prefix(base).unwrap_or(path);
    rel.file_name().is_some_and(|n| n == "tests.rs")
        || rel
            .parent()
            .is_some_and(|p| p.components().any(|c| c.as_os_str() == "tests"))
}

#[test]
fn no_source_file_is_over_600_lines_before_its_tests() {
    let mut long = Vec::new();
    for dir in ["src", "sinks/src", "sim/src"] {
        let base = root().join(dir);
        for path in rust_files(&base) {
            if wholly_tests(&path, &base) {
                continue;
            }
            let text = read(&path);
            let code = text
                .lines()
                .take_while(|l| !l.trim_start().starts_with("#[cfg(test)]"))
                .count();
            if code > MAX_LINES {
                long.push(format!("{}: {code} lines", relative(&path)));
            }
        }
    }
    assert!(
        long.is_empty(),
        "split these files (at most {MAX_LINES} lines before #[cfg(test)]):\n{}",
        long.join("\n")
    );
}

#[test]
fn request_knows_nothing_of_the_load_models() {
    let forbidden = [
        "crate::load",
        "crate::coordinator",
        "crate::console",
        "crate::outputs",
    ];
    let mut found = Vec::new();
    for path in rust_files(&root().join("src/request")) {
        let text = read(&path);
        for f in forbidden {
            if text.contains(f) {
                found.push(format!("{} mentions {f}", relative(&path)));
            }
        }
    }
    assert!(
        found.is_empty(),
        "src/request/ is HTTP/SSE only:\n{}",
        found.join("\n")
    );
}

/// The top-level modules of `src/`: its folders and its `.rs` files but `lib.rs` and `main.rs`.
fn top_level_modules() -> BTreeSet<String> {
    fs::read_dir(root().join("src"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_string();
            if p.is_dir() {
                Some(name)
            } else {
                let stem = name.strip_suffix(".rs")?;
                (stem != "lib" && stem != "main").then(|| stem.to_string())
            }
        })
        .collect()
}

/// The names a text reaches through `crate::`: `crate::a::…` and `crate::{a, b::…}`.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut names = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        // Not `sinks::crate::`-like tails of other paths, nor `$crate::`.
        if text[..i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            names.extend(group.split(',').map(ident));
        } else {
            names.insert(ident(rest));
        }
    }
    names.retain(|n| !n.is_empty());
    names
}

/// Edges Y → X: a file under the top-level module Y mentions `crate::X`, X another top-level
/// module.
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let modules = top_level_modules();
    let src = root().join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = modules
        .iter()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    for path in rust_files(&src) {
        let rel = path.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap();
        let from = first.strip_suffix(".rs").unwrap_or(first);
        if !modules.contains(from) {
            continue; // lib.rs, main.rs
        }
        for to in crate_paths(&read(&path)) {
            if to != from && modules.contains(&to) {
                graph.get_mut(from).unwrap().insert(to);
            }
        }
    }
    graph
}

fn show(graph: &BTreeMap<String, BTreeSet<String>>) -> String {
    graph
        .iter()
        .map(|(from, to)| {
            let to: Vec<&str> = to.iter().map(String::as_str).collect();
            format!("  {from} -> {}", to.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The strongly connected components with more than one module (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    struct Tarjan<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<BTreeSet<String>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            let graph = self.graph;
            for w in &graph[v] {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = BTreeSet::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.insert(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.found.push(component);
                }
            }
        }
    }
    let mut t = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.found
}

#[test]
fn the_folders_of_src_import_each_other_without_cycles() {
    let graph = import_graph();
    let edge = |a: &str, b: &str| graph.get(a).is_some_and(|to| to.contains(b));
    // The pairs issue #16 names, never both ways.
    for (a, b) in [("request", "load"), ("coordinator", "runtime")] {
        assert!(
            !(edge(a, b) && edge(b, a)),
            "{a} and {b} import each other; the graph:\n{}",
            show(&graph)
        );
    }
    assert!(
        !edge("request", "load"),
        "src/request/ imports crate::load; the graph:\n{}",
        show(&graph)
    );
    let known: BTreeSet<String> = KNOWN_CYCLE.iter().map(|s| s.to_string()).collect();
    let new: Vec<_> = cycles(&graph)
        .into_iter()
        .filter(|c| !c.is_subset(&known))
        .collect();
    assert!(
        new.is_empty(),
        "import cycles between the folders of src/: {new:?}; the graph:\n{}",
        show(&graph)
    );
}

#[test]
fn pairs_split_to_break_cycles_stay_one_way() {
    // (the file that may import, the file that must not import it back, what would name it)
    let pairs: [(&str, &str, &[&str]); 3] = [
        // The configuration applies a shard's part; the shard knows nothing of the configuration.
        (
            "src/config/mod.rs",
            "src/config/shard.rs",
            &[
                "crate::config::RunConfig",
                "super::RunConfig",
                "crate::config::{",
            ],
        ),
        // The coordinator ends a run with its outcome; the outcome knows nothing of it.
        (
            "src/coordinator/mod.rs",
            "src/runtime/exit.rs",
            &["crate::coordinator"],
        ),
        // Merging builds results documents; the document knows nothing of merging.
        (
            "sinks/src/json/merge.rs",
            "sinks/src/json/report.rs",
            &["merge::", "json::merge"],
        ),
    ];
    for (user, used, back) in pairs {
        assert!(
            root().join(user).exists(),
            "{user} is gone: update this test"
        );
        let text = read(&root().join(used));
        for b in back {
            assert!(!text.contains(b), "{used} mentions {b} ({user} imports it)");
        }
    }
}
