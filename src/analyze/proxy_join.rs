//! Joins the reverse proxy's error log (nginx) to worker incidents: the proxy's `upstream
//! prematurely closed connection` at the second a worker died names that worker's request (on
//! Gunicorn < 22 the only record of it); its `upstream timed out` is the proxy giving up before
//! Gunicorn (the timeout ladder in the wrong order), a finding of its own.

use std::sync::Arc;

use chrono::Duration;

use crate::analyze::incident::Incident;
use crate::parse::nginx::{NginxUpstream, UpstreamEnd};
use crate::report::{Evidence, Origin};

/// Upstream lines kept from proxy logs.
pub const MAX_PROXY_LINES: usize = 10_000;

/// One upstream line with where it was read.
pub struct ProxyLine {
    pub up: NginxUpstream,
    pub path: String,
    pub line: u64,
    pub text: String,
    /// The host of a multi-origin stream, or the file: a proxy names only the requests of
    /// workers of its own origin when both carry a label.
    pub origin: Origin,
}

impl ProxyLine {
    pub fn evidence(&self) -> Evidence {
        Evidence {
            path: self.path.clone(),
            line: Some(self.line),
            text: self.text.clone(),
        }
    }
}

/// Names the request of each killed worker the proxy saw die; returns the proxy's own
/// timeouts (`upstream timed out`).
pub fn join<'a>(incidents: &mut [Incident], lines: &'a [ProxyLine]) -> Vec<&'a ProxyLine> {
    let mut timed_out = Vec::new();
    for l in lines {
        match l.up.end {
            UpstreamEnd::TimedOut => timed_out.push(l),
            UpstreamEnd::Closed => {
                let Some(t) = l.up.time else { continue };
                // Both write whole seconds: the death is logged in the same second or the one
                // before the proxy notices.
                let died = |inc: &Incident| inc.kill.as_ref().map_or(inc.time, |(m, _)| m.time);
                let near: Vec<usize> = (0..incidents.len())
                    .filter(|&i| {
                        let d = died(&incidents[i]);
                        incidents[i].origin.may_join(&l.origin)
                            && d >= t - Duration::seconds(2)
                            && d <= t + Duration::seconds(1)
                    })
                    .collect();
                // A worker that logged its abort (22+) and exited without a kill answered its
                // client (Gunicorn's 500): it is not the connection the proxy saw closed.
                let unanswered: Vec<usize> = near
                    .iter()
                    .copied()
                    .filter(|&i| incidents[i].abort.is_none() || incidents[i].kill.is_some())
                    .collect();
                let near = if near.len() > 1 { unanswered } else { near };
                // Several workers dying in that second fit it equally: name none.
                let [i] = near[..] else { continue };
                let inc = &mut incidents[i];
                if inc.attribution.request.is_none()
                    && let Some(r) = &l.up.request
                {
                    Arc::make_mut(&mut inc.attribution).request = Some(r.clone());
                }
                inc.correlated.push(l.evidence());
            }
        }
    }
    timed_out
}
