//! While the console owns the terminal, whatever the process writes to stderr (progress lines,
//! warnings, logs) goes through a pipe into the console's log pane instead of tearing the
//! screen; when the console ends, stderr is restored and the captured lines are written to it,
//! so the plain log of the run is still there afterwards.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::Mutex;

use super::state::LiveState;

/// Lines kept for the replay after the console ends (the newest).
const REPLAY_LINES: usize = 2000;

pub struct StderrCapture {
    saved: RawFd,
    reader: Option<JoinHandle<Vec<String>>>,
}

impl StderrCapture {
    /// Points fd 2 at a pipe read by a thread that feeds `state`'s log.
    pub fn start(state: Arc<Mutex<LiveState>>) -> std::io::Result<StderrCapture> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: plain POSIX calls on descriptors we own; results are checked.
        unsafe {
            if libc::pipe(fds.as_mut_ptr()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let saved = libc::dup(2);
            if saved < 0 {
                let e = std::io::Error::last_os_error();
                libc::close(fds[0]);
                libc::close(fds[1]);
                return Err(e);
            }
            if libc::dup2(fds[1], 2) < 0 {
                let e = std::io::Error::last_os_error();
                libc::close(fds[0]);
                libc::close(fds[1]);
                libc::close(saved);
                return Err(e);
            }
            libc::close(fds[1]);
            let read_end = File::from_raw_fd(fds[0]);
            let reader = std::thread::Builder::new()
                .name("console-stderr".into())
                .spawn(move || read_lines(read_end, state))?;
            Ok(StderrCapture {
                saved,
                reader: Some(reader),
            })
        }
    }

    /// Puts the original stderr back and writes the captured lines to it.
    pub fn stop(mut self) {
        self.restore();
    }

    fn restore(&mut self) {
        let Some(reader) = self.reader.take() else {
            return;
        };
        // SAFETY: `saved` is our duplicate of the original fd 2. Once fd 2 points back at it, the
        // pipe has no writer left and the reader thread sees end-of-file.
        unsafe {
            libc::dup2(self.saved, 2);
            libc::close(self.saved);
        }
        let lines = reader.join().unwrap_or_default();
        let mut err = std::io::stderr().lock();
        for line in lines {
            let _ = writeln!(err, "{line}");
        }
    }
}

impl Drop for StderrCapture {
    fn drop(&mut self) {
        self.restore();
    }
}

fn read_lines(pipe: File, state: Arc<Mutex<LiveState>>) -> Vec<String> {
    let mut kept = std::collections::VecDeque::new();
    for line in BufReader::new(pipe).lines() {
        let Ok(line) = line else { break };
        state.lock().push_log(line.clone());
        if kept.len() == REPLAY_LINES {
            kept.pop_front();
        }
        kept.push_back(line);
    }
    kept.into()
}
