//! When to color and how: `--color auto|always|never` with the conventions of
//! <https://no-color.org> and <https://bixense.com/clicolors/> (as anstream reads them), and the
//! few SGR styles the table uses for severities, causes and the timeline's series.

use crate::report::{Cause, Severity};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// Color when writing to a terminal, unless NO_COLOR is set (CLICOLOR_FORCE forces it)
    #[default]
    Auto,
    /// Always color the table, even through a pipe or into a file
    Always,
    /// Never color
    Never,
}

impl ColorChoice {
    /// Whether to color output going to a terminal (`to_terminal`) or not, reading the
    /// environment through `var`. Under `auto`: a non-empty `NO_COLOR` wins, then a
    /// `CLICOLOR_FORCE` other than `0`, then `CLICOLOR=0`; else color only a terminal whose
    /// `TERM` is not `dumb`.
    pub fn resolve(self, to_terminal: bool, var: impl Fn(&str) -> Option<String>) -> bool {
        let set = |name: &str| var(name).is_some_and(|v| !v.is_empty());
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                if set("NO_COLOR") {
                    false
                } else if var("CLICOLOR_FORCE").is_some_and(|v| !v.is_empty() && v != "0") {
                    true
                } else if var("CLICOLOR").as_deref() == Some("0") {
                    false
                } else {
                    to_terminal && var("TERM").as_deref() != Some("dumb")
                }
            }
        }
    }
}

/// Whether the terminal can show Unicode block characters: not under `TERM=dumb`, and only in a
/// UTF-8 locale (the first of LC_ALL, LC_CTYPE, LANG that is set; none set is the C locale).
pub fn unicode_terminal(var: impl Fn(&str) -> Option<String>) -> bool {
    if var("TERM").as_deref() == Some("dumb") {
        return false;
    }
    let locale = ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .find_map(|name| var(name).filter(|v| !v.is_empty()));
    locale.is_some_and(|l| {
        let l = l.to_ascii_lowercase();
        l.contains("utf-8") || l.contains("utf8")
    })
}

/// SGR styles, or nothing when color is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Palette {
    pub enabled: bool,
}

/// One SGR parameter string (`1;31`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style(pub &'static str);

impl Style {
    pub const BOLD: Style = Style("1");
    pub const DIM: Style = Style("2");
    pub const RED_BOLD: Style = Style("1;31");
    pub const RED: Style = Style("31");
    pub const YELLOW: Style = Style("33");
    pub const BLUE: Style = Style("34");
    pub const MAGENTA: Style = Style("35");
    pub const CYAN: Style = Style("36");
    pub const GREEN: Style = Style("32");
}

impl Palette {
    /// `text` in `style` (text that is already safe to print: see `neutralize_controls`).
    pub fn paint(&self, text: &str, style: Style) -> String {
        if self.enabled && !text.is_empty() {
            format!("\x1b[{}m{text}\x1b[0m", style.0)
        } else {
            text.to_string()
        }
    }

    pub fn severity(&self, s: Severity) -> Style {
        severity_style(s)
    }

    pub fn cause(&self, c: Cause) -> Style {
        cause_style(c)
    }
}

/// Critical and high in red, medium in yellow, low in cyan, info dimmed.
pub fn severity_style(s: Severity) -> Style {
    match s {
        Severity::Critical => Style::RED_BOLD,
        Severity::High => Style::RED,
        Severity::Medium => Style::YELLOW,
        Severity::Low => Style::CYAN,
        Severity::Info => Style::DIM,
    }
}

/// Causes by where the fix is: the database in magenta, a peer (an outbound call, a client, the
/// proxy, a request hung on I/O) in cyan, the process, the host or a slow endpoint in yellow,
/// `unknown` dimmed.
pub fn cause_style(c: Cause) -> Style {
    match c {
        Cause::NPlusOne | Cause::SlowQuery | Cause::LockWait | Cause::Deadlock => Style::MAGENTA,
        Cause::MissingApiTimeout | Cause::SlowClient | Cause::ProxyTimeout | Cause::HungRequest => {
            Style::CYAN
        }
        Cause::CpuBound
        | Cause::Memory
        | Cause::BootTimeout
        | Cause::HostStall
        | Cause::SlowEndpoint => Style::YELLOW,
        Cause::Unknown => Style::DIM,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn auto_follows_the_conventions() {
        let auto = ColorChoice::Auto;
        assert!(auto.resolve(true, env(&[("TERM", "xterm")])));
        assert!(!auto.resolve(false, env(&[])));
        assert!(!auto.resolve(true, env(&[("NO_COLOR", "1")])));
        assert!(auto.resolve(true, env(&[("NO_COLOR", "")])));
        assert!(auto.resolve(false, env(&[("CLICOLOR_FORCE", "1")])));
        assert!(!auto.resolve(false, env(&[("CLICOLOR_FORCE", "0")])));
        assert!(!auto.resolve(true, env(&[("NO_COLOR", "1"), ("CLICOLOR_FORCE", "1")])));
        assert!(!auto.resolve(true, env(&[("CLICOLOR", "0")])));
        assert!(!auto.resolve(true, env(&[("TERM", "dumb")])));
        assert!(ColorChoice::Always.resolve(false, env(&[("NO_COLOR", "1")])));
        assert!(!ColorChoice::Never.resolve(true, env(&[("CLICOLOR_FORCE", "1")])));
    }

    #[test]
    fn unicode_needs_a_utf8_locale_and_a_real_terminal() {
        assert!(unicode_terminal(env(&[("LANG", "en_US.UTF-8")])));
        assert!(unicode_terminal(env(&[
            ("LC_ALL", "C.utf8"),
            ("LANG", "C")
        ])));
        assert!(!unicode_terminal(env(&[
            ("LC_ALL", "C"),
            ("LANG", "C.UTF-8")
        ])));
        assert!(!unicode_terminal(env(&[])));
        assert!(!unicode_terminal(env(&[
            ("LANG", "C.UTF-8"),
            ("TERM", "dumb")
        ])));
    }
}
