//! A worker as a whole and one diagnosis per request it serves: a gthread worker's pool threads
//! each diagnosed on their own, the worker row summarising them (threads busy / total, the
//! longest stuck).

use super::diagnosis::{BackendLookup, LiveContext, WorkerDiagnosis, WorkerInput, diagnose};
use super::reading::StackReading;
use crate::live::gunicorn_config::WorkerClass;
use crate::report::{Cause, Severity, ThreadState, WorkerState};

/// A worker's diagnosis as a whole, and one per request it serves.
#[derive(Debug, Clone)]
pub struct WorkerOutcome {
    /// The worker's row: for gthread, a summary of its threads (busy / total, the longest stuck).
    pub worker: WorkerDiagnosis,
    /// One diagnosis per request thread: what findings are made of.
    pub requests: Vec<WorkerDiagnosis>,
}

impl WorkerOutcome {
    /// The worker's row with its threads, for the report.
    pub fn state(&self) -> WorkerState {
        let mut state = self.worker.state.clone();
        state.threads = self
            .requests
            .iter()
            .filter(|r| r.state.state != "idle")
            .map(thread_state)
            .collect();
        state
    }
}

pub(super) fn thread_state(d: &WorkerDiagnosis) -> ThreadState {
    let s = &d.state;
    let (thread_id, thread_name) = d.thread.clone().unwrap_or((0, None));
    ThreadState {
        pid: s.pid,
        thread_id,
        thread_name,
        state: s.state.clone(),
        stuck_seconds: s.stuck_seconds,
        cause: s.cause,
        frame: s.frame.clone(),
        seconds_left: s.seconds_left,
        rss_bytes: s.rss_bytes,
        swap_bytes: s.swap_bytes,
        busy_seconds: s.busy_seconds,
        samples: s.samples,
        hot_frames: s.hot_frames.clone(),
        major_faults_per_second: s.major_faults_per_second,
        exited: s.exited,
        outbound: s.outbound,
        view: s.view.clone(),
        busy_seconds_at_least: s.busy_seconds_at_least,
    }
}

/// Diagnoses a worker and each request thread it serves. `primary` is the worker's request
/// thread as [`super::read_stacks`] picks it; `threads` every serving thread ([`super::read_threads`]).
pub fn diagnose_worker(
    primary: &StackReading,
    threads: &[StackReading],
    input: &WorkerInput,
    ctx: &LiveContext,
) -> WorkerOutcome {
    let mut worker = diagnose(primary, input, ctx);
    if input.class != WorkerClass::Gthread {
        // One request at a time is visible: the worker's diagnosis is its request's.
        let mut request = worker.clone();
        request.thread = primary
            .thread_id
            .map(|id| (id, primary.thread_name.clone()));
        let requests = if primary.is_busy() {
            vec![request]
        } else {
            Vec::new()
        };
        return WorkerOutcome { worker, requests };
    }
    let database_waits = threads.iter().filter(|t| t.waits_on_database).count();
    let mut requests: Vec<WorkerDiagnosis> = threads
        .iter()
        .map(|t| {
            let thread_input = WorkerInput {
                memory: None,
                request_thread: true,
                // PostgreSQL's backend is matched per process: with one waiting thread it is
                // that thread's.
                backend: match &input.backend {
                    BackendLookup::Found(_) | BackendLookup::Unmatched
                        if t.waits_on_database && database_waits > 1 =>
                    {
                        BackendLookup::Ambiguous
                    }
                    other => other.clone(),
                },
                ..input.clone()
            };
            let mut d = diagnose(t, &thread_input, ctx);
            // Memory is the process's: each thread shows the worker's.
            d.state.rss_bytes = worker.state.rss_bytes;
            d.state.swap_bytes = worker.state.swap_bytes;
            d.state.major_faults_per_second = worker.state.major_faults_per_second;
            d
        })
        .collect();
    // The row summarises: the longest-stuck request names the worker's state and cause.
    if let Some(longest) = requests
        .iter()
        .max_by(|a, b| a.state.stuck_seconds.total_cmp(&b.state.stuck_seconds))
        && worker.cause != Some(Cause::Memory)
    {
        let s = &longest.state;
        worker.state.state = s.state.clone();
        worker.state.stuck_seconds = s.stuck_seconds;
        worker.state.cause = s.cause;
        worker.state.frame = s.frame.clone();
        worker.state.outbound = s.outbound;
        worker.state.view = s.view.clone();
        worker.state.hot_frames = s.hot_frames.clone();
        worker.state.busy_seconds = s.busy_seconds;
        worker.state.busy_seconds_at_least = s.busy_seconds_at_least;
        worker.cause = longest.cause;
    }
    let total = input.threads.max(1) as usize;
    // Every thread held: the worker's queue grows behind them, an outage for its clients.
    let exhausted = requests.len() >= total;
    let pool = match total.saturating_sub(requests.len()) {
        0 => format!(
            "worker {}: all {total} threads serve requests; what it accepts now waits in its queue",
            input.pid
        ),
        left => format!(
            "worker {}: {} of {total} threads serve requests, {left} left",
            input.pid,
            requests.len()
        ),
    };
    for r in &mut requests {
        r.evidence.push(pool.clone());
        if exhausted && r.state.state == "stuck" {
            r.severity = r.severity.max(Severity::Critical);
        }
    }
    worker.state.threads_busy = Some(requests.len());
    worker.state.threads_total = Some(total);
    WorkerOutcome { worker, requests }
}

/// One worker's samples, read and diagnosed in one step: the entry point for `watch`, which
/// diagnoses each worker on its own when its episode ends. The worker class is the one its
/// stacks show, else `input.class`; the pool size at least the threads seen. Returns the request
/// thread's reading (for its frames) with the outcome.
pub fn diagnose_samples(
    samples: &[crate::live::sampler::Sample],
    input: &WorkerInput,
    ctx: &LiveContext,
    stuck_min: f64,
) -> (StackReading, WorkerOutcome) {
    let primary = super::reading::read_stacks(samples, stuck_min);
    let threads = super::reading::read_threads(samples, stuck_min);
    let input = WorkerInput {
        class: super::reading::class_from_stacks(samples).unwrap_or_else(|| input.class.clone()),
        threads: input
            .threads
            .max(super::reading::pool_threads(samples) as u32),
        ..input.clone()
    };
    let outcome = diagnose_worker(&primary, &threads, &input, ctx);
    (primary, outcome)
}
