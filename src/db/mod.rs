//! Persistence: one code path over SQLite (embedded, the default) and PostgreSQL.
//!
//! `DbConnection` is a diesel `MultiConnection` over both backends. The backend is chosen from the
//! URL here (`postgres://`/`postgresql://` is PostgreSQL, anything else a SQLite path), never by
//! trying one then the other. Each SQLite connection gets WAL, a busy timeout and foreign keys.
//! Diesel is synchronous, so every query runs through `run`, on actix's blocking pool, never on an
//! actor's event loop.
//!
//! Write transactions begin with a write (an `UPDATE` or `INSERT`), so SQLite takes its write lock
//! (waiting out the busy timeout) before reading, and PostgreSQL locks the rows a decision rests on.

pub mod models;
pub mod queries;
pub mod schema;

use crate::error::AppError;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

/// A connection to either backend.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

/// The connection pool, shared by every actor and HTTP worker.
pub type DbPool = r2d2::Pool<Manager>;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Which database a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Postgres(String),
    Sqlite(String),
}

impl Backend {
    /// `postgres://` or `postgresql://` is PostgreSQL; `sqlite://PATH` or a bare path is SQLite.
    pub fn from_url(url: &str) -> Backend {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres(url.to_string())
        } else {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            Backend::Sqlite(path.to_string())
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Backend::Postgres(_) => "postgres",
            Backend::Sqlite(_) => "sqlite",
        }
    }
}

/// An r2d2 manager that opens the backend its URL names.
#[derive(Debug)]
pub struct Manager {
    backend: Backend,
}

impl ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        match &self.backend {
            Backend::Postgres(url) => PgConnection::establish(url)
                .map(DbConnection::Pg)
                .map_err(r2d2::Error::ConnectionError),
            Backend::Sqlite(path) => {
                let mut conn =
                    SqliteConnection::establish(path).map_err(r2d2::Error::ConnectionError)?;
                conn.batch_execute(
                    // The busy timeout first: switching a new file to WAL takes a lock that
                    // the pool's other connections, opening at once, must wait for.
                    "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                )
                .map_err(r2d2::Error::QueryError)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, _conn: &mut DbConnection) -> bool {
        false
    }
}

/// Opens the pool for `url`, creating a SQLite file's folder when needed.
pub fn connect(
    url: &str,
    pool_size: u32,
    timeout: std::time::Duration,
) -> Result<DbPool, AppError> {
    let backend = Backend::from_url(url);
    if let Backend::Sqlite(path) = &backend {
        if let Some(parent) = std::path::Path::new(path).parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|e| {
                    AppError::internal(format!(
                        "cannot create the database folder {}: {e}",
                        parent.display()
                    ))
                })?;
            }
        }
    }
    r2d2::Pool::builder()
        .max_size(pool_size)
        .connection_timeout(timeout)
        .build(Manager { backend })
        .map_err(|e| AppError::internal(format!("cannot open the database at {url}: {e}")))
}

/// Runs the embedded migrations of the pool's backend; returns how many ran.
pub fn migrate(pool: &DbPool) -> Result<usize, AppError> {
    let mut conn = pool.get()?;
    let ran = match &mut *conn {
        DbConnection::Pg(c) => c.run_pending_migrations(PG_MIGRATIONS).map(|v| v.len()),
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
    }
    .map_err(|e| AppError::internal(format!("migrations failed: {e}")))?;
    Ok(ran)
}

/// Runs `f` with a pooled connection on the blocking pool and returns its result.
pub async fn run<F, T>(pool: &DbPool, f: F) -> Result<T, AppError>
where
    F: FnOnce(&mut DbConnection) -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    let pool = pool.clone();
    actix_web::web::block(move || {
        let mut conn = pool.get()?;
        f(&mut conn)
    })
    .await?
}

/// Whether the database answers, for `/health`.
pub async fn ping(pool: &DbPool) -> bool {
    run(pool, |conn| {
        conn.batch_execute("SELECT 1")?;
        Ok(())
    })
    .await
    .is_ok()
}
