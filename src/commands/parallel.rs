//! Reading Gunicorn logs and multi-origin streams on several threads with the report of one.
//! The `logs` command takes its inputs one after the other, in time order; this module parses
//! the next few of them ahead, each on a thread of its own (the file opened there, the lines
//! split, the records parsed and abort tracebacks read), and hands their events back through a
//! bounded channel in each input's own order. The timeline takes them exactly as it would from
//! one thread, so the report is identical; memory holds at most [`BATCHES`] batches of
//! [`BATCH`] events per input being read ahead. std threads and channels are enough for this
//! one pipeline: no pool or work stealing is needed when every job is a whole input.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use anyhow::Result;

use crate::analyze::timeline::read_abort;
use crate::commands::fleet::{self, FleetRead};
use crate::input::{self, LineCounts};
use crate::parse::detect::{LogKind, detect};
use crate::parse::envelope::Envelope;
use crate::parse::gunicorn::{GunicornLog, ParsedGunicornLog};
use crate::parse::requests;
use crate::report::Event;

/// Inputs larger than this are read by the command itself. Read ahead, an input runs at most
/// [`BATCHES`] × [`BATCH`] events ahead of the timeline: one whose events fit in that parses
/// while the previous input is read (1.6× on 2 cores for 50 origins in 2 GiB, bench/fleet), a
/// bigger one only stalls there, and its events, made on one core and read cold on another,
/// cost a fifth more CPU than on one thread (measured on 10 GB): no gain.
pub const MAX_AHEAD_BYTES: u64 = 64 << 20;
/// Events per message.
const BATCH: usize = 1024;
/// Messages an input read ahead may hold before its thread waits.
const BATCHES: usize = 64;

/// What a thread says of its input.
pub enum Msg {
    /// Not a Gunicorn log nor a multi-origin stream: the command reads it itself.
    NotMine,
    /// Events in the input's order, each with what its traceback said of the database.
    Events(Vec<(Event, Option<bool>)>),
    /// The end of a Gunicorn log: whether it was compressed, its lines, what it gave.
    Gunicorn(bool, LineCounts, ParsedGunicornLog),
    Fleet(bool, Envelope, Box<FleetRead>),
    Failed(anyhow::Error),
}

/// Inputs read ahead, by their index in the plan.
pub struct ReadAhead {
    pending: VecDeque<(usize, String)>,
    running: HashMap<usize, (Receiver<Msg>, JoinHandle<()>)>,
    threads: usize,
}

impl ReadAhead {
    /// `paths`: the plan's inputs in reading order (`None` for stdin, which only the command
    /// reads); `threads`: how many inputs are read at once.
    pub fn new(paths: Vec<Option<String>>, threads: usize) -> ReadAhead {
        let pending = paths
            .into_iter()
            .enumerate()
            .filter_map(|(i, p)| p.map(|p| (i, p)))
            .collect();
        let mut r = ReadAhead {
            pending,
            running: HashMap::new(),
            threads: threads.max(1),
        };
        r.start_more();
        r
    }

    fn start_more(&mut self) {
        while self.running.len() < self.threads {
            let Some((i, path)) = self.pending.pop_front() else {
                return;
            };
            let (tx, rx) = sync_channel(BATCHES);
            let handle = std::thread::spawn(move || read_one(&path, &tx));
            self.running.insert(i, (rx, handle));
        }
    }

    /// The messages of input `i`, if it is being read ahead; reading it to its end starts the
    /// next.
    pub fn take(&mut self, i: usize) -> Option<Taken<'_>> {
        let (rx, handle) = self.running.remove(&i)?;
        Some(Taken {
            rx,
            handle: Some(handle),
            owner: self,
        })
    }
}

/// One input's messages; dropping it (read or not) frees its thread's place.
pub struct Taken<'a> {
    rx: Receiver<Msg>,
    handle: Option<JoinHandle<()>>,
    owner: &'a mut ReadAhead,
}

impl Iterator for Taken<'_> {
    type Item = Msg;
    fn next(&mut self) -> Option<Msg> {
        self.rx.recv().ok()
    }
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        // Unblock the thread if it still sends, then wait for it.
        while self.rx.try_recv().is_ok() {}
        let (_, rx) = sync_channel(0);
        drop(std::mem::replace(&mut self.rx, rx));
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.owner.start_more();
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        // An error stopped the command: let every thread see its channel closed.
        for (_, (rx, handle)) in self.running.drain() {
            drop(rx);
            let _ = handle.join();
        }
    }
}

/// Opens, tells and reads one input on this thread.
fn read_one(path: &str, tx: &SyncSender<Msg>) {
    let result = (|| -> Result<Option<Msg>> {
        let opened = input::open(path, None)?;
        let compressed = opened.compressed;
        let mut batch: Vec<(Event, Option<bool>)> = Vec::with_capacity(BATCH);
        let mut closed = false;
        let mut sink = |mut e: Event| {
            if closed {
                return;
            }
            let database = read_abort(&mut e);
            batch.push((e, database));
            if batch.len() == BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                closed = tx.send(Msg::Events(full)).is_err();
            }
        };
        if crate::parse::watch::looks_like_watch(opened.head()) {
            return Ok(Some(Msg::NotMine));
        }
        if let Some(env) = fleet::envelope_of(opened.head()) {
            let read = fleet::read(
                opened,
                env,
                crate::analyze::kernel_join::MAX_OOM_KILLS,
                &mut sink,
            )?;
            if !batch.is_empty() {
                let _ = tx.send(Msg::Events(batch));
            }
            return Ok(Some(Msg::Fleet(compressed, env, Box::new(read))));
        }
        // Access or router lines mixed into a Gunicorn log feed the endpoint statistics as they
        // come: such a log is read by the command itself.
        if detect(opened.head()) != LogKind::Gunicorn || requests::some_in(opened.head()) {
            return Ok(Some(Msg::NotMine));
        }
        let mut log = GunicornLog::new(path);
        let counts = opened.for_each_line(|line| log.push(line, &mut sink))?;
        let parsed = log.finish(&mut sink);
        if !batch.is_empty() {
            let _ = tx.send(Msg::Events(batch));
        }
        Ok(Some(Msg::Gunicorn(compressed, counts, parsed)))
    })();
    let last = match result {
        Ok(Some(m)) => m,
        Ok(None) => return,
        Err(e) => Msg::Failed(e),
    };
    let _ = tx.send(last);
}

/// Threads for `--jobs`, or one per core.
pub fn threads(jobs: Option<u16>) -> usize {
    jobs.map(usize::from).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}
