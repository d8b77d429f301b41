//! The test hooks of `config::TestHooks`, applied inside a request's task.

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
            hang_every: None,
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
}
