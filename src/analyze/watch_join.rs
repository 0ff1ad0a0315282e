//! Joins `wtdiag watch`'s incidents to the error log's worker incidents by pid and time: a worker
//! that watch sampled while it was stuck, and that the master timed out or killed during that
//! episode, gets the cause, request and frames watch read from its stacks (before Gunicorn 22
//! the error log shows none of them). The stacks were read before the kill, like an abort
//! traceback, so the incident is attributed as one.

use std::sync::Arc;

use chrono::Duration;

use crate::analyze::incident::{Basis, Incident};
use crate::parse::watch::WatchIncident;
use crate::report::{Attribution, Cause, Evidence};

/// Watch incidents kept from the inputs.
pub const MAX_WATCH_INCIDENTS: usize = 10_000;
/// Gunicorn's log has whole seconds: its records of an episode may come this far outside
/// watch's `caught_at`..`ended_at`.
const SLACK_SECS: i64 = 2;

/// A watch incident with where it was read.
pub struct WatchLine {
    pub incident: WatchIncident,
    pub path: String,
    pub line: u64,
}

/// Attributes the error log's incidents that watch sampled; returns how many it did.
pub fn join(incidents: &mut [Incident], watched: &[WatchLine]) -> usize {
    let mut joined = 0;
    for w in watched.iter().filter(|w| w.incident.outcome == "killed") {
        let (from, to) = (
            w.incident.caught_at - Duration::seconds(SLACK_SECS),
            w.incident.ended_at + Duration::seconds(SLACK_SECS),
        );
        let found = incidents
            .iter_mut()
            .find(|inc| inc.pid == w.incident.pid && inc.time >= from && inc.time <= to);
        if let Some(inc) = found {
            apply(inc, w);
            joined += 1;
        }
    }
    joined
}

fn apply(inc: &mut Incident, w: &WatchLine) {
    let i = &w.incident;
    if i.cause == Cause::Unknown && inc.attribution.cause != Cause::Unknown {
        // The log said more than the samples did.
        return;
    }
    inc.attribution = Arc::new(Attribution {
        cause: i.cause,
        reason: format!(
            "wtdiag watch sampled it {:.1} s before its end: {}",
            (i.ended_at - i.caught_at).num_milliseconds() as f64 / 1000.0,
            i.reason
        ),
        request: i
            .request
            .clone()
            .or_else(|| inc.attribution.request.clone()),
        stuck_frame: i.stuck_frame.clone(),
        call_site: i.call_site.clone(),
        view: inc.attribution.view.clone(),
        outbound: inc.attribution.outbound,
    });
    // What the worker's end ruled out stays, unless the samples saw that very cause.
    inc.ruled_out = inc
        .ruled_out
        .iter()
        .filter(|r| r.cause != i.cause)
        .cloned()
        .collect();
    inc.basis = Basis::Traceback;
    inc.confidence = i.confidence;
    inc.correlated.push(Evidence {
        path: w.path.clone(),
        line: Some(w.line),
        text: format!(
            "watch: pid {} {} at {}, {}{}",
            i.pid,
            i.outcome,
            i.ended_at.to_rfc3339(),
            i.cause,
            i.request
                .as_deref()
                .map(|r| format!(", {r}"))
                .unwrap_or_default()
        ),
    });
}
