//! The one error vocabulary shared by REST and WebSocket.
//!
//! `AppError` is what every layer returns; `AppError::code()` is the only mapping from a domain
//! failure to a protocol `ErrorCode`. REST turns it into a status and `{"error":{"code","message"}}`
//! (`impl ResponseError`), the WebSocket session into an `error` frame carrying the client's `ref`.
//! Internal detail (database, I/O) is logged here and never sent to a client.

use actix_web::{http::StatusCode, HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};

/// The contract's error codes (SPEC 3), serialized snake_case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    TokenExpired,
    Forbidden,
    NotFound,
    Conflict,
    RateLimited,
    TooLarge,
    Internal,
}

impl ErrorCode {
    /// The contract's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status REST answers with for this code.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized | ErrorCode::TokenExpired => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Every failure a request or a message can end in.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("the token has expired: get a new one and reconnect or send `refresh`")]
    TokenExpired,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    RateLimited(String),
    #[error("{0}")]
    TooLarge(String),
    /// Our fault: the detail is logged, the client sees a generic message.
    #[error("internal error: {0}")]
    Internal(String),
    #[error("database error: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("database pool error: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    /// An error already answered as `code` and `message` (an idempotency key's stored answer,
    /// or a work's failure once reduced to what the client sees): both kept as they are, and
    /// internal detail not logged a second time.
    #[error("{message}")]
    Answered { code: ErrorCode, message: String },
}

impl AppError {
    /// The protocol code of this error: the only place domain failures map to codes.
    pub fn code(&self) -> ErrorCode {
        use diesel::result::{DatabaseErrorKind, Error as D};
        match self {
            AppError::BadRequest(_) => ErrorCode::BadRequest,
            AppError::Unauthorized(_) => ErrorCode::Unauthorized,
            AppError::TokenExpired => ErrorCode::TokenExpired,
            AppError::Forbidden(_) => ErrorCode::Forbidden,
            AppError::NotFound(_) => ErrorCode::NotFound,
            AppError::Conflict(_) => ErrorCode::Conflict,
            AppError::RateLimited(_) => ErrorCode::RateLimited,
            AppError::TooLarge(_) => ErrorCode::TooLarge,
            AppError::Database(D::NotFound) => ErrorCode::NotFound,
            AppError::Database(D::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                ErrorCode::Conflict
            }
            AppError::Internal(_) | AppError::Database(_) | AppError::Pool(_) => {
                ErrorCode::Internal
            }
            AppError::Answered { code, .. } => *code,
        }
    }

    /// The message a client may see: internal detail is replaced and logged instead.
    pub fn client_message(&self) -> String {
        use diesel::result::{DatabaseErrorKind, Error as D};
        match self {
            AppError::Database(D::NotFound) => "not found".to_string(),
            AppError::Database(D::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                "it exists already".to_string()
            }
            AppError::Internal(_) | AppError::Database(_) | AppError::Pool(_) => {
                log::error!(
                    "[ERROR] internal detail={}",
                    crate::telemetry::q(&self.to_string())
                );
                "internal error; the server logged the detail".to_string()
            }
            AppError::Answered { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    /// The JSON body REST answers with: `{"error":{"code","message"}}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({"error": {"code": self.code(), "message": self.client_message()}})
    }

    pub fn bad_request(msg: impl Into<String>) -> Self {
        AppError::BadRequest(msg.into())
    }
    pub fn forbidden(msg: impl Into<String>) -> Self {
        AppError::Forbidden(msg.into())
    }
    pub fn not_found(msg: impl Into<String>) -> Self {
        AppError::NotFound(msg.into())
    }
    pub fn conflict(msg: impl Into<String>) -> Self {
        AppError::Conflict(msg.into())
    }
    pub fn internal(msg: impl Into<String>) -> Self {
        AppError::Internal(msg.into())
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        self.code().status()
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(self.body())
    }
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        AppError::Internal(format!("blocking task failed: {e}"))
    }
}

impl From<actix::MailboxError> for AppError {
    fn from(e: actix::MailboxError) -> Self {
        AppError::Internal(format!("actor mailbox: {e}"))
    }
}

/// Context at the call site for an internal failure, vaultwarden's `map_res` in our words.
pub trait Context<T> {
    /// Turns any error into `AppError::Internal` prefixed with `what`.
    fn context(self, what: &str) -> Result<T, AppError>;
}

impl<T, E: std::fmt::Display> Context<T> for Result<T, E> {
    fn context(self, what: &str) -> Result<T, AppError> {
        self.map_err(|e| AppError::Internal(format!("{what}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_serializes_as_the_contract_spells_it() {
        let codes = [
            (ErrorCode::BadRequest, "bad_request"),
            (ErrorCode::Unauthorized, "unauthorized"),
            (ErrorCode::TokenExpired, "token_expired"),
            (ErrorCode::Forbidden, "forbidden"),
            (ErrorCode::NotFound, "not_found"),
            (ErrorCode::Conflict, "conflict"),
            (ErrorCode::RateLimited, "rate_limited"),
            (ErrorCode::TooLarge, "too_large"),
            (ErrorCode::Internal, "internal"),
        ];
        for (code, text) in codes {
            assert_eq!(serde_json::to_value(code).unwrap(), serde_json::json!(text));
        }
    }

    #[test]
    fn a_conflict_has_status_409_and_the_contract_body() {
        let e = AppError::conflict("driver DRV-9 is offline");
        assert_eq!(e.status_code(), StatusCode::CONFLICT);
        assert_eq!(
            e.body(),
            serde_json::json!({"error":{"code":"conflict","message":"driver DRV-9 is offline"}})
        );
    }

    #[test]
    fn an_answered_error_keeps_its_code_and_message() {
        let e = AppError::Answered {
            code: ErrorCode::Internal,
            message: "internal error; the server logged the detail".into(),
        };
        assert_eq!(e.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            e.body(),
            serde_json::json!({"error":{"code":"internal","message":"internal error; the server logged the detail"}})
        );
    }

    #[test]
    fn a_missing_row_is_not_found_and_internal_detail_is_hidden() {
        let e = AppError::from(diesel::result::Error::NotFound);
        assert_eq!(e.code(), ErrorCode::NotFound);
        let e = AppError::internal("disk on fire at /var/lib");
        assert_eq!(e.code(), ErrorCode::Internal);
        assert!(!e.client_message().contains("/var/lib"));
    }
}
