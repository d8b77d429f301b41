//! The real engine of the llama.cpp tests: `tests/engine/llama-server.sh` starts llama.cpp's
//! llama-server on 127.0.0.1 with the tiny model; helpers to talk to it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Stops the server however the test ends.
pub struct Engine(u32);

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.to_string()).status();
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/engine/llama-server.sh")
}

/// A running server and its port, or `None` after [`super::missing`] said it is not built.
pub fn start_engine(test: &str) -> Option<(Engine, u16)> {
    start_engine_with(test, &[])
}

/// As [`start_engine`], with more llama-server flags (e.g. `--embeddings`).
pub fn start_engine_with(test: &str, args: &[&str]) -> Option<(Engine, u16)> {
    let built = Command::new("bash")
        .arg(script())
        .arg("check")
        .status()
        .expect("llama-server.sh runs");
    if !built.success() {
        let cache = super::cache_dir().join("engine");
        super::missing(
            test,
            &format!(
                "llama-server is not built ({}; `tests/engine/llama-server.sh build` builds it alone)",
                cache.display()
            ),
        );
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new("bash")
        .arg(script())
        .args(["start", &port.to_string()])
        .args(args)
        .output()
        .expect("llama-server.sh runs");
    assert!(
        out.status.success(),
        "llama-server did not start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid: u32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a PID");
    Some((Engine(pid), port))
}

/// One HTTP/1.0 exchange with the server on 127.0.0.1 (it answers with a length, then closes).
pub fn http(port: u16, method: &str, path: &str, body: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).expect("a UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(
        head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
        "{method} {path}: {head}\n{body}"
    );
    body.to_string()
}

pub fn read_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
