//! The terminal side of the live console: its own thread, redrawing from a snapshot twice a second
//! and reading keys in between. `q` or Ctrl-C stops the run cleanly (no new requests, in-flight
//! ones finish, results written); a second press cancels what is still in flight.
//!
//! The terminal is restored on every exit path: normal end, the sink being dropped, a panic
//! (a guard restores it while unwinding).

use std::io::{self, Stdout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix::Recipient;
use parking_lot::Mutex;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event as TermEvent, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::crossterm::{cursor, execute};
use ratatui::{Frame, Terminal};
use sinks::prometheus::LiveGauges;

use super::capture::StderrCapture;
use super::state::{LiveState, Snapshot};
use super::view::{self, View};
use crate::control::{Command, Control};
use crate::runtime::shutdown::{Level, Shutdown};

/// Whether a console owns the terminal now (raw mode, alternate screen).
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// For paths that end the process without unwinding (a second SIGINT/SIGTERM): gives the
/// terminal back if a console has it. Does nothing otherwise.
pub fn restore_if_active() {
    if ACTIVE.swap(false, Ordering::AcqRel) {
        restore_terminal();
    }
}

/// Time between redraws: twice a second is live enough to read, and each frame (snapshot,
/// layout, terminal diff) costs client CPU — at 4 Hz a 10-minute run measured +8 % and +12 %
/// CPU per request against --no-console, so the console stays at 2 Hz. Keys are read at once
/// in between.
const FRAME: Duration = Duration::from_millis(500);

/// What the view reads besides the events.
pub struct UiContext {
    pub state: Arc<Mutex<LiveState>>,
    pub gauges: Arc<LiveGauges>,
    pub shutdown: Shutdown,
    pub title: String,
    /// Where the live-control keys go (the Coordinator actor).
    pub control: Option<Recipient<Control>>,
}

/// The live-control command a key asks for: p pauses or resumes, + and - scale the load by a
/// quarter, e ends the step.
fn control_key(code: KeyCode) -> Option<Command> {
    match code {
        KeyCode::Char('p') => Some(Command::TogglePause),
        KeyCode::Char('+') | KeyCode::Char('=') => Some(Command::Scale { up: true }),
        KeyCode::Char('-') => Some(Command::Scale { up: false }),
        KeyCode::Char('e') => Some(Command::EndStep),
        _ => None,
    }
}

/// The running console thread.
pub struct Ui {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ui {
    /// Takes over the terminal (raw mode, alternate screen, stderr captured) and starts drawing.
    pub fn start(ctx: UiContext) -> io::Result<Ui> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("console".into())
            .spawn(move || match TerminalGuard::enter(&ctx) {
                Ok(mut guard) => {
                    let _ = ready_tx.send(Ok(()));
                    run(&mut guard, &ctx, &flag);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })?;
        let started = ready_rx
            .recv()
            .unwrap_or_else(|_| Err(io::Error::other("the console thread ended")));
        let ui = Ui {
            stop,
            thread: Some(thread),
        };
        started.map(|()| ui)
    }

    /// Draws a last frame, gives the terminal back and waits for the thread.
    pub fn finish(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Ui {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Owns the terminal; restores it (and stderr) when dropped, even while unwinding.
struct TerminalGuard {
    terminal: Terminal<CrosstermBackend<Stdout>>,
    capture: Option<StderrCapture>,
}

impl TerminalGuard {
    fn enter(ctx: &UiContext) -> io::Result<TerminalGuard> {
        enable_raw_mode()?;
        let mut out = io::stdout();
        if let Err(e) = execute!(out, EnterAlternateScreen, cursor::Hide) {
            let _ = disable_raw_mode();
            return Err(e);
        }
        let terminal = match Terminal::new(CrosstermBackend::new(out)) {
            Ok(t) => t,
            Err(e) => {
                restore_terminal();
                return Err(e);
            }
        };
        ACTIVE.store(true, Ordering::Release);
        // Without the capture the run still works; log lines would only tear the screen.
        let capture = StderrCapture::start(ctx.state.clone()).ok();
        Ok(TerminalGuard { terminal, capture })
    }
}

fn restore_terminal() {
    let _ = disable_raw_mode();
    let _ = execute!(io::stdout(), LeaveAlternateScreen, cursor::Show);
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_if_active();
        if let Some(c) = self.capture.take() {
            c.stop();
        }
    }
}

fn run(guard: &mut TerminalGuard, ctx: &UiContext, stop: &AtomicBool) {
    let mut presses = 0;
    loop {
        let snap = ctx.state.lock().snapshot(Instant::now());
        let stopping = ctx.shutdown.level();
        let _ = guard.terminal.draw(|f| draw(f, ctx, &snap, stopping));
        if stop.load(Ordering::Acquire) {
            return;
        }
        let deadline = Instant::now() + FRAME;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match event::poll(left) {
                Ok(true) => {
                    if let Ok(TermEvent::Key(k)) = event::read() {
                        let ctrl_c = k.code == KeyCode::Char('c')
                            && k.modifiers.contains(KeyModifiers::CONTROL);
                        let command = control_key(k.code).filter(|_| k.kind == KeyEventKind::Press);
                        if let (Some(command), Some(to)) = (command, &ctx.control) {
                            // The coordinator prints what changed, or why nothing did.
                            to.do_send(Control {
                                command,
                                source: "console",
                            });
                        }
                        if k.kind == KeyEventKind::Press && (ctrl_c || k.code == KeyCode::Char('q'))
                        {
                            presses += 1;
                            ctx.shutdown.raise(if presses == 1 {
                                Level::Stop
                            } else {
                                Level::Cancel
                            });
                        }
                    }
                }
                Ok(false) => break,
                // No terminal to read from any more: keep drawing until told to stop.
                Err(_) => std::thread::sleep(left),
            }
        }
    }
}

fn draw(f: &mut Frame, ctx: &UiContext, snap: &Snapshot, level: Level) {
    view::draw(
        f,
        &View {
            title: &ctx.title,
            snap,
            in_flight: ctx.gauges.in_flight(),
            server: view::ServerNow {
                waiting: ctx.gauges.server_waiting(),
                kv_cache: ctx.gauges.server_kv_cache(),
            },
            level,
        },
    );
}
