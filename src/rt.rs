//! Real-time scheduling for the threads on the audio path (input clock, engine, stream
//! shards, wired outputs).
//!
//! Why: the audio path is a chain of threads that each must run within a fraction of a
//! frame after the previous one. Under the default scheduler a build, a browser or a log
//! rotation on the same box delays them by whole frames (measured: 9 underruns and 2,618
//! skipped frames in 5 minutes). SCHED_FIFO puts them ahead of every normal thread.
//!
//! Where the kernel refuses (no `CAP_SYS_NICE`, no `rtprio` rlimit, a container), the thread
//! logs one line saying so and runs at normal priority; `/metrics` shows what each thread got
//! (`monmix_rt_priority{thread=…}`: the FIFO priority, or 0 for normal scheduling).

use std::sync::{Mutex, PoisonError};

use thread_priority::{
    RealtimeThreadSchedulePolicy, ThreadPriority, ThreadPriorityValue, ThreadSchedulePolicy,
};

/// Which thread of the audio path: each gets a priority a notch below the one feeding it,
/// so the producer of a frame always runs before its consumer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtRole {
    /// The input clock or device supervisor thread.
    Input,
    /// The engine thread.
    Engine,
    /// A stream shard (encode, SRTP, send).
    Shard,
    /// A wired output's device callback (in-ears): fed by the engine, and with no network
    /// after it, the tightest deadline after the engine's own.
    Output,
}

impl RtRole {
    /// Cross-platform priority (1..=99 scale of the crate).
    fn priority(self) -> u8 {
        match self {
            RtRole::Input => 70,
            RtRole::Engine => 65,
            RtRole::Output => 62,
            RtRole::Shard => 60,
        }
    }
}

/// Threads that asked, with the FIFO priority they got (0 = normal scheduling).
static GRANTED: Mutex<Vec<(String, u8)>> = Mutex::new(Vec::new());
/// Set once a refusal has been logged, so a server with many shards says it once.
static REFUSAL_LOGGED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Asks SCHED_FIFO for the calling thread. Never fails: a refusal is logged once per process
/// and the thread carries on at normal priority. Returns the priority granted (0 = none).
/// Not for the steady state: call it once, when the thread starts.
pub fn promote_current(name: &str, role: RtRole) -> u8 {
    let want = role.priority();
    let granted = match ThreadPriorityValue::try_from(want) {
        Ok(v) => {
            let r = thread_priority::set_thread_priority_and_policy(
                thread_priority::thread_native_id(),
                ThreadPriority::Crossplatform(v),
                ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo),
            );
            match r {
                Ok(()) => want,
                Err(e) => {
                    if !REFUSAL_LOGGED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                        tracing::warn!(
                            thread = name,
                            "real-time priority (SCHED_FIFO) not allowed here ({e:?}); audio \
                             threads run at normal priority (grant CAP_SYS_NICE or an rtprio \
                             limit to fix)"
                        );
                    }
                    0
                }
            }
        }
        Err(_) => 0,
    };
    let mut g = GRANTED.lock().unwrap_or_else(PoisonError::into_inner);
    match g.iter_mut().find(|(n, _)| n == name) {
        Some(e) => e.1 = granted,
        None => g.push((name.to_owned(), granted)),
    }
    granted
}

/// Prometheus lines: one gauge per thread that asked for real-time priority.
pub fn render_metrics(p: &mut crate::metrics::PromText) {
    let g = GRANTED.lock().unwrap_or_else(PoisonError::into_inner);
    p.family(
        "rt_priority",
        crate::metrics::Kind::Gauge,
        "SCHED_FIFO priority granted to an audio-path thread (0 = normal scheduling).",
    );
    for (name, prio) in g.iter() {
        p.sample("rt_priority", &[("thread", name)], prio);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promotion_is_recorded_whether_granted_or_not() {
        let got = std::thread::spawn(|| promote_current("rt-test", RtRole::Shard))
            .join()
            .expect("thread");
        assert!(got == 0 || got == RtRole::Shard.priority());
        let mut p = crate::metrics::PromText::new();
        render_metrics(&mut p);
        let m = p.finish();
        assert!(
            m.contains(&format!("monmix_rt_priority{{thread=\"rt-test\"}} {got}")),
            "{m}"
        );
    }
}
