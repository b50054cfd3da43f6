//! Logging: `env_logger` from `RUST_LOG` (default `info`), one line per event.

/// Sets up the logger once; later calls do nothing.
pub fn init() {
    init_with_default("info");
}

/// Like `init`, with another level when `RUST_LOG` is unset (`rallypoint token`: warnings only,
/// so a terminal minting tokens sees a generated secret, not a line per token).
pub fn init_with_default(level: &str) {
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_timestamp_millis()
        .try_init();
}

/// A value a client sent, written into a log line quoted and escaped (`"x\n[DECISION]"` stays on
/// its line, with its quotes), so no client can forge a log line (SPEC 7). `q(&id)` in a format.
pub struct Quoted<'a>(&'a str);

/// Quotes and escapes `s` for a log line.
pub fn q<S: AsRef<str> + ?Sized>(s: &S) -> Quoted<'_> {
    Quoted(s.as_ref())
}

/// Quotes an optional value; `-` when there is none.
pub fn q_or_dash<S: AsRef<str>>(s: Option<&S>) -> QuotedOr<'_> {
    QuotedOr(s.map(|s| s.as_ref()))
}

/// An optional quoted value (`-` for none).
pub struct QuotedOr<'a>(Option<&'a str>);

impl std::fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::fmt::Display for QuotedOr<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(s) => write!(f, "{s:?}"),
            None => f.write_str("-"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quoted_value_cannot_break_its_line_or_its_quotes() {
        let forged = "x\n[DECISION] event=forged \"action=MAINTAIN\"\r\u{1b}[2J";
        let line = format!("order={}", q(forged));
        assert!(!line.contains('\n') && !line.contains('\r') && !line.contains('\u{1b}'));
        assert_eq!(
            line,
            r#"order="x\n[DECISION] event=forged \"action=MAINTAIN\"\r\u{1b}[2J""#
        );
        assert_eq!(format!("{}", q_or_dash::<String>(None)), "-");
        assert_eq!(format!("{}", q_or_dash(Some(&"DRV-1"))), r#""DRV-1""#);
    }
}
