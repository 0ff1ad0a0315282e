//! Python traceback text → frames. Fed one line at a time, because in a log a traceback is the
//! run of lines after an `ERROR` record; chained tracebacks ("During handling of the above
//! exception ...") become separate blocks.

use crate::report::Frame;

/// Frames kept per traceback block; deeper stacks keep the outermost and innermost halves.
const MAX_FRAMES: usize = 256;

#[derive(Debug, Default, Clone)]
pub struct Traceback {
    /// Outermost first.
    pub frames: Vec<Frame>,
    /// The final line, e.g. `SystemExit: 1`.
    pub exception: Option<String>,
}

#[derive(Debug, Default)]
pub struct TracebackBuilder {
    blocks: Vec<Traceback>,
    in_frames: bool,
}

impl TracebackBuilder {
    /// Takes one continuation line of a log record.
    pub fn push_line(&mut self, line: &str) {
        let trimmed = line.trim_start();
        if trimmed.starts_with("Traceback (most recent call last)") {
            self.blocks.push(Traceback::default());
            self.in_frames = true;
            return;
        }
        let Some(block) = self.blocks.last_mut() else {
            return;
        };
        if let Some(rest) = trimmed.strip_prefix("File \"") {
            if let Some(frame) = parse_frame_line(rest) {
                if block.frames.len() >= MAX_FRAMES {
                    block.frames.remove(MAX_FRAMES / 2);
                }
                block.frames.push(frame);
                self.in_frames = true;
            }
            return;
        }
        let indent = line.len() - trimmed.len();
        if self.in_frames && indent >= 4 {
            // The source line under a frame; skip 3.11+'s caret markers and repeats.
            let is_marker = trimmed.chars().all(|c| matches!(c, '^' | '~' | ' '));
            if !is_marker
                && !trimmed.starts_with("[Previous line repeated")
                && let Some(frame) = block.frames.last_mut()
                && frame.code.is_none()
            {
                frame.code = Some(trimmed.trim_end().to_string());
            }
            return;
        }
        if indent == 0 && !trimmed.is_empty() && block.exception.is_none() && self.in_frames {
            if trimmed.starts_with("During handling of the above exception")
                || trimmed.starts_with("The above exception was the direct cause")
            {
                return;
            }
            block.exception = Some(trimmed.trim_end().to_string());
            self.in_frames = false;
        }
    }

    /// The traceback that matters: the block that went through Gunicorn's abort handler if
    /// any (that is where the worker was when the master's SIGABRT arrived), else the last.
    pub fn finish(mut self) -> Option<Traceback> {
        let aborted = self.blocks.iter().rposition(|b| {
            b.frames
                .iter()
                .any(|f| f.function == "handle_abort" && f.file.contains("gunicorn"))
        });
        match aborted {
            Some(i) => Some(self.blocks.swap_remove(i)),
            None => self.blocks.pop(),
        }
    }
}

/// `/path/x.py", line 42, in func` (the part after `File "`).
fn parse_frame_line(rest: &str) -> Option<Frame> {
    let (file, rest) = rest.split_once("\", line ")?;
    let (line, rest) = match rest.split_once(", in ") {
        Some((line, func)) => (line, func),
        None => (rest, "?"),
    };
    Some(Frame {
        file: file.to_string(),
        line: line.trim().parse().ok()?,
        function: rest.trim().to_string(),
        code: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_frames_code_and_exception() {
        let text = "Traceback (most recent call last):\n  File \"/app/views.py\", line 12, in cpu\n    n = spin()\n        ^^^^^^\n  File \"/venv/lib/python3.11/site-packages/gunicorn/workers/base.py\", line 204, in handle_abort\n    sys.exit(1)\nSystemExit: 1";
        let mut b = TracebackBuilder::default();
        text.lines().for_each(|l| b.push_line(l));
        let tb = b.finish().unwrap();
        assert_eq!(tb.frames.len(), 2);
        assert_eq!(tb.frames[0].code.as_deref(), Some("n = spin()"));
        assert_eq!(tb.frames[1].function, "handle_abort");
        assert_eq!(tb.exception.as_deref(), Some("SystemExit: 1"));
    }

    #[test]
    fn chained_picks_block_with_abort() {
        let text = "Traceback (most recent call last):\n  File \"/a.py\", line 1, in f\n    x()\n  File \"/v/gunicorn/workers/base.py\", line 2, in handle_abort\n    sys.exit(1)\nSystemExit: 1\n\nDuring handling of the above exception, another exception occurred:\n\nTraceback (most recent call last):\n  File \"/b.py\", line 3, in g\n    y()\nValueError: boom";
        let mut b = TracebackBuilder::default();
        text.lines().for_each(|l| b.push_line(l));
        let tb = b.finish().unwrap();
        assert_eq!(tb.frames[0].file, "/a.py");
    }
}
