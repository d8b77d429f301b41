//! Live control of a running benchmark: pause and resume sending, set the virtual users (closed
//! loop) or the rate (open loop) of the step running now, end that step now. Commands come from
//! the console's keys and from a loopback-only HTTP endpoint (`--control-listen`); the
//! Coordinator actor applies them (`Control` message) and publishes each change as an event.

pub mod command;
pub mod live;
pub mod server;

pub use command::Command;
pub use live::{Control, Controls, LiveStep};
