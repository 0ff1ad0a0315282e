//! The order inputs are read in, decided before any is read: each file is opened just long
//! enough to sniff its first timestamp and closed again (a thousand rotated logs never hold a
//! thousand descriptors), then reopened one at a time. An input whose content is the same as
//! an earlier one's (the same file twice, through a link, or a copy) is read once.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::os::unix::fs::MetadataExt;

use chrono::{DateTime, FixedOffset};
use indicatif::ProgressBar;

use super::{Input, InputError, open};
use crate::parse::timestamp;

/// One input to read, in order.
pub struct Planned {
    pub path: String,
    /// The first timestamp in its first lines (none for stdin).
    pub first: Option<DateTime<FixedOffset>>,
    /// stdin and pipes cannot be reopened: they stay open from the sniff.
    stdin: Option<Input>,
}

impl Planned {
    pub fn open(self, progress: Option<ProgressBar>) -> Result<Input, InputError> {
        match self.stdin {
            Some(input) => Ok(input),
            None => open(&self.path, progress),
        }
    }
}

/// What to read, and what was left out as a duplicate: (left out, same content as).
pub struct Plan {
    pub inputs: Vec<Planned>,
    pub duplicates: Vec<(String, String)>,
}

/// Plans reading `paths`, in the order given, duplicates left out.
pub fn plan(paths: &[String]) -> Result<Plan, InputError> {
    struct Sniffed {
        path: String,
        first: Option<DateTime<FixedOffset>>,
        head_hash: u64,
        file: Option<(u64, u64)>,
        stdin: Option<Input>,
    }
    let mut sniffed = Vec::with_capacity(paths.len());
    for path in paths {
        let input = open(path, None)?;
        let mut h = DefaultHasher::new();
        input.head().hash(&mut h);
        let meta = (path != "-")
            .then(|| std::fs::metadata(path).ok())
            .flatten();
        let file = meta.as_ref().map(|m| (m.dev(), m.ino()));
        // A pipe (`<(dmesg -T)`, a FIFO) cannot be read twice: it stays open, like stdin.
        let reopenable = meta.as_ref().is_some_and(|m| m.is_file());
        sniffed.push(Sniffed {
            path: path.clone(),
            first: (path != "-")
                .then(|| timestamp::first_in(input.head()))
                .flatten(),
            head_hash: h.finish(),
            file,
            stdin: (!reopenable).then_some(input),
        });
    }

    // Same file (device and inode), or the same first 8 KiB and then the same whole content.
    let mut duplicates = Vec::new();
    let mut keep = vec![true; sniffed.len()];
    let mut by_file: HashMap<(u64, u64), usize> = HashMap::new();
    let mut by_head: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, s) in sniffed.iter().enumerate() {
        if let Some(id) = s.file {
            if let Some(&first) = by_file.get(&id) {
                keep[i] = false;
                duplicates.push((s.path.clone(), sniffed[first].path.clone()));
                continue;
            }
            by_file.insert(id, i);
        }
        if s.stdin.is_none() {
            by_head.entry(s.head_hash).or_default().push(i);
        }
    }
    for group in by_head.values().filter(|g| g.len() > 1) {
        let mut by_content: HashMap<u64, usize> = HashMap::new();
        for &i in group {
            let hash = open(&sniffed[i].path, None)?.content_hash()?;
            match by_content.get(&hash) {
                Some(&first) => {
                    keep[i] = false;
                    duplicates.push((sniffed[i].path.clone(), sniffed[first].path.clone()));
                }
                None => {
                    by_content.insert(hash, i);
                }
            }
        }
    }

    let inputs = sniffed
        .into_iter()
        .zip(keep)
        .filter(|(_, keep)| *keep)
        .map(|(s, _)| Planned {
            path: s.path,
            first: s.first,
            stdin: s.stdin,
        })
        .collect();
    Ok(Plan { inputs, duplicates })
}
