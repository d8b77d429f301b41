//! A real Prometheus (and Pushgateway) for the tests, started by hand on loopback with free
//! ports, plus a tiny HTTP/1.0 client for its API. Debian packages `prometheus` and
//! `prometheus-pushgateway` provide the binaries (`.ci/run` installs them).
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A binary from PATH (or /usr/bin), or `None` after [`crate::common::missing`] said so.
pub fn tool(test: &str, name: &str) -> Option<PathBuf> {
    crate::common::tool(
        test,
        name,
        "Debian packages prometheus, prometheus-pushgateway",
    )
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// GET `path` from `addr`: (status, body). Bounded in time.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no HTTP header"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line: {head}")))?;
    Ok((status, body.to_string()))
}

/// Percent-encodes a query parameter value.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn wait_ready(addr: SocketAddr, path: &str, what: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok((200, _)) = http_get(addr, path) {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} on {addr} not ready within 30 s");
}

/// A Prometheus server with its own data folder, killed on drop.
pub struct Prometheus {
    child: Child,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Scrapes every target of `targets` (`job name -> (host:port, honor_labels)`) every second.
    pub fn start(binary: &Path, targets: &[(&str, SocketAddr, bool)]) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = String::from(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n",
        );
        for (job, addr, honor) in targets {
            cfg.push_str(&format!(
                "  - job_name: {job}\n    honor_labels: {honor}\n    static_configs:\n      - targets: ['{addr}']\n"
            ));
        }
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, cfg).unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let mut child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("prometheus starts");
        wait_ready(addr, "/-/ready", "prometheus", &mut child);
        let prom = Prometheus {
            child,
            addr,
            _dir: dir,
        };
        // Service discovery hands targets to the scrapers only after a few seconds: wait for a
        // first scrape of every target (`up` exists, 0 while it is down), so nothing a run
        // exports early is missed.
        let deadline = Instant::now() + Duration::from_secs(30);
        while prom.scalar("count(up)").ok() != Some(targets.len() as f64) {
            assert!(
                Instant::now() < deadline,
                "prometheus never scraped its targets"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        prom
    }

    fn api(&self, path: &str) -> Result<Value, String> {
        let (status, body) = http_get(self.addr, path).map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
        if status != 200 || v["status"] != "success" {
            return Err(format!("HTTP {status}: {body}"));
        }
        Ok(v["data"]["result"].clone())
    }

    /// An instant query: the result vector.
    pub fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let v = self.api(&format!("/api/v1/query?query={}", encode(expr)))?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// The single value of an instant query that must return exactly one series.
    pub fn scalar(&self, expr: &str) -> Result<f64, String> {
        let r = self.query(expr)?;
        match r.as_slice() {
            [one] => one["value"][1]
                .as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("{expr}: not a number: {one}")),
            _ => Err(format!("{expr}: {} series: {r:?}", r.len())),
        }
    }

    /// A range query (unix seconds): the result matrix.
    pub fn query_range(
        &self,
        expr: &str,
        start: f64,
        end: f64,
        step: f64,
    ) -> Result<Vec<Value>, String> {
        let v = self.api(&format!(
            "/api/v1/query_range?query={}&start={start:.3}&end={end:.3}&step={step}",
            encode(expr)
        ))?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// Waits until every target has been scraped again after `after` (unix seconds).
    pub fn wait_for_scrape_after(&self, after: f64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.scalar("min(timestamp(up))").is_ok_and(|t| t > after) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("prometheus did not scrape again within 20 s");
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Pushgateway, killed on drop.
pub struct Pushgateway {
    child: Child,
    pub addr: SocketAddr,
}

impl Pushgateway {
    pub fn start(binary: &Path) -> Pushgateway {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut child = Command::new(binary)
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the pushgateway starts");
        wait_ready(addr, "/-/ready", "pushgateway", &mut child);
        Pushgateway { child, addr }
    }
}

impl Drop for Pushgateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Serves `body` as a Prometheus exposition on every request, on a free loopback port, for the
/// life of the test process (a stand-in for a server's /metrics).
pub fn serve_static(body: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

/// Runs `promtool check metrics` on an exposition: its findings (empty when clean).
pub fn promtool_findings(promtool: &Path, exposition: &str) -> String {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && text.trim().is_empty() {
        String::new()
    } else {
        format!("exit {}: {text}", out.status)
    }
}
