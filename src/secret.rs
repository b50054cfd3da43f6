//! The HS256 secret when none is configured (SPEC 2): no secret ships with the product.
//!
//! With `auth.secret` empty and no `auth.public_key_pem`, the first start writes 32 random bytes,
//! as 64 lowercase hex characters and a newline (what `openssl rand -hex 32` prints), to
//! `<server.data_dir>/secret` with mode 0600; every later start, `rallypoint token`, the dev login
//! and the load generator read that file. The key is the hex text's bytes as written, so a
//! configured `auth.secret` and the file are used the same way. This module owns the file only:
//! checking a configured secret's length is `config::Settings::validate`'s.

use crate::config::{ConfigError, Settings};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file's name inside `server.data_dir`.
pub const FILE_NAME: &str = "secret";

/// Random bytes in a generated secret.
const RANDOM_BYTES: usize = 32;

/// Where the secret in use came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `auth.secret` is configured, or `auth.public_key_pem` makes a secret unneeded.
    Configured,
    /// Read from this file, written by an earlier start.
    Read(PathBuf),
    /// Generated into this file just now.
    Generated(PathBuf),
}

/// The secret file of `data_dir`.
pub fn path_in(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// Fills `settings.auth.secret` from `<server.data_dir>/secret` when it is empty (and no public
/// key is configured), generating the file first if there is none. Logs what it did, never the
/// secret. Calling it again is a no-op.
pub fn resolve(settings: &mut Settings) -> Result<Source, ConfigError> {
    if !settings.auth.secret.is_empty() || !settings.auth.public_key_pem.trim().is_empty() {
        return Ok(Source::Configured);
    }
    let path = path_in(Path::new(&settings.server.data_dir));
    let (secret, source) = read_or_create(&path)?;
    settings.auth.secret = secret;
    match &source {
        // A warning: an operator should know the secret is one nobody chose.
        Source::Generated(p) => log::warn!(
            "[STARTUP] auth.secret is empty: generated a new random secret in {} (mode 0600); \
             every start, `rallypoint token` and the load generator with the same server.data_dir use it",
            p.display()
        ),
        Source::Read(p) => log::info!("[STARTUP] auth secret read from {}", p.display()),
        Source::Configured => {}
    }
    Ok(source)
}

/// Reads the secret file at `path`; answers a problem to show when it is missing or unusable.
pub fn read(path: &Path) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid(path, &format!("cannot read it: {e}")))?;
    let secret = text.trim_end_matches(['\n', '\r']).to_string();
    if secret.len() < 2 * RANDOM_BYTES || secret.chars().any(char::is_whitespace) {
        return Err(invalid(
            path,
            "it does not hold a secret of 64 hex characters: delete it to have a new one generated",
        ));
    }
    warn_if_readable_by_others(path);
    Ok(secret)
}

/// Reads the file at `path`, or creates it with a new secret if there is none. Two processes
/// starting at once agree: the file appears whole or not at all (written aside, then linked
/// into place, which fails if it exists), and the one that loses reads the winner's.
fn read_or_create(path: &Path) -> Result<(String, Source), ConfigError> {
    if path.exists() {
        return Ok((read(path)?, Source::Read(path.to_path_buf())));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| {
        invalid(
            path,
            &format!("cannot create the folder {}: {e}", dir.display()),
        )
    })?;
    let secret = generate().map_err(|e| invalid(path, &e))?;
    let aside = dir.join(format!(
        ".{FILE_NAME}.{}.{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let written = write_private(&aside, &secret).and_then(|()| std::fs::hard_link(&aside, path));
    let _ = std::fs::remove_file(&aside);
    match written {
        Ok(()) => Ok((secret, Source::Generated(path.to_path_buf()))),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok((read(path)?, Source::Read(path.to_path_buf())))
        }
        Err(e) => Err(invalid(path, &format!("cannot write it: {e}"))),
    }
}

/// 32 random bytes from the operating system, as 64 lowercase hex characters.
fn generate() -> Result<String, String> {
    let mut bytes = [0u8; RANDOM_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| format!("no random bytes from the system: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Writes `secret` and a newline to a new file only its owner may read, and syncs it.
fn write_private(path: &Path, secret: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(format!("{secret}\n").as_bytes())?;
    file.sync_all()
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                log::warn!(
                    "[STARTUP] the secret file {} has mode {mode:o}: others may read it (chmod 600 it)",
                    path.display()
                );
            }
        }
    }
}

fn invalid(path: &Path, problem: &str) -> ConfigError {
    ConfigError::Invalid {
        key: "server.data_dir",
        problem: format!("the secret file {}: {problem}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_secret_is_64_hex_characters_and_read_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_in(&dir.path().join("nested"));
        let (first, source) = read_or_create(&path).unwrap();
        assert_eq!(source, Source::Generated(path.clone()));
        assert_eq!(first.len(), 64);
        assert!(first
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{first}\n")
        );
        let (again, source) = read_or_create(&path).unwrap();
        assert_eq!((again, source), (first, Source::Read(path)));
    }

    #[test]
    fn processes_starting_at_once_agree_on_one_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_in(dir.path());
        let results: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || read_or_create(&path).unwrap())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        let generated = results
            .iter()
            .filter(|(_, s)| matches!(s, Source::Generated(_)))
            .count();
        assert_eq!(generated, 1, "one writer wins");
        assert!(results.iter().all(|(s, _)| *s == results[0].0));
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no file written aside is left behind");
    }

    #[test]
    fn a_garbled_secret_file_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_in(dir.path());
        std::fs::write(&path, "short\n").unwrap();
        let e = read(&path).unwrap_err().to_string();
        assert!(e.contains("delete it"), "{e}");
    }
}
