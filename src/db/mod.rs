//! Persistence: one code path over SQLite (embedded, the default) and PostgreSQL.
//!
//! `DbConnection` is a diesel `MultiConnection` over both backends. The backend is chosen from the
//! URL here (`postgres://`/`postgresql://` is PostgreSQL, anything else a SQLite path), never by
//! trying one then the other. Each SQLite connection gets WAL, a busy timeout, foreign keys and
//! `synchronous = FULL` unless configured otherwise (`database.sqlite_synchronous`), so what is
//! acknowledged survives a power cut; each PostgreSQL connection `synchronous_commit = on`.
//! Diesel is synchronous, so every query runs through `run`, on actix's blocking pool, never on an
//! actor's event loop.
//!
//! Write transactions begin with a write (an `UPDATE` or `INSERT`), so SQLite takes its write lock
//! (waiting out the busy timeout) before reading, and PostgreSQL locks the rows a decision rests on.

pub mod models;
pub mod queries;
pub mod schema;
#[cfg(test)]
pub(crate) mod test_db;

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
    /// SQLite's `PRAGMA synchronous` value.
    synchronous: &'static str,
}

impl ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        match &self.backend {
            Backend::Postgres(url) => {
                let mut conn =
                    PgConnection::establish(url).map_err(r2d2::Error::ConnectionError)?;
                // The server's default, set anyway: an acknowledged commit is on disk.
                conn.batch_execute("SET synchronous_commit = on")
                    .map_err(r2d2::Error::QueryError)?;
                Ok(DbConnection::Pg(conn))
            }
            Backend::Sqlite(path) => {
                let mut conn =
                    SqliteConnection::establish(path).map_err(r2d2::Error::ConnectionError)?;
                // The busy timeout first: switching a new file to WAL takes a lock that the
                // pool's other connections, opening at once, must wait for.
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = {}; PRAGMA foreign_keys = ON;",
                    self.synchronous
                ))
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

/// Opens the pool the settings name, creating a SQLite file's folder when needed.
pub fn connect(settings: &crate::config::DatabaseSettings) -> Result<DbPool, AppError> {
    let url = settings.url.as_str();
    let synchronous = settings.sqlite_synchronous().ok_or_else(|| {
        AppError::internal(format!(
            "database.sqlite_synchronous = {:?} is not off, normal, full or extra",
            settings.sqlite_synchronous
        ))
    })?;
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
        .max_size(settings.pool_size)
        .connection_timeout(settings.connect_timeout())
        .build(Manager {
            backend,
            synchronous,
        })
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
