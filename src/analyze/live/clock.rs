//! Which clock a busy request runs against, by worker class: the seconds left before the master
//! aborts the worker, or none where the master will not kill for this request.

use super::diagnosis::{LiveContext, WorkerInput};
use super::reading::{Activity, StackReading};
use crate::live::gunicorn_config::WorkerClass;

/// gthread's main loop notifies the master at least once a second (`ThreadWorker.run`:
/// `self.notify()`, then `poller.select(timeout=1.0)`); a heartbeat older than this means the
/// main thread could not run.
pub(super) const MAIN_LOOP_SILENT_SECONDS: f64 = 3.0;

/// What the master's clock means for a busy reading.
pub(super) struct ClockReading {
    /// How long the request has run.
    pub(super) busy_seconds: Option<f64>,
    /// `busy_seconds` is a lower bound.
    pub(super) at_least: bool,
    pub(super) seconds_left: Option<f64>,
    /// Event-loop classes: the loop is held by one call.
    pub(super) loop_blocked: Option<bool>,
    /// What the clock means, for the evidence line.
    pub(super) note: Option<String>,
}

/// The request's age as sampled: from its first busy sample to its last.
pub(super) fn sampled_age(reading: &StackReading) -> f64 {
    (reading.busy_to - reading.busy_from).max(reading.stuck_seconds)
}

/// Which clock a busy request runs against, by worker class (see ATTRIBUTION: the master aborts
/// a worker whose heartbeat is older than `timeout`; who beats the heart depends on the class).
/// - sync: the worker notifies between requests, so the heartbeat's age is the request's age.
/// - gthread: only the main thread's loop notifies (`ThreadWorker.run`); request threads are
///   never timed out. The worker is aborted only when the main thread cannot run.
/// - gevent/eventlet/asyncio: the loop notifies (gevent: `GeventWorker.run`'s `notify();
///   gevent.sleep(1.0)`; uvicorn: `Server.on_tick` every `timeout / 2`); a call that does not
///   yield holds the loop, and then the heartbeat ages towards `timeout`.
pub(super) fn clock(
    reading: &StackReading,
    input: &WorkerInput,
    ctx: &LiveContext,
) -> ClockReading {
    let left = |age: f64| match ctx.timeout {
        Some(t) if t > 0.0 && !input.exited => Some((t - age).max(0.0)),
        _ => None,
    };
    let sampled = Some(sampled_age(reading));
    let at_least = reading.busy_from_start;
    // gthread: a heartbeat this old means the main thread could not run; the master then aborts
    // the whole worker, request threads included.
    let starved = input
        .heartbeat_age
        .filter(|age| *age >= MAIN_LOOP_SILENT_SECONDS);
    match &input.class {
        WorkerClass::Gthread if input.request_thread => ClockReading {
            busy_seconds: sampled,
            at_least,
            seconds_left: starved.and_then(left),
            loop_blocked: None,
            note: Some(match starved {
                Some(age) => format!(
                    "gthread: the worker's main thread has not notified the master for {age:.1} \
                     s (a thread holds the GIL in C code, or the process is stopped): the master \
                     aborts the worker, this request with it, when that reaches the timeout"
                ),
                None => "gthread: the master never times out a request thread (only the main \
                         thread notifies it); this request holds its thread until it returns or \
                         the client goes away"
                    .into(),
            }),
        },
        WorkerClass::Gthread => ClockReading {
            busy_seconds: sampled,
            at_least,
            seconds_left: starved.and_then(left),
            loop_blocked: None,
            note: Some(match starved {
                Some(age) => format!(
                    "gthread: the main thread has not notified the master for {age:.1} s \
                         (GIL-holding C code, or the process is stopped): the master aborts the \
                         worker when this reaches the timeout"
                ),
                None => "gthread: the main thread notifies the master, so no WORKER \
                             TIMEOUT comes of a hung request"
                    .into(),
            }),
        },
        class if class.is_event_loop() => {
            let blocked = reading.activity == Activity::Stuck || reading.long_run;
            ClockReading {
                busy_seconds: sampled,
                at_least,
                seconds_left: input.heartbeat_age.filter(|_| blocked).and_then(left),
                loop_blocked: Some(blocked),
                note: Some(if blocked {
                    format!(
                        "{}: this call holds the event loop; no other request of the worker \
                         runs and the worker cannot notify the master",
                        class.name()
                    )
                } else {
                    format!(
                        "{}: the loop runs between samples (other requests go on)",
                        class.name()
                    )
                }),
            }
        }
        _ => {
            let age = input.heartbeat_age;
            ClockReading {
                busy_seconds: age,
                at_least: false,
                seconds_left: age.and_then(left),
                loop_blocked: None,
                note: None,
            }
        }
    }
}
