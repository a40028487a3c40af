//! JSON errors of the management API: a stable code and a message saying
//! what to do.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An API error.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable machine-readable code (`not_found`, `invalid_request`, ...).
    pub code: &'static str,
    /// What went wrong and what to do.
    pub message: String,
    /// Structured detail (per-field problems).
    pub details: Option<Box<serde_json::Value>>,
    /// Seconds to wait before retrying (`Retry-After`), on a 429 or 503.
    pub retry_after: Option<u32>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a serde_json::Value>,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), details: None, retry_after: None }
    }

    /// The same error, telling the client when to retry.
    pub fn retry_after(mut self, secs: Option<u32>) -> Self {
        self.retry_after = secs;
        self
    }

    /// An error with structured `details`.
    pub fn with_details(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
        details: serde_json::Value,
    ) -> Self {
        ApiError { status, code, message: message.into(), details: Some(Box::new(details)), retry_after: None }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body { error: Inner { code: self.code, message: &self.message, details: self.details.as_deref() } };
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
        }
        resp
    }
}
