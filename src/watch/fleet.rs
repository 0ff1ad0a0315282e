//! A master's workers and their heartbeats, read from /proc without stopping anything: the
//! children of the master (`/proc/PID/task/*/children`, else a process scan), and for each the
//! age of its own heartbeat file.
//!
//! Which heartbeat file is a worker's own is decided anew on every read (the facts, seen
//! on Gunicorn 20.1 and 27): a freshly forked worker briefly holds its siblings' files too
//! (inherited from the master), and fd numbers are reused, so nothing is remembered by fd. A
//! worker holding one file owns it; a worker holding several owns the one that is no other
//! worker's only file; otherwise it is left out of this read.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use crate::live::procfs::{self, Heartbeat};

/// A worker's own heartbeat file, as read now.
#[derive(Debug, Clone, PartialEq)]
pub struct Beat {
    pub inode: u64,
    /// Its ctime: the worker's last notify (only the ctime is usable: 20.1 flips the file mode,
    /// 27 writes monotonic values into it, so its mtime reads as 1970).
    pub changed: SystemTime,
    /// Seconds since then.
    pub age: f64,
}

/// The master's children, remembered between reads only to avoid asking again whether a pid
/// runs Python; forgotten as soon as they are gone, so memory follows the live workers.
#[derive(Debug, Default)]
pub struct Fleet {
    python: HashMap<u32, bool>,
    /// Distinct worker pids seen so far.
    pub seen: u64,
}

impl Fleet {
    /// The master's Python children now, in pid order.
    pub fn workers(&mut self, master: u32) -> Vec<u32> {
        let children = procfs::task_children(master).unwrap_or_else(|| procfs::children(master));
        self.python.retain(|pid, _| children.contains(pid));
        let mut out = Vec::new();
        for pid in children {
            let python = match self.python.get(&pid) {
                Some(known) => *known,
                None => {
                    let python = procfs::is_python(pid).unwrap_or(false);
                    self.python.insert(pid, python);
                    self.seen += u64::from(python);
                    python
                }
            };
            if python {
                out.push(pid);
            }
        }
        out
    }
}

/// Each worker's own heartbeat, read now (a worker whose own file cannot be told apart, or
/// whose fds cannot be read, is left out).
pub fn heartbeats(workers: &[u32], now: SystemTime) -> BTreeMap<u32, Beat> {
    let files: BTreeMap<u32, Vec<(u64, Heartbeat)>> = workers
        .iter()
        .filter_map(|pid| Some((*pid, procfs::heartbeat_files(*pid).ok()?)))
        .collect();
    let held: BTreeMap<u32, Vec<u64>> = files
        .iter()
        .map(|(pid, f)| (*pid, f.iter().map(|(inode, _)| *inode).collect()))
        .collect();
    let owned = own_files(&held);
    owned
        .into_iter()
        .filter_map(|(pid, inode)| {
            let (_, h) = files.get(&pid)?.iter().find(|(i, _)| *i == inode)?;
            Some((
                pid,
                Beat {
                    inode,
                    changed: h.changed,
                    age: h.age(now),
                },
            ))
        })
        .collect()
}

/// Which inode is each worker's own, from the heartbeat inodes each holds.
pub fn own_files(held: &BTreeMap<u32, Vec<u64>>) -> BTreeMap<u32, u64> {
    let sole: Vec<(u32, u64)> = held
        .iter()
        .filter_map(|(pid, inodes)| match inodes.as_slice() {
            [only] => Some((*pid, *only)),
            _ => None,
        })
        .collect();
    held.iter()
        .filter_map(|(pid, inodes)| {
            let mine: Vec<u64> = inodes
                .iter()
                .copied()
                .filter(|i| !sole.iter().any(|(other, o)| other != pid && o == i))
                .collect();
            match mine.as_slice() {
                [only] => Some((*pid, *only)),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_worker_holding_its_siblings_files_owns_the_one_no_one_else_holds_alone() {
        let held: BTreeMap<u32, Vec<u64>> =
            [(10, vec![100]), (11, vec![101]), (12, vec![100, 101, 102])]
                .into_iter()
                .collect();
        let own = own_files(&held);
        assert_eq!(own.get(&10), Some(&100));
        assert_eq!(own.get(&11), Some(&101));
        assert_eq!(own.get(&12), Some(&102));
        // Two fresh workers each holding both unknown files: neither can be told yet.
        let held: BTreeMap<u32, Vec<u64>> = [(20, vec![200, 201]), (21, vec![200, 201])]
            .into_iter()
            .collect();
        assert!(own_files(&held).is_empty());
    }
}
