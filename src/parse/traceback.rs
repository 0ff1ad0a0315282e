//! Python traceback text → frames. In a log a traceback is the run of lines after an `ERROR`
//! record: [`TracebackBuilder`] copies them as raw text (no per-line work on the hot path) and
//! [`parse`] reads the text once, borrowing from it, when the record ends. Chained tracebacks
//! ("During handling of the above exception ...") are separate blocks.

use memchr::memmem;

/// Frames kept per traceback block; deeper stacks keep the outermost and innermost halves.
const MAX_FRAMES: usize = 256;
/// Bytes of traceback text kept per record; a longer one keeps its start and its end.
const MAX_TEXT: usize = 256 << 10;
/// Bytes of a source line or an exception line kept: they end up in titles and evidence.
pub const MAX_SHOWN: usize = 300;

/// One frame, borrowed from the traceback text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRef<'a> {
    pub file: &'a str,
    pub line: u32,
    pub function: &'a str,
    /// The source line Python printed under the frame.
    pub code: Option<&'a str>,
}

/// One traceback block, borrowed from its text.
#[derive(Debug, Default, Clone)]
pub struct Traceback<'a> {
    /// Outermost first.
    pub frames: Vec<FrameRef<'a>>,
    /// The final line, e.g. `SystemExit: 1`.
    pub exception: Option<&'a str>,
}

/// Collects a record's continuation lines as raw text.
#[derive(Debug, Default)]
pub struct TracebackBuilder {
    text: Vec<u8>,
}

impl TracebackBuilder {
    /// Takes one continuation line of a log record.
    pub fn push_bytes(&mut self, line: &[u8]) {
        // One huge line (an exception's repr, container noise) keeps its start only.
        let line = &line[..line.len().min(MAX_TEXT / 4)];
        if self.text.len() + line.len() + 1 > MAX_TEXT {
            // Keep the head (the outermost frames) and the newest quarter (the innermost
            // frames come last); drop whole lines between them.
            let newline_before = |text: &[u8], at: usize| {
                text[..at]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |p| p + 1)
            };
            let len = self.text.len();
            let head = newline_before(&self.text, (MAX_TEXT / 2).min(len));
            let tail = newline_before(&self.text, len.saturating_sub(MAX_TEXT / 4)).max(head);
            self.text.drain(head..tail);
        }
        self.text.extend_from_slice(line);
        self.text.push(b'\n');
    }

    /// The collected text, and how many of its lines had invalid UTF-8 (replaced by U+FFFD).
    pub fn into_text(self) -> (String, u64) {
        match String::from_utf8(self.text) {
            Ok(s) => (s, 0),
            Err(e) => {
                let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
                let lossy = text.lines().filter(|l| l.contains('\u{FFFD}')).count();
                (text, lossy as u64)
            }
        }
    }
}

/// Parses traceback text. Returns the block that matters: the one that went through
/// Gunicorn's abort handler if any (that is where the worker was when the master's SIGABRT
/// arrived), else the last one.
pub fn parse(text: &str) -> Option<Traceback<'_>> {
    let mut blocks: Vec<Traceback<'_>> = Vec::new();
    let mut in_frames = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("Traceback (most recent call last)") {
            blocks.push(Traceback::default());
            in_frames = true;
            continue;
        }
        let Some(block) = blocks.last_mut() else {
            continue;
        };
        if let Some(rest) = trimmed.strip_prefix("File \"") {
            if let Some(frame) = parse_frame_line(rest) {
                if block.frames.len() >= MAX_FRAMES {
                    block.frames.remove(MAX_FRAMES / 2);
                }
                block.frames.push(frame);
                in_frames = true;
            }
            continue;
        }
        let indent = line.len() - trimmed.len();
        if in_frames && indent >= 4 {
            // The source line under a frame; skip 3.11+'s caret markers and repeats.
            let is_marker = trimmed.bytes().all(|c| matches!(c, b'^' | b'~' | b' '));
            if !is_marker
                && !trimmed.starts_with("[Previous line repeated")
                && let Some(frame) = block.frames.last_mut()
                && frame.code.is_none()
            {
                frame.code = Some(super::cap(trimmed.trim_end(), MAX_SHOWN));
            }
            continue;
        }
        if indent == 0 && !trimmed.is_empty() && block.exception.is_none() && in_frames {
            if trimmed.starts_with("During handling of the above exception")
                || trimmed.starts_with("The above exception was the direct cause")
            {
                continue;
            }
            block.exception = Some(super::cap(trimmed.trim_end(), MAX_SHOWN));
            in_frames = false;
        }
    }
    let aborted = blocks.iter().rposition(|b| {
        b.frames
            .iter()
            .any(|f| f.function == "handle_abort" && f.file.contains("gunicorn"))
    });
    match aborted {
        Some(i) => Some(blocks.swap_remove(i)),
        None => blocks.pop(),
    }
}

/// `/path/x.py", line 42, in func` (the part after `File "`).
fn parse_frame_line(rest: &str) -> Option<FrameRef<'_>> {
    let at = memmem::find(rest.as_bytes(), b"\", line ")?;
    let file = &rest[..at];
    let rest = &rest[at + 8..];
    let (line, function) = match memmem::find(rest.as_bytes(), b", in ") {
        Some(at) => (&rest[..at], rest[at + 5..].trim()),
        None => (rest, "?"),
    };
    Some(FrameRef {
        file,
        line: line.trim().parse().ok()?,
        function,
        code: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_longer_than_the_cap_after_a_short_one_is_cut_not_a_panic() {
        let mut b = TracebackBuilder::default();
        b.push_bytes(b"Traceback (most recent call last):");
        b.push_bytes(&vec![b'x'; 300 << 10]);
        for _ in 0..3 {
            b.push_bytes(&vec![b'y'; 300 << 10]);
        }
        b.push_bytes(b"SystemExit: 1");
        let (text, _) = b.into_text();
        assert!(text.len() <= MAX_TEXT + MAX_TEXT / 4, "{}", text.len());
        assert!(text.starts_with("Traceback"));
        assert!(text.ends_with("SystemExit: 1\n"));
    }

    #[test]
    fn reads_frames_code_and_exception() {
        let text = "Traceback (most recent call last):\n  File \"/app/views.py\", line 12, in cpu\n    n = spin()\n        ^^^^^^\n  File \"/venv/lib/python3.11/site-packages/gunicorn/workers/base.py\", line 204, in handle_abort\n    sys.exit(1)\nSystemExit: 1";
        let tb = parse(text).unwrap();
        assert_eq!(tb.frames.len(), 2);
        assert_eq!(tb.frames[0].code, Some("n = spin()"));
        assert_eq!(tb.frames[1].function, "handle_abort");
        assert_eq!(tb.exception, Some("SystemExit: 1"));
    }

    #[test]
    fn chained_picks_block_with_abort() {
        let text = "Traceback (most recent call last):\n  File \"/a.py\", line 1, in f\n    x()\n  File \"/v/gunicorn/workers/base.py\", line 2, in handle_abort\n    sys.exit(1)\nSystemExit: 1\n\nDuring handling of the above exception, another exception occurred:\n\nTraceback (most recent call last):\n  File \"/b.py\", line 3, in g\n    y()\nValueError: boom";
        let tb = parse(text).unwrap();
        assert_eq!(tb.frames[0].file, "/a.py");
    }

    #[test]
    fn overlong_traceback_keeps_head_and_innermost_tail() {
        let mut b = TracebackBuilder::default();
        b.push_bytes(b"Traceback (most recent call last):");
        for i in 0..20_000 {
            b.push_bytes(format!("  File \"/app/f{i}.py\", line {i}, in f{i}").as_bytes());
        }
        b.push_bytes(b"RecursionError: deep");
        let (text, lossy) = b.into_text();
        assert_eq!(lossy, 0);
        assert!(text.len() <= MAX_TEXT);
        let tb = parse(&text).unwrap();
        assert_eq!(tb.frames[0].function, "f0");
        assert_eq!(tb.frames.last().unwrap().function, "f19999");
        assert_eq!(tb.exception, Some("RecursionError: deep"));
    }
}
