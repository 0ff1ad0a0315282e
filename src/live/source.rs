//! Source lines of the application's frames, read from the files the target runs (through
//! `/proc/PID/root`, so a worker in a container is read from its own filesystem). py-spy gives
//! file and line only; the line of code makes a call site readable (`requests.get(url)`). The
//! paths come from the target, so a file is read only if the target's own user could read it
//! ([`trust::read_as`]): root does not print a line of a file the target may not see.

use std::collections::HashMap;
use std::path::Path;

use super::procfs;
use super::trust::{self, Credentials};
use crate::report::Frame;

/// Files read once per run; a missing or unreadable file is remembered as such.
#[derive(Default)]
pub struct SourceLines {
    files: HashMap<String, Option<Vec<String>>>,
    /// Each target's credentials; a target that exited reads as anyone would.
    readers: HashMap<u32, Credentials>,
}

/// Files larger than this are not read (generated code, bundles).
const MAX_FILE_BYTES: u64 = 4 << 20;

impl SourceLines {
    /// Fills `code` of the frames `wanted` says, with their line as the target `pid` sees it.
    pub fn annotate(&mut self, pid: u32, frames: &mut [Frame], wanted: impl Fn(&Frame) -> bool) {
        for frame in frames.iter_mut() {
            if frame.code.is_some() || frame.line == 0 || !wanted(frame) {
                continue;
            }
            frame.code = self.line(pid, &frame.file, frame.line);
        }
    }

    fn line(&mut self, pid: u32, file: &str, line: u32) -> Option<String> {
        let reader = self
            .readers
            .entry(pid)
            .or_insert_with(|| Credentials::of(pid).unwrap_or_else(Credentials::anyone));
        let lines = self
            .files
            .entry(file.to_string())
            .or_insert_with(|| read_lines(pid, reader, file));
        let text = lines
            .as_ref()?
            .get(usize::try_from(line).ok()?.checked_sub(1)?)?;
        let text = text.trim();
        (!text.is_empty()).then(|| text.to_string())
    }
}

fn read_lines(pid: u32, reader: &Credentials, file: &str) -> Option<Vec<String>> {
    let path = Path::new(file);
    if !path.is_absolute() || !file.ends_with(".py") {
        return None;
    }
    let bytes = trust::read_as(
        &procfs::path_in(pid, Path::new("/")),
        path,
        reader,
        MAX_FILE_BYTES,
    )
    .or_else(|| trust::read_as(Path::new("/"), path, reader, MAX_FILE_BYTES))?;
    Some(
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_string)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_line_of_our_own_file_and_skips_the_rest() {
        let me = std::process::id();
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/app/wtapp/views.py");
        let text = std::fs::read_to_string(file).unwrap();
        let (n, expected) = text
            .lines()
            .enumerate()
            .find(|(_, l)| l.contains("requests.get("))
            .unwrap();
        let mut frames = vec![
            Frame {
                file: file.into(),
                line: u32::try_from(n + 1).unwrap(),
                function: "upstream_api_view".into(),
                code: None,
            },
            Frame {
                file: "/nonexistent/x.py".into(),
                line: 3,
                function: "f".into(),
                code: None,
            },
        ];
        let mut lines = SourceLines::default();
        lines.annotate(me, &mut frames, |_| true);
        assert_eq!(frames[0].code.as_deref(), Some(expected.trim()));
        assert_eq!(frames[1].code, None);
    }
}
