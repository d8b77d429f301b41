//! The errors the simulated server answers, in vLLM's (OpenAI's) JSON shape.

use serde_json::{json, Value};

/// An error answered as `{"error": {"message", "type", "param", "code"}}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    /// vLLM's error type names ("BadRequestError", "NotFoundError", ...).
    pub kind: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            status: 400,
            kind: "BadRequestError",
            message: message.into(),
        }
    }

    pub fn model_not_found(model: &str) -> Self {
        ApiError {
            status: 404,
            kind: "NotFoundError",
            message: format!("The model `{model}` does not exist."),
        }
    }

    pub fn not_found() -> Self {
        ApiError {
            status: 404,
            kind: "NotFoundError",
            message: "Not Found".into(),
        }
    }

    pub fn queue_full() -> Self {
        ApiError {
            status: 503,
            kind: "ServiceUnavailableError",
            message: "The server is overloaded: the waiting queue is full.".into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        ApiError {
            status: 500,
            kind: "InternalServerError",
            message: message.into(),
        }
    }

    /// An injected error status (`--fault status=CODE`).
    pub fn injected(status: u16) -> Self {
        ApiError {
            status,
            kind: match status {
                429 => "RateLimitError",
                400..=499 => "BadRequestError",
                _ => "InternalServerError",
            },
            message: format!("injected fault: HTTP {status}"),
        }
    }

    pub fn engine_stopped() -> Self {
        ApiError {
            status: 500,
            kind: "InternalServerError",
            message: "The engine stopped before the request finished.".into(),
        }
    }

    pub fn to_json(&self) -> String {
        json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": Value::Null,
            "code": self.status,
        }})
        .to_string()
    }
}
