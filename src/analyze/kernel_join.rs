//! Joins the kernel's OOM kills to worker incidents by pid: a worker whose SIGKILL the kernel
//! logged as `Killed process N` was killed for memory, whatever else its log shows (a timeout
//! before it included: the worker grew or swapped until the master's timeout, then the OOM
//! killer took it). OOM kills of processes Gunicorn logged nothing about (before 20.1 a killed
//! worker is only a new `Booting worker` line) are returned for a finding of their own.

use std::sync::Arc;

use chrono::Duration;

use crate::analyze::incident::{Basis, Incident};
use crate::parse::kernel::OomKill;
use crate::report::{Attribution, Cause, Confidence, Evidence, Origin};

/// OOM kills kept from the kernel logs (a machine that kills thousands has one story).
pub const MAX_OOM_KILLS: usize = 10_000;
/// A kernel line and Gunicorn's SIGKILL of the same pid this far apart are not the same death
/// (pids are reused); `dmesg -T` times drift from the wall clock by a second or more.
const SAME_DEATH_SECS: i64 = 120;

/// An OOM kill with where it was read.
pub struct KernelKill {
    pub kill: OomKill,
    pub path: String,
    pub line: u64,
    /// The host of a multi-origin stream (journald's `_HOSTNAME`), or the file: a host's OOM
    /// kill never explains another host's worker.
    pub origin: Origin,
}

impl KernelKill {
    fn evidence(&self) -> Evidence {
        Evidence {
            path: self.path.clone(),
            line: Some(self.line),
            text: self.kill.text.clone(),
        }
    }
}

/// Marks incidents the OOM killer explains; returns the kills no incident took.
pub fn join<'a>(incidents: &mut [Incident], kills: &'a [KernelKill]) -> Vec<&'a KernelKill> {
    let mut unmatched = Vec::new();
    for k in kills {
        let found = incidents.iter_mut().rev().find(|inc| {
            inc.pid == k.kill.pid
                && inc.origin.may_join(&k.origin)
                && inc.kill.as_ref().is_some_and(|(m, signal)| {
                    &**signal == "SIGKILL"
                        && k.kill.time.is_none_or(|t| {
                            (m.time - t).abs() <= Duration::seconds(SAME_DEATH_SECS)
                        })
                })
        });
        match found {
            Some(inc) => apply(inc, k),
            None => unmatched.push(k),
        }
    }
    unmatched
}

fn apply(inc: &mut Incident, k: &KernelKill) {
    let what = if k.kill.cgroup {
        "its memory cgroup's limit (the container's memory limit)"
    } else {
        "the machine's memory"
    };
    let after_timeout = if inc.timeout.is_some() {
        " It had timed out first: a worker that grows or swaps until the timeout, then is \
         killed for memory, was slowed down by memory, not by a request's code."
    } else {
        ""
    };
    inc.attribution = Arc::new(Attribution {
        cause: Cause::Memory,
        reason: format!(
            "the kernel's OOM killer killed it for exceeding {what} ('Killed process {}' in the \
             kernel log).{after_timeout}",
            k.kill.pid
        ),
        request: inc.attribution.request.clone(),
        ..Attribution::default()
    });
    inc.basis = Basis::KernelOom;
    inc.confidence = Confidence::High;
    inc.ruled_out = Arc::from([]);
    inc.correlated.push(k.evidence());
}
