//! The event contract every sink consumes, and the sinks.

pub mod event;
