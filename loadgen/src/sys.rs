//! What the load generator asks of the operating system: a higher open-file limit, its own CPU
//! time (getrusage), and the server's RSS and CPU time from /proc. Linux only, like the rest.

use crate::error::LoadgenError;

/// Raises the soft RLIMIT_NOFILE to the hard limit; answers (old soft, new soft).
pub fn raise_file_limit() -> Result<(u64, u64), LoadgenError> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(LoadgenError::FileLimit(format!(
            "getrlimit: {}",
            std::io::Error::last_os_error()
        )));
    }
    let old = lim.rlim_cur;
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: setrlimit reads the struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(LoadgenError::FileLimit(format!(
                "setrlimit to {}: {}",
                lim.rlim_max,
                std::io::Error::last_os_error()
            )));
        }
    }
    Ok((old, lim.rlim_cur))
}

/// Seconds of CPU (user + system) this process has used.
pub fn own_cpu_seconds() -> f64 {
    // SAFETY: an all-zero rusage is a valid value for getrusage to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// The resident set size of `pid` in KiB (VmRSS of /proc/PID/status), if readable.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Seconds of CPU (user + system) process `pid` has used, from /proc/PID/stat, if readable.
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 (utime) and 15 (stime) of proc(5); `after` starts at field 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (ticks > 0).then(|| (utime + stime) as f64 / ticks as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_an_rss_and_cpu_time() {
        let pid = std::process::id();
        assert!(rss_kib(pid).unwrap_or(0) > 0);
        assert!(process_cpu_seconds(pid).is_some());
        assert!(own_cpu_seconds() >= 0.0);
    }

    #[test]
    fn a_missing_process_has_no_rss() {
        assert_eq!(rss_kib(u32::MAX), None);
    }
}
