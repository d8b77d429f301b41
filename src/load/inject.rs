//! The test hooks of `config::TestHooks`, applied inside a request's task.

use sinks::event::RequestFinished;

use crate::config::TestHooks;

use super::in_flight::ask_to_be_dropped;

/// What a hook does to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Panic,
    Drop,
    Hang,
}

fn hits(every: Option<u64>, seq: u64) -> bool {
    every.is_some_and(|n| n > 0 && (seq + 1) % n == 0)
}

/// The fault for the step's request `seq`, if any (pure).
pub fn fault(hooks: &TestHooks, seq: u64) -> Option<Fault> {
    if hits(hooks.panic_every, seq) {
        Some(Fault::Panic)
    } else if hits(hooks.drop_every, seq) {
        Some(Fault::Drop)
    } else if hits(hooks.hang_every, seq) {
        Some(Fault::Hang)
    } else {
        None
    }
}

/// The late-first-token hook on the step's request `seq`: its first-token stamp moved later by
/// the hook's delay, with the first chunk's offset and the first answer and tool call stamped at
/// the same instant (what a stamp taken late would have recorded). When the hook is off, one
/// branch on the step's hooks, which `fault` has just read.
#[inline]
pub fn stamp_late(hooks: &TestHooks, seq: u64, rec: &mut RequestFinished) {
    let Some(late) = hooks.late_first_token else {
        return;
    };
    let Some(first) = rec.first_token_at.filter(|_| hits(Some(late.every), seq)) else {
        return;
    };
    let by = u64::try_from(late.by.as_nanos()).unwrap_or(u64::MAX);
    let later = first.saturating_add(by);
    rec.first_token_at = Some(later);
    for stamp in [
        &mut rec.reasoning.first_answer_at,
        &mut rec.images_tools.first_tool_call_at,
    ] {
        if *stamp == Some(first) {
            *stamp = Some(later);
        }
    }
    if let Some(offset) = rec.chunk_offsets_us.first_mut() {
        *offset = offset.saturating_add(u32::try_from(by / 1_000).unwrap_or(u32::MAX));
    }
}

/// Does what `fault` says to the request `id`'s task: it never returns.
pub async fn strike(fault: Fault, id: &str) {
    match fault {
        Fault::Panic => panic!("injected panic (test hook) in request {id}"),
        Fault::Drop => ask_to_be_dropped(),
        Fault::Hang => {}
    }
    std::future::pending::<()>().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_hit_every_nth_request_and_the_first_wins() {
        let hooks = TestHooks {
            panic_every: Some(4),
            drop_every: Some(2),
            ..TestHooks::default()
        };
        let faults: Vec<_> = (0..8).map(|k| fault(&hooks, k)).collect();
        assert_eq!(
            faults,
            [
                None,
                Some(Fault::Drop),
                None,
                Some(Fault::Panic),
                None,
                Some(Fault::Drop),
                None,
                Some(Fault::Panic)
            ]
        );
        assert_eq!(fault(&TestHooks::default(), 0), None);
        let zero = TestHooks {
            panic_every: Some(0),
            ..TestHooks::default()
        };
        assert_eq!(fault(&zero, 0), None, "0 is off, not a division by zero");
    }

    #[test]
    fn the_late_stamp_hook_moves_every_second_first_token_and_nothing_else() {
        use crate::config::LateStamp;
        use std::time::Duration;
        let hooks = TestHooks {
            late_first_token: Some(LateStamp {
                every: 2,
                by: Duration::from_millis(2),
            }),
            ..TestHooks::default()
        };
        let at = 1_000_000_000;
        let on_time = crate::offline::test_fixtures::request(true, at);
        let mut first = on_time.clone();
        stamp_late(&hooks, 0, &mut first);
        assert_eq!(
            first.first_token_at, on_time.first_token_at,
            "request 0: on time"
        );
        let mut second = on_time.clone();
        second.reasoning.first_answer_at = on_time.first_token_at;
        second.images_tools.first_tool_call_at = Some(at + 150_000_000);
        stamp_late(&hooks, 1, &mut second);
        let late = on_time.first_token_at.map(|t| t + 2_000_000);
        assert_eq!(second.first_token_at, late);
        assert_eq!(
            second.reasoning.first_answer_at, late,
            "stamped at the same instant"
        );
        assert_eq!(
            second.images_tools.first_tool_call_at,
            Some(at + 150_000_000),
            "a later stamp stays"
        );
        assert_eq!(
            second.chunk_offsets_us[0],
            on_time.chunk_offsets_us[0] + 2_000
        );
        assert_eq!(second.chunk_offsets_us[1..], on_time.chunk_offsets_us[1..]);
        assert_eq!(
            (second.sent_at, second.end_at),
            (on_time.sent_at, on_time.end_at)
        );
        // No first token: nothing to move. Off: nothing moves.
        let mut failed = crate::offline::test_fixtures::request(false, at);
        stamp_late(&hooks, 1, &mut failed);
        assert_eq!(failed.first_token_at, None);
        let mut off = on_time.clone();
        stamp_late(&TestHooks::default(), 1, &mut off);
        assert_eq!(off.first_token_at, on_time.first_token_at);
    }
}
