//! In-crate tests' databases: a migrated pool on a fresh SQLite file, or on a fresh schema of the
//! PostgreSQL database `RALLYPOINT_TEST_DATABASE_URL` names (the integration tests' convention,
//! `tests/api/helpers.rs`, for query functions tested without the application).

use super::{connect, migrate, DbPool};
use crate::config::DatabaseSettings;

/// Runs `fn scenario(db: &TestDb)` on SQLite and, when configured, on PostgreSQL, as the tests
/// `scenario::sqlite` and `scenario::postgres`.
macro_rules! on_both_backends {
    ($scenario:ident) => {
        mod $scenario {
            #[test]
            fn sqlite() {
                super::$scenario(&$crate::db::test_db::TestDb::sqlite());
            }

            #[test]
            fn postgres() {
                match $crate::db::test_db::TestDb::postgres() {
                    Some(db) => super::$scenario(&db),
                    None => $crate::db::test_db::say_skipped(module_path!()),
                }
            }
        }
    };
}
pub(crate) use on_both_backends;

/// Says loudly, past the test harness's output capture, that a PostgreSQL variant was skipped.
pub fn say_skipped(test: &str) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED {test}::postgres: set RALLYPOINT_TEST_DATABASE_URL to run it on PostgreSQL"
    );
}

/// A migrated pool on a database of its own, removed when dropped.
pub struct TestDb {
    pub pool: DbPool,
    _dir: Option<tempfile::TempDir>,
    /// The PostgreSQL server's URL and the schema to drop.
    schema: Option<(String, String)>,
}

fn open(url: String) -> DbPool {
    let settings = DatabaseSettings {
        url,
        pool_size: 4,
        connect_timeout_ms: 10_000,
        sqlite_synchronous: "normal".into(),
    };
    let pool = connect(&settings).unwrap_or_else(|e| panic!("open the test database: {e}"));
    migrate(&pool).unwrap_or_else(|e| panic!("migrate the test database: {e}"));
    pool
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("a temp dir: {e}"));
        let url = dir.path().join("test.db").display().to_string();
        TestDb {
            pool: open(url),
            _dir: Some(dir),
            schema: None,
        }
    }

    /// A new schema in the database `RALLYPOINT_TEST_DATABASE_URL` names; `None` when unset.
    pub fn postgres() -> Option<TestDb> {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        let base = std::env::var("RALLYPOINT_TEST_DATABASE_URL").ok()?;
        let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = diesel::PgConnection::establish(&base)
            .unwrap_or_else(|e| panic!("PostgreSQL at {base}: {e}"));
        conn.batch_execute(&format!("CREATE SCHEMA {schema}"))
            .unwrap_or_else(|e| panic!("create a schema: {e}"));
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-csearch_path%3D{schema}");
        Some(TestDb {
            pool: open(url),
            _dir: None,
            schema: Some((base, schema)),
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        if let Some((base, schema)) = &self.schema {
            if let Ok(mut c) = diesel::PgConnection::establish(base) {
                let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
            }
        }
    }
}
