//! The front's one error type: an HTTP status and a JSON-RPC error body,
//! which is what an MCP client can read. Handlers' helpers return it;
//! manager errors convert into it with the status the API uses too.

use super::rpc_error;
use crate::jsonrpc::code;
use crate::servers::ManagerError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A refusal or failure of an MCP request, answered as a JSON-RPC error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The JSON-RPC error code.
    pub code: i64,
    /// What went wrong and what to do.
    pub message: String,
    /// Seconds to wait before retrying (`Retry-After`), on a 429 or 503.
    pub retry_after: Option<u32>,
}

impl FrontError {
    /// An error with `status`, JSON-RPC `code` and `message`.
    pub fn new(status: StatusCode, code: i64, message: impl Into<String>) -> Self {
        FrontError { status, code, message: message.into(), retry_after: None }
    }

    /// A 400 with `-32600` (invalid request).
    pub fn bad_request(message: impl Into<String>) -> Self {
        FrontError::new(StatusCode::BAD_REQUEST, code::INVALID_REQUEST, message)
    }
}

impl IntoResponse for FrontError {
    fn into_response(self) -> Response {
        let mut resp = rpc_error(self.status, self.code, &self.message);
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(secs));
        }
        resp
    }
}

impl From<ManagerError> for FrontError {
    fn from(e: ManagerError) -> Self {
        let status = e.http_status();
        let code =
            if status == StatusCode::TOO_MANY_REQUESTS { code::LIMIT_EXCEEDED } else { code::SERVER_UNAVAILABLE };
        FrontError { retry_after: e.retry_after(), ..FrontError::new(status, code, e.to_string()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manager_errors_keep_the_status_the_api_gives_them() {
        let limit: FrontError = ManagerError::Limit("full".into()).into();
        assert_eq!((limit.status, limit.code), (StatusCode::TOO_MANY_REQUESTS, code::LIMIT_EXCEEDED));
        let failed: FrontError = ManagerError::Failed("gone".into()).into();
        assert_eq!((failed.status, failed.code), (StatusCode::BAD_GATEWAY, code::SERVER_UNAVAILABLE));
        let missing: FrontError = ManagerError::NotFound("no server".into()).into();
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert_eq!(missing.message, "no server");
    }
}
