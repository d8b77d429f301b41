//! The embedded simulated inference server.
