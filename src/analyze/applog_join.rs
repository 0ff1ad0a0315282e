//! Joins an application request log to the incidents by worker pid and time, streaming: for
//! each incident it keeps only the request its worker had open when it timed out, so memory
//! stays bounded by the number of incidents, not the log's size.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, FixedOffset, TimeZone};

use crate::analyze::incident::Incident;
use crate::parse::applog::AppLine;
use crate::report::Evidence;

struct PidState {
    open: Option<(AppLine, String)>,
    /// (time, incident index), oldest first.
    waiting: VecDeque<(DateTime<FixedOffset>, usize)>,
}

pub struct AppLogJoin {
    by_pid: HashMap<u32, PidState>,
    /// Offset for app-log times that carry none: the error log's.
    default_offset: FixedOffset,
    resolved: Vec<(usize, AppLine, String)>,
    pub matched_lines: u64,
}

impl AppLogJoin {
    /// `app_offset`: the UTC offset the application logs in, when known (the offset of the
    /// records Gunicorn's workers wrote after loading the app); app-log times without an
    /// offset are read in it, else in the error log's.
    pub fn new(incidents: &[Incident], app_offset: Option<FixedOffset>) -> AppLogJoin {
        let mut by_pid: HashMap<u32, PidState> = HashMap::new();
        let mut order: Vec<usize> = (0..incidents.len()).collect();
        order.sort_by_key(|&i| incidents[i].time);
        for i in order {
            by_pid
                .entry(incidents[i].pid)
                .or_insert_with(|| PidState {
                    open: None,
                    waiting: VecDeque::new(),
                })
                .waiting
                .push_back((incidents[i].time, i));
        }
        let default_offset = app_offset
            .or_else(|| incidents.first().map(|i| *i.time.offset()))
            .unwrap_or_else(|| FixedOffset::east_opt(0).expect("zero offset"));
        AppLogJoin {
            by_pid,
            default_offset,
            resolved: Vec::new(),
            matched_lines: 0,
        }
    }

    /// Takes one request line of `path`; lines must come in time order per pid.
    pub fn push(&mut self, path: &str, line: AppLine) {
        let Some(state) = self.by_pid.get_mut(&line.pid) else {
            return;
        };
        self.matched_lines += 1;
        let offset = line.offset.unwrap_or(self.default_offset);
        let Some(time) = offset.from_local_datetime(&line.time).single() else {
            return;
        };
        while let Some(&(t, idx)) = state.waiting.front() {
            if t > time {
                break;
            }
            state.waiting.pop_front();
            if let Some((open, path)) = &state.open {
                self.resolved.push((idx, open.clone(), path.clone()));
            }
        }
        if line.is_start {
            state.open = Some((line, path.to_string()));
        } else if state
            .open
            .as_ref()
            .is_some_and(|(open, _)| open.request == line.request)
        {
            state.open = None;
        }
    }

    /// Gives each incident the request its worker had open, with the app-log line as evidence.
    pub fn finish(mut self, incidents: &mut [Incident]) {
        for state in self.by_pid.values_mut() {
            if let Some((open, path)) = &state.open {
                for &(_, idx) in &state.waiting {
                    self.resolved.push((idx, open.clone(), path.clone()));
                }
            }
        }
        for (idx, line, path) in self.resolved {
            let inc = &mut incidents[idx];
            if inc.attribution.request.is_none() {
                std::sync::Arc::make_mut(&mut inc.attribution).request = Some(line.request.clone());
            }
            inc.correlated.push(Evidence {
                path,
                line: Some(line.line),
                text: format!(
                    "app log: pid {} started {} at {} and had not finished",
                    line.pid, line.request, line.time
                ),
            });
        }
    }
}
