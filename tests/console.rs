//! The live console in a real terminal: a demo run inside tmux (its own server socket), the
//! pane captured while the run goes — steps and live figures on screen — then `q`: the run
//! stops cleanly, gives the terminal back and writes its results (exit code 130). Also at 80×24,
//! where every shown figure must be whole.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn tmux_available() -> bool {
    let found = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        common::missing("console", "tmux is not installed (Debian package tmux)");
    }
    found
}

/// A tmux server of our own, killed when the test ends.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]);
        c
    }

    fn capture(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-t", "run"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_for(&self, what: &str, timeout: Duration, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.capture();
            if ok(&screen) {
                return screen;
            }
            assert!(Instant::now() < deadline, "{what}; the screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").output();
    }
}

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

fn results_in(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "json"))
}

/// A demo run inside a tmux pane of `width`×`height`, writing into `dir`.
struct DemoRun {
    tmux: Tmux,
    out: PathBuf,
    exit_file: PathBuf,
}

impl DemoRun {
    fn start(dir: &Path, width: u16, height: u16) -> DemoRun {
        let out = dir.join("results");
        let exit_file = dir.join("exit");
        // CI is unset inside the pane: the console is what is under test.
        let command = format!(
            "env -u CI {} --demo -w 1s -d 30s --num-rates 2 --output-dir {}; echo $? > {}; sleep 120",
            shell_quote(Path::new(env!("CARGO_BIN_EXE_inference-benchmarker"))),
            shell_quote(&out),
            shell_quote(&exit_file),
        );
        let tmux = Tmux {
            socket: format!("ib-console-test-{}-{width}x{height}", std::process::id()),
        };
        let (w, h) = (width.to_string(), height.to_string());
        let started = tmux
            .cmd()
            .args([
                "new-session",
                "-d",
                "-s",
                "run",
                "-x",
                &w,
                "-y",
                &h,
                &command,
            ])
            .status()
            .expect("tmux runs");
        assert!(started.success());
        DemoRun {
            tmux,
            out,
            exit_file,
        }
    }

    /// Waits until the measured step is on screen with live figures: requests done, TTFT
    /// percentiles.
    fn live_screen(&self, ok: impl Fn(&str) -> bool) -> String {
        self.tmux.wait_for(
            "the console never showed the throughput step with live figures",
            Duration::from_secs(90),
            |s| {
                s.contains("▶ throughput")
                    && s.contains("TTFT ms")
                    && s.lines()
                        .find(|l| l.contains("Requests "))
                        .is_some_and(|l| !l.contains(" 0 ok"))
                    && ok(s)
            },
        )
    }

    /// q: no new requests, in-flight ones finish, results written; the exit code.
    fn stop(&self) -> String {
        self.tmux
            .cmd()
            .args(["send-keys", "-t", "run", "q"])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(text) = std::fs::read_to_string(&self.exit_file) {
                if !text.trim().is_empty() {
                    return text.trim().to_string();
                }
            }
            assert!(
                Instant::now() < deadline,
                "the run did not end after q:\n{}",
                self.tmux.capture()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[test]
fn live_console_shows_the_run_and_q_stops_it_with_results_written() {
    if !tmux_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = DemoRun::start(dir.path(), 160, 45);
    let screen = run.live_screen(|s| s.contains("In flight") && s.contains("Throughput vs rate"));
    assert!(screen.contains("✓ warmup"), "{screen}");
    assert!(screen.contains("q / Ctrl-C"), "{screen}");
    assert!(
        screen.contains("step 1 starts: throughput"),
        "the log pane: {screen}"
    );

    // q: no new requests, in-flight ones finish, results written, exit 130.
    let code = run.stop();
    assert_eq!(code, "130", "{}", run.tmux.capture());

    // The terminal is back: the captured log lines were replayed below the shell.
    let screen = run.tmux.capture();
    assert!(
        !screen.contains("┌ Steps"),
        "alternate screen left: {screen}"
    );
    assert!(screen.contains("interrupted"), "{screen}");

    let results = results_in(&run.out).expect("a results file");
    let doc = common::validated(&results);
    assert_eq!(doc["status"], "interrupted");
    let steps = doc["results"].as_array().unwrap();
    assert_eq!(steps.len(), 1, "the throughput step, ended early");
    assert!(steps[0]["successful_requests"].as_u64().unwrap() > 0);
    assert!(results.with_extension("html").is_file(), "report written");
    assert!(results.with_extension("md").is_file(), "summary written");
}

/// In an 80×24 terminal the console fits and reads whole: the step table's header labels are
/// whole words and every figure in the current step's row parses (the render unit tests in
/// `src/console/view.rs` check every word at several sizes; this is the real terminal).
#[test]
fn live_console_reads_whole_at_80_by_24() {
    if !tmux_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = DemoRun::start(dir.path(), 80, 24);
    let screen = run.live_screen(|_| true);
    let lines: Vec<&str> = screen.lines().collect();
    assert!(lines.len() <= 24, "{screen}");
    assert!(lines.iter().all(|l| l.chars().count() <= 80), "{screen}");
    let words = |line: &str| -> Vec<String> {
        line.split(|c: char| c.is_whitespace() || ('\u{2500}'..='\u{257f}').contains(&c))
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect()
    };
    let header = lines
        .iter()
        .find(|l| words(l).first().is_some_and(|w| w == "Step"))
        .unwrap_or_else(|| panic!("no step table header:\n{screen}"));
    for label in words(header) {
        assert!(
            ["Step", "tok/s", "req/s", "TTFT50", "ITL50", "err/all"].contains(&label.as_str()),
            "{label:?} is not a whole label:\n{screen}"
        );
    }
    let row = lines
        .iter()
        .find(|l| l.contains("▶ throughput"))
        .unwrap_or_else(|| panic!("no current step row:\n{screen}"));
    for cell in words(row).iter().skip(2) {
        let number = |s: &str| s.parse::<f64>().is_ok();
        assert!(
            number(cell)
                || cell
                    .split_once('/')
                    .is_some_and(|(a, b)| number(a) && number(b))
                || cell == "–",
            "{cell:?} is not a whole figure:\n{screen}"
        );
    }
    assert_eq!(run.stop(), "130", "{}", run.tmux.capture());
}
