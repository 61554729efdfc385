//! A process's resources from `/proc`: the one reader for the leak, churn and soak tests
//! and the listener benchmark (which includes this file by `#[path]`).
#![allow(dead_code)]

/// Resident memory, threads and open file descriptors of one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStats {
    pub rss_kb: u64,
    pub threads: u64,
    pub fds: u64,
}

impl ProcStats {
    /// The process `pid` (zeros for what cannot be read: it has exited).
    pub fn of(pid: i32) -> ProcStats {
        Self::read(&format!("/proc/{pid}"))
    }

    /// This process.
    pub fn of_self() -> ProcStats {
        Self::read("/proc/self")
    }

    fn read(dir: &str) -> ProcStats {
        let status = std::fs::read_to_string(format!("{dir}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        ProcStats {
            rss_kb: field("VmRSS:"),
            threads: field("Threads:"),
            fds: std::fs::read_dir(format!("{dir}/fd")).map_or(0, |d| d.count() as u64),
        }
    }
}
