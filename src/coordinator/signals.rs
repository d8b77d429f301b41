//! SIGINT/SIGTERM for the binary: the first signal stops the run cleanly (no new requests,
//! in-flight ones get the grace period, results written); a second one exits at once — after
//! a last, bounded write of the results marked `aborted`, so the file says honestly that it is
//! incomplete instead of staying `running`.

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use parking_lot::Mutex;
use sinks::json::report::RunStatus;
use sinks::recorder::{Flush, Recorder};

use crate::runtime::shutdown::{Level, Shutdown};

/// How long the second signal waits for that last write before exiting anyway.
const ABORT_WRITE_LIMIT: Duration = Duration::from_secs(3);

/// The recorder while the run is on (set once it exists, cleared once it wrote its final
/// results): what a second signal asks for the `aborted` write.
#[derive(Clone, Default)]
pub struct AbortTarget(Arc<Mutex<Option<Addr<Recorder>>>>);

impl AbortTarget {
    pub fn set(&self, recorder: Option<Addr<Recorder>>) {
        *self.0.lock() = recorder;
    }

    fn take(&self) -> Option<Addr<Recorder>> {
        self.0.lock().take()
    }
}

pub async fn watch(shutdown: Shutdown, target: AbortTarget) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        log::warn!("cannot listen for SIGINT/SIGTERM");
        return;
    };
    tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
    eprintln!("stopping: finishing in-flight requests (a second signal exits at once)");
    shutdown.raise(Level::Stop);
    tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
    crate::console::ui::restore_if_active();
    match target.take() {
        Some(recorder) => {
            let flush = recorder.send(Flush {
                status: RunStatus::Aborted,
            });
            match tokio::time::timeout(ABORT_WRITE_LIMIT, flush).await {
                Ok(Ok(Ok(path))) => eprintln!(
                    "second signal: exiting now; {} is incomplete (status aborted: what was \
                     measured until now, in-flight requests not counted)",
                    path.display()
                ),
                _ => eprintln!(
                    "second signal: exiting now; the results file is incomplete (the last write \
                     did not finish)"
                ),
            }
        }
        None => eprintln!("second signal: exiting now"),
    }
    std::process::exit(130);
}
