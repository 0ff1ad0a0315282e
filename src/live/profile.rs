//! One worker's samples regrouped per thread, in time order, and the two numbers the diagnosis
//! reads off a thread's timeline: streaks (how long it stayed in exactly the same stack) and its
//! hottest frames. What counts as "busy" is the caller's to say (a predicate), so this module
//! knows timelines and nothing about causes.

use std::collections::HashMap;

use super::dump::ThreadStack;
use super::sampler::Sample;
use crate::report::Frame;

/// One thread seen in one sample.
#[derive(Debug, Clone, Copy)]
pub struct ThreadPoint<'a> {
    /// Seconds since the start of sampling.
    pub at: f64,
    pub stack: &'a ThreadStack,
}

/// One thread across the samples of a worker.
#[derive(Debug, Clone)]
pub struct ThreadTimeline<'a> {
    pub thread_id: u64,
    pub name: Option<&'a str>,
    pub points: Vec<ThreadPoint<'a>>,
}

/// Groups samples per thread; threads in order of first appearance (py-spy lists the main
/// thread last, so it is put first).
pub fn threads(samples: &[Sample]) -> Vec<ThreadTimeline<'_>> {
    let mut order: Vec<u64> = Vec::new();
    let mut by_id: HashMap<u64, ThreadTimeline<'_>> = HashMap::new();
    for sample in samples {
        for stack in sample.threads.iter().rev() {
            let t = by_id.entry(stack.thread_id).or_insert_with(|| {
                order.push(stack.thread_id);
                ThreadTimeline {
                    thread_id: stack.thread_id,
                    name: stack.thread_name.as_deref(),
                    points: Vec::new(),
                }
            });
            t.points.push(ThreadPoint {
                at: sample.at.as_secs_f64(),
                stack,
            });
        }
    }
    order
        .into_iter()
        .filter_map(|id| by_id.remove(&id))
        .collect()
}

/// Two stacks are the same when every frame has the same file, function and line.
pub fn same_stack(a: &[Frame], b: &[Frame]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.line == y.line && x.function == y.function && x.file == y.file)
}

/// A maximal run of consecutive points with the same stack.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Streak {
    /// Index of the first and last point of the run.
    pub first: usize,
    pub last: usize,
    /// Time between the first and the last point.
    pub seconds: f64,
}

impl Streak {
    /// How many points the run has.
    pub fn points(&self) -> usize {
        self.last - self.first + 1
    }
}

/// The runs of identical stacks among `points`, in order.
pub fn streaks(points: &[ThreadPoint<'_>]) -> Vec<Streak> {
    let mut out: Vec<Streak> = Vec::new();
    for (i, p) in points.iter().enumerate() {
        match out.last_mut() {
            Some(s) if same_stack(&points[s.last].stack.frames, &p.stack.frames) => {
                s.last = i;
                s.seconds = p.at - points[s.first].at;
            }
            _ => out.push(Streak {
                first: i,
                last: i,
                seconds: 0.0,
            }),
        }
    }
    out
}

/// The longest streak (the earliest of equals).
pub fn longest(streaks: &[Streak]) -> Option<Streak> {
    streaks.iter().copied().reduce(|best, s| {
        if s.seconds > best.seconds || (s.seconds == best.seconds && s.points() > best.points()) {
            s
        } else {
            best
        }
    })
}

/// A frame and how many samples had it innermost.
#[derive(Debug, Clone, PartialEq)]
pub struct HotFrame {
    pub frame: Frame,
    pub samples: usize,
}

/// The innermost frames (after `innermost` picks which frame counts) most often seen, most
/// frequent first, at most `top`.
pub fn hot_frames<'a>(
    stacks: impl IntoIterator<Item = &'a ThreadStack>,
    innermost: impl Fn(&ThreadStack) -> Option<Frame>,
    top: usize,
) -> Vec<HotFrame> {
    let mut counts: Vec<HotFrame> = Vec::new();
    for stack in stacks {
        let Some(frame) = innermost(stack) else {
            continue;
        };
        match counts
            .iter_mut()
            .find(|h| h.frame.file == frame.file && h.frame.line == frame.line)
        {
            Some(h) => h.samples += 1,
            None => counts.push(HotFrame { frame, samples: 1 }),
        }
    }
    // Stable: equals keep first-seen order.
    counts.sort_by_key(|h| std::cmp::Reverse(h.samples));
    counts.truncate(top);
    counts
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn stack(id: u64, lines: &[u32]) -> ThreadStack {
        ThreadStack {
            thread_id: id,
            os_thread_id: None,
            thread_name: None,
            active: false,
            owns_gil: false,
            frames: lines
                .iter()
                .map(|l| Frame {
                    file: "/srv/app/views.py".into(),
                    line: *l,
                    function: "v".into(),
                    code: None,
                })
                .collect(),
        }
    }

    fn sample(ms: u64, threads: Vec<ThreadStack>) -> Sample {
        Sample {
            at: Duration::from_millis(ms),
            took: Duration::from_millis(20),
            threads,
        }
    }

    #[test]
    fn streaks_break_when_a_line_changes() {
        let samples = vec![
            sample(0, vec![stack(1, &[1, 2])]),
            sample(200, vec![stack(1, &[1, 2])]),
            sample(400, vec![stack(1, &[1, 3])]),
            sample(600, vec![stack(1, &[1, 2])]),
            sample(800, vec![stack(1, &[1, 2])]),
            sample(1000, vec![stack(1, &[1, 2])]),
        ];
        let t = threads(&samples);
        assert_eq!(t.len(), 1);
        let s = streaks(&t[0].points);
        assert_eq!(s.len(), 3);
        let best = longest(&s).unwrap();
        assert_eq!((best.first, best.last), (3, 5));
        assert!((best.seconds - 0.4).abs() < 1e-9);
    }

    #[test]
    fn threads_are_split_and_the_main_thread_comes_first() {
        // py-spy prints the main thread last.
        let samples = vec![
            sample(0, vec![stack(9, &[5]), stack(1, &[1])]),
            sample(200, vec![stack(9, &[5]), stack(1, &[2])]),
        ];
        let t = threads(&samples);
        assert_eq!(
            t.iter().map(|t| t.thread_id).collect::<Vec<_>>(),
            vec![1, 9]
        );
        assert_eq!(t[1].points.len(), 2);
    }

    #[test]
    fn hot_frames_count_innermost_lines() {
        let stacks = [stack(1, &[1, 2]), stack(1, &[1, 3]), stack(1, &[1, 2])];
        let hot = hot_frames(stacks.iter(), |s| s.frames.last().cloned(), 5);
        assert_eq!(hot.len(), 2);
        assert_eq!((hot[0].frame.line, hot[0].samples), (2, 2));
    }
}
