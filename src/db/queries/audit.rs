//! The audit trail of admin overrides.

use crate::db::models::AuditRow;
use crate::db::schema::audit::dsl;
use crate::db::DbConnection;
use diesel::prelude::*;
use diesel::QueryResult;

/// Audit rows, newest first.
pub fn list(conn: &mut DbConnection, limit: i64) -> QueryResult<Vec<AuditRow>> {
    dsl::audit
        .order((dsl::created_at.desc(), dsl::id.desc()))
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)
}
