//! `GET /api/v1/audit`: the admin overrides, newest first (dispatcher, admin).

use super::Limit;
use crate::actors::Hub;
use crate::auth::AuthUser;
use crate::db::{self, queries};
use crate::error::AppError;
use crate::protocol::{AuditEntry, Role};
use actix_web::{web, HttpResponse};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/audit", web::get().to(list));
}

/// `GET /api/v1/audit?limit=`.
async fn list(
    hub: web::Data<Hub>,
    user: AuthUser,
    q: web::Query<Limit>,
) -> Result<HttpResponse, AppError> {
    user.0
        .require(&[Role::Dispatcher, Role::Admin], "read the audit trail")?;
    let limit = q.get()?;
    let rows = db::run(&hub.pool, move |c| Ok(queries::audit::list(c, limit)?)).await?;
    let entries: Vec<AuditEntry> = rows.into_iter().map(AuditEntry::from).collect();
    Ok(HttpResponse::Ok().json(entries))
}
