//! The event stream of one `wtdiag logs` run, kept bounded. Abort tracebacks are read into a
//! verdict as they arrive and their text dropped; every timeout, abort and kill feeds the
//! [`IncidentBuilder`] (compact); the report lists events up to a cap and counts the rest, so
//! memory does not grow with the size of the logs.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::FixedOffset;

use crate::analyze::incident::{Incident, IncidentBuilder};
use crate::analyze::stack;
use crate::analyze::window::Window;
use crate::analyze::worker_findings::Groups;
use crate::parse::traceback;
use crate::report::{Attribution, Event, EventDetail};

/// Timeout, kill, abort and failure events listed in the report; later ones are counted.
pub const MAX_LISTED_INCIDENT_EVENTS: u64 = 20_000;
/// Routine events (worker boots and exits, starts) listed; later ones are counted.
pub const MAX_LISTED_ROUTINE_EVENTS: u64 = 10_000;

#[derive(Debug, Default)]
pub struct Timeline {
    window: Window,
    listed: Vec<Event>,
    listed_incident: u64,
    listed_routine: u64,
    /// Every event in the window, by kind, listed or not.
    counts: BTreeMap<&'static str, u64>,
    omitted: u64,
    incidents: IncidentBuilder,
    /// How often each UTC offset (seconds) appears on records the workers wrote after loading
    /// the app (`Error handling request`, `Worker exiting`): the application's own zone, which
    /// Django sets from TIME_ZONE and which may differ from the master's.
    worker_offsets: BTreeMap<i32, u64>,
}

/// What a timeline gives at the end.
pub struct TimelineResult {
    /// Listed events, in time order.
    pub events: Vec<Event>,
    pub counts: BTreeMap<&'static str, u64>,
    pub omitted: u64,
    /// The first [`MAX_KEPT_INCIDENTS`](crate::analyze::incident::MAX_KEPT_INCIDENTS) incidents.
    pub incidents: Vec<Incident>,
    /// The incidents past the cap, attributed from the error log and counted per finding.
    pub folded: Groups,
    pub folded_count: u64,
    /// The offset most worker records carry, if any.
    pub app_offset: Option<FixedOffset>,
    /// A database appears in the run's tracebacks or inputs (advice may name its driver).
    pub database_seen: bool,
}

/// Reads an abort traceback into its event's verdict and drops its text; says whether the stack
/// shows a database (`None` when the event has no traceback that reads). Pure, so it may run on
/// the thread that parsed the event.
pub fn read_abort(event: &mut Event) -> Option<bool> {
    let EventDetail::RequestAbort {
        exception,
        attribution,
        traceback: text,
    } = &mut event.detail
    else {
        return None;
    };
    let mut database = None;
    if let Some(tb) = traceback::parse(text) {
        *exception = tb.exception.map(str::to_string);
        database = Some(stack::mentions_database(&tb.frames));
        // Only a stack that reaches the abort handler shows where the worker was when the
        // master's SIGABRT landed; one cut short by the paste (or a plain exception's) is not
        // the stuck stack.
        if stack::through_abort_handler(&tb.frames) {
            let verdict = stack::classify(&tb.frames);
            *attribution = Arc::new(Attribution {
                cause: verdict.cause,
                reason: verdict.reason,
                request: attribution.request.clone(),
                stuck_frame: verdict.stuck_frame,
                call_site: verdict.call_site,
                view: verdict.view,
                outbound: verdict.outbound,
            });
        }
    }
    *text = String::new();
    database
}

impl Timeline {
    pub fn new(window: Window) -> Timeline {
        Timeline {
            window,
            ..Timeline::default()
        }
    }

    pub fn push(&mut self, mut event: Event) {
        let database = read_abort(&mut event);
        self.push_read(event, database);
    }

    /// Takes an event whose abort traceback [`read_abort`] has read already (on another
    /// thread), with what it said of the database.
    pub fn push_read(&mut self, mut event: Event, database: Option<bool>) {
        if !self.window.contains(event.time) {
            return;
        }
        *self.counts.entry(event.detail.kind()).or_insert(0) += 1;
        if database == Some(true) {
            self.incidents.database_seen = true;
        }
        self.incidents.push(&event);
        if let (
            EventDetail::RequestAbort { .. } | EventDetail::WorkerExit { exit_code: None },
            Some(t),
        ) = (&event.detail, event.time)
        {
            *self
                .worker_offsets
                .entry(t.offset().local_minus_utc())
                .or_insert(0) += 1;
        }
        let routine = matches!(
            event.detail,
            EventDetail::WorkerBoot
                | EventDetail::WorkerExit { .. }
                | EventDetail::GunicornStart { .. }
        );
        let (listed, cap) = if routine {
            (&mut self.listed_routine, MAX_LISTED_ROUTINE_EVENTS)
        } else {
            (&mut self.listed_incident, MAX_LISTED_INCIDENT_EVENTS)
        };
        if *listed >= cap {
            self.omitted += 1;
            return;
        }
        *listed += 1;
        if routine {
            // Routine events are never evidence; their text is not worth keeping.
            event.text = String::new();
        }
        self.listed.push(event);
    }

    /// What `Using worker:` said, for the incidents read so far and later ones.
    pub fn set_worker_class(&mut self, class: &str) {
        self.incidents.threaded = class == "gthread" || class.ends_with("ThreadWorker");
    }

    /// Builds the incidents and puts the listed events of several inputs in time order.
    /// Says that a database log is among the inputs.
    pub fn database_input(&mut self) {
        self.incidents.database_seen = true;
    }

    pub fn finish(self) -> TimelineResult {
        let mut events = self.listed;
        // One file is already in order (moving large events costs more than checking). Events
        // without a time keep their place: they are ordered by position.
        if events.iter().all(|e| e.time.is_some()) && !events.is_sorted_by_key(|e| e.time) {
            events.sort_by_key(|e| e.time);
        }
        let database_seen = self.incidents.database_seen;
        let (incidents, folded, folded_count) = self.incidents.finish();
        TimelineResult {
            database_seen,
            events,
            counts: self.counts,
            omitted: self.omitted,
            incidents,
            folded,
            folded_count,
            app_offset: self
                .worker_offsets
                .iter()
                .max_by_key(|(_, n)| **n)
                .and_then(|(secs, _)| FixedOffset::east_opt(*secs)),
        }
    }
}
