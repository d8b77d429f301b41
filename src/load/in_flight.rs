//! Drop-safe accounting of one request, and the wrapper every request task runs under.
//!
//! A request is counted in when its [`InFlight`] guard is made and out exactly once: by
//! [`InFlight::finish`] when its record was handed over, or else by the guard's `Drop` — the
//! task panicked, was dropped, or was abandoned after the cancel — which publishes a failed
//! record for it (`internal_error`, or `cancelled` when abandoned) with what the guard knows.
//! Either way the step's supervisor hears of the end, in a batch of ends (`load/ends.rs`).
//!
//! [`supervise`] runs a task under `catch_unwind` and drops it when the step abandons its
//! requests; before the task is dropped it leaves the reason in a thread-local note, so the
//! guards inside it (dropped synchronously, on this thread) can say why they never finished.
//! A guard dropped while its task unwinds from a panic cannot know the message yet: it parks
//! itself on this thread and `supervise` counts it once the panic is caught.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::Poll;

use futures_util::FutureExt;
use sinks::event::{Nanos, Outcome, RequestFinished, TokenSource};
use sinks::recorder::RecordRequest;

use super::supervisor::How;
use super::tracker::{AbandonReason, Ending};
use super::StepContext;
use crate::request::client::PreparedBody;

/// Why a supervised task ended without its result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Died {
    /// It panicked, with this message.
    Panicked(String),
    /// It was dropped before its end (a test hook asks for this).
    Dropped,
    /// The step dropped it while it still ran (see [`AbandonReason`]), counted cancelled.
    Abandoned(AbandonReason),
}

impl Died {
    pub fn how(&self) -> How {
        match self {
            Died::Panicked(_) => How::Panicked,
            Died::Dropped => How::Dropped,
            Died::Abandoned(_) => How::Cancelled,
        }
    }

    /// The outcome and message of a request that ended this way.
    fn outcome(this: Option<&Died>) -> (Outcome, String) {
        match this {
            Some(Died::Panicked(m)) => (Outcome::InternalError, format!("panicked: {m}")),
            Some(Died::Abandoned(AbandonReason::AfterCancel)) => (
                Outcome::Cancelled,
                "still running after the cancel: abandoned when the drain gave up".into(),
            ),
            Some(Died::Abandoned(AbandonReason::StepEndedEarly)) => (
                Outcome::Cancelled,
                "cancelled: the step ended early and the request was still running after \
                 --shutdown-grace"
                    .into(),
            ),
            Some(Died::Dropped) | None => (
                Outcome::InternalError,
                "its task was dropped before the request ended".into(),
            ),
        }
    }
}

thread_local! {
    /// Why the task being dropped on this thread died (see the module docs).
    static CAUSE: RefCell<Option<Died>> = const { RefCell::new(None) };
    /// Set by a task that asks its supervisor to drop it (a test hook).
    static DROP_ASKED: Cell<bool> = const { Cell::new(false) };
    /// Requests whose guards were dropped by a panic's unwinding, waiting for its message.
    static UNWOUND: RefCell<Vec<Counted>> = const { RefCell::new(Vec::new()) };
}

/// Counts the requests parked by an unwinding panic, as ended by `cause`.
fn count_unwound(cause: Option<&Died>) {
    for req in UNWOUND.with(|u| std::mem::take(&mut *u.borrow_mut())) {
        req.count_unfinished(cause);
    }
}

/// The calling task asks to be dropped by [`supervise`] at its next `Pending`.
pub fn ask_to_be_dropped() {
    DROP_ASKED.with(|d| d.set(true));
}

/// Clears the note when the wrapper's frame ends, after the task was dropped.
struct ClearCause;

impl Drop for ClearCause {
    fn drop(&mut self) {
        let cause = CAUSE.with(|c| c.borrow_mut().take());
        count_unwound(cause.as_ref());
    }
}

/// Runs `task` to its end, or returns why it died: a panic (caught), a drop asked for, or the
/// step abandoning its requests. The task is dropped here, its guards counting themselves.
pub async fn supervise<F: Future>(step: &StepContext, task: F) -> Result<F::Output, Died> {
    // Declared first, so dropped last: after `caught`, whose guards read the note.
    let _clear = ClearCause;
    let mut caught = std::pin::pin!(AssertUnwindSafe(task).catch_unwind());
    let mut abandon = std::pin::pin!(step.tracker.abandoning());
    let result = std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = caught.as_mut().poll(cx) {
            return Poll::Ready(r.map_err(|p| Died::Panicked(panic_message(p.as_ref()))));
        }
        if DROP_ASKED.with(|d| d.replace(false)) {
            return Poll::Ready(Err(Died::Dropped));
        }
        if abandon.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(Died::Abandoned(step.tracker.abandon_reason())));
        }
        Poll::Pending
    })
    .await;
    if let Err(died) = &result {
        CAUSE.with(|c| *c.borrow_mut() = Some(died.clone()));
        count_unwound(Some(died));
    }
    result
}

/// The text of a panic's payload (`panic!` with a literal or a formatted message).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// One request of a step, counted in; see the module docs.
pub struct InFlight {
    /// `None` once counted out.
    req: Option<Counted>,
}

/// What a guard knows of its request.
struct Counted {
    step: Arc<StepContext>,
    seq: u64,
    scheduled_at: Nanos,
    /// When the request was made, just before it is sent: the sent time a dropped record has.
    begun_at: Nanos,
    prepared: Arc<PreparedBody>,
}

impl InFlight {
    /// Counts a request in; `prepared` gives a dropped record its token counts.
    pub fn begin(
        step: &Arc<StepContext>,
        scheduled_at: Nanos,
        prepared: &Arc<PreparedBody>,
    ) -> Self {
        InFlight {
            req: Some({
                let begun_at = step.shared.clock.now();
                Counted {
                    seq: step.tracker.begin(begun_at),
                    begun_at,
                    step: step.clone(),
                    scheduled_at,
                    prepared: prepared.clone(),
                }
            }),
        }
    }

    /// The request is sent with another body (an open-loop arrival taking a conversation's
    /// ready turn).
    pub fn set_body(&mut self, prepared: &Arc<PreparedBody>) {
        if let Some(r) = &mut self.req {
            r.prepared = prepared.clone();
        }
    }

    /// The request's number within its step.
    pub fn seq(&self) -> u64 {
        self.req.as_ref().map_or(0, |r| r.seq)
    }

    /// The request id (sent as `x-request-id`).
    pub fn id(&self) -> String {
        self.req.as_ref().map_or_else(String::new, Counted::id)
    }

    /// The request ended as `ending` and its record was handed to the recorder.
    pub fn finish(mut self, ending: Ending) {
        if let Some(r) = self.req.take() {
            let how = if ending.ok { How::Normal } else { How::Failed };
            r.count_out(ending, how);
        }
    }
}

impl Counted {
    fn id(&self) -> String {
        format!("{}-{}-{}", self.step.run_id, self.step.step, self.seq)
    }

    fn count_out(&self, ending: Ending, how: How) {
        self.step.tracker.end(ending, self.begun_at);
        super::ends::report(&self.step, how);
    }

    /// Publishes the record of a request whose task ended without one, and counts it out.
    fn count_unfinished(self, cause: Option<&Died>) {
        let (outcome, message) = Died::outcome(cause);
        let how = cause.map_or(How::Dropped, Died::how);
        let record = self.unfinished_record(outcome, message, self.step.shared.clock.now());
        let ending = Ending::of(&record);
        // Drop cannot await: the record is queued, ahead of the end the supervisor hears of.
        self.step.recorder.do_send(RecordRequest(record));
        self.count_out(ending, how);
    }

    fn unfinished_record(&self, outcome: Outcome, error: String, now: Nanos) -> RequestFinished {
        RequestFinished {
            id: self.id(),
            step: self.step.step,
            scheduled_at: self.scheduled_at,
            sent_at: self.begun_at,
            first_token_at: None,
            end_at: now.max(self.begun_at),
            chunk_offsets_us: Vec::new(),
            prompt_tokens: self.prepared.prompt_tokens,
            requested_output_tokens: self.prepared.max_tokens,
            output_tokens: 0,
            output_tokens_source: TokenSource::Server,
            server_prompt_tokens: None,
            server_completion_tokens: None,
            server_cached_tokens: None,
            outcome,
            http_status: None,
            error: Some(error),
            finish_reason: None,
            response_model: None,
            output_text: None,
            reasoning: Default::default(),
            images_tools: Default::default(),
            trace: None,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let Some(req) = self.req.take() else {
            return;
        };
        if std::thread::panicking() {
            // Unwinding out of the task: the message is known once `supervise` caught it.
            UNWOUND.with(|u| u.borrow_mut().push(req));
            return;
        }
        let cause = CAUSE.with(|c| c.borrow().clone());
        req.count_unfinished(cause.as_ref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages_are_read_from_both_payload_kinds() {
        let s: Box<dyn std::any::Any + Send> = Box::new("boom");
        assert_eq!(panic_message(s.as_ref()), "boom");
        let s: Box<dyn std::any::Any + Send> = Box::new(format!("boom {}", 7));
        assert_eq!(panic_message(s.as_ref()), "boom 7");
        let s: Box<dyn std::any::Any + Send> = Box::new(7u8);
        assert_eq!(panic_message(s.as_ref()), "a panic without a message");
    }

    #[test]
    fn each_death_has_its_outcome() {
        let (o, m) = Died::outcome(Some(&Died::Panicked("boom".into())));
        assert_eq!((o, m.as_str()), (Outcome::InternalError, "panicked: boom"));
        let early = Died::Abandoned(AbandonReason::StepEndedEarly);
        let (o, m) = Died::outcome(Some(&early));
        assert!(
            o == Outcome::Cancelled && m.contains("--shutdown-grace"),
            "{m}"
        );
        let late = Died::Abandoned(AbandonReason::AfterCancel);
        assert_eq!(Died::outcome(Some(&late)).0, Outcome::Cancelled);
        assert_eq!(
            Died::outcome(Some(&Died::Dropped)).0,
            Outcome::InternalError
        );
        assert_eq!(Died::outcome(None).0, Outcome::InternalError);
        assert_eq!(late.how(), How::Cancelled);
    }
}
