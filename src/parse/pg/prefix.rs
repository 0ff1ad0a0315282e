//! `log_line_prefix`: compiles the server's prefix string (`'%m [%p] %q%u@%d '`) into a matcher
//! that splits a stderr line into the prefix's fields and the rest, and guesses the prefix of a
//! log that does not say. Fixed-shape escapes (times, pids, SQLSTATEs) are read by shape; free
//! text (`%u %d %a %h %r %b %i`) runs to the next literal, backtracking when that is ambiguous.

use memchr::memmem;

use super::severity::{self, Severity};
use crate::parse::number::parse_u32;

/// One `%` escape of `log_line_prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// `%a`
    Application,
    /// `%u`
    User,
    /// `%d`
    Database,
    /// `%r` host(port)
    HostPort,
    /// `%h`
    Host,
    /// `%b`
    BackendType,
    /// `%p`
    Pid,
    /// `%P` parallel leader pid (may be empty)
    LeaderPid,
    /// `%t` time without milliseconds
    Time,
    /// `%m` time with milliseconds
    TimeMs,
    /// `%n` Unix epoch with milliseconds
    Epoch,
    /// `%i` command tag
    CommandTag,
    /// `%e` SQLSTATE
    SqlState,
    /// `%c` session id `hex(start).hex(pid)`
    SessionId,
    /// `%l` line number in the session
    LineNumber,
    /// `%s` session start
    SessionStart,
    /// `%v` virtual transaction id
    VirtualXid,
    /// `%x` transaction id
    Xid,
    /// `%Q` query id
    QueryId,
}

impl Escape {
    fn from_letter(c: u8) -> Option<Escape> {
        Some(match c {
            b'a' => Escape::Application,
            b'u' => Escape::User,
            b'd' => Escape::Database,
            b'r' => Escape::HostPort,
            b'h' => Escape::Host,
            b'b' => Escape::BackendType,
            b'p' => Escape::Pid,
            b'P' => Escape::LeaderPid,
            b't' => Escape::Time,
            b'm' => Escape::TimeMs,
            b'n' => Escape::Epoch,
            b'i' => Escape::CommandTag,
            b'e' => Escape::SqlState,
            b'c' => Escape::SessionId,
            b'l' => Escape::LineNumber,
            b's' => Escape::SessionStart,
            b'v' => Escape::VirtualXid,
            b'x' => Escape::Xid,
            b'Q' => Escape::QueryId,
            _ => return None,
        })
    }

    fn letter(self) -> char {
        match self {
            Escape::Application => 'a',
            Escape::User => 'u',
            Escape::Database => 'd',
            Escape::HostPort => 'r',
            Escape::Host => 'h',
            Escape::BackendType => 'b',
            Escape::Pid => 'p',
            Escape::LeaderPid => 'P',
            Escape::Time => 't',
            Escape::TimeMs => 'm',
            Escape::Epoch => 'n',
            Escape::CommandTag => 'i',
            Escape::SqlState => 'e',
            Escape::SessionId => 'c',
            Escape::LineNumber => 'l',
            Escape::SessionStart => 's',
            Escape::VirtualXid => 'v',
            Escape::Xid => 'x',
            Escape::QueryId => 'Q',
        }
    }

    /// Free text runs to whatever follows it; the rest have a shape.
    fn is_free_text(self) -> bool {
        matches!(
            self,
            Escape::Application
                | Escape::User
                | Escape::Database
                | Escape::HostPort
                | Escape::Host
                | Escape::BackendType
                | Escape::CommandTag
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(Vec<u8>),
    Field(Escape),
    /// `%q`: non-session processes stop printing here.
    SessionOnly,
}

/// A compiled `log_line_prefix`.
#[derive(Debug, Clone)]
pub struct Prefix {
    source: String,
    tokens: Vec<Token>,
}

/// Why a `--prefix` string cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PrefixError {
    #[error(
        "unknown escape %{0} in log_line_prefix; the escapes are %a %u %d %r %h %b %p %P %t %m %n %i %e %c %l %s %v %x %q %Q %%"
    )]
    UnknownEscape(char),
    #[error("log_line_prefix ends with a lone %")]
    TrailingPercent,
}

/// What a prefix said about one line. Byte slices point into the line.
#[derive(Debug, Default, Clone, Copy)]
pub struct PrefixFields<'a> {
    pub time: Option<&'a [u8]>,
    /// True when `time` is `%n` (epoch seconds).
    pub epoch: bool,
    pub pid: Option<u32>,
    pub user: Option<&'a [u8]>,
    pub database: Option<&'a [u8]>,
    pub application: Option<&'a [u8]>,
    pub sqlstate: Option<&'a [u8]>,
    /// True when the line stopped at `%q` (a background process).
    pub stopped_at_q: bool,
    /// Escapes the line gave a value to (detection prefers the prefix that reads more).
    pub matched: u8,
}

/// A line split by a prefix: its fields, severity and message.
#[derive(Debug, Clone, Copy)]
pub struct PrefixedLine<'a> {
    pub fields: PrefixFields<'a>,
    pub severity: Severity,
    /// SQLSTATE printed after the severity with `log_error_verbosity = verbose`.
    pub verbose_sqlstate: Option<&'a [u8]>,
    pub message: &'a [u8],
}

/// Prefixes seen in the wild, tried in turn when none is given: PostgreSQL's default, Debian's,
/// pgBadger's recommendation, RDS, Cloud SQL, Azure, and common hand-written ones.
pub const COMMON_PREFIXES: &[&str] = &[
    "%m [%p] ",
    "%m [%p] %q%u@%d ",
    "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
    "%t [%p]: [%l-1] user=%u,db=%d ",
    "%t [%p]: user=%u,db=%d,app=%a,client=%h ",
    "%m [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
    "%t:%r:%u@%d:[%p]:",
    "%m:%r:%u@%d:[%p]:",
    "%m [%p]: [%l-1] db=%d,user=%u ",
    "%t [%p-%l] %q%u@%d ",
    "%m [%p] %q[user=%u,db=%d,app=%a] ",
    // Heroku Postgres, after logplex's `[DATABASE] [N-M] ` (pgBadger's t/fixtures/logplex.gz;
    // pganalyze collector's input/system/heroku/http_syslog_parser_test.go)
    "sql_error_code = %e ",
    "sql_error_code = %e time_ms = \"%m\" pid=\"%p\" proc_start_time=\"%s\" session_id=\"%c\" vtid=\"%v\" tid=\"%x\" log_line=\"%l\" database=\"%d\" connection_source=\"%r\" user=\"%u\" application_name=\"%a\" ",
    "%t-%c-",
    "%m-%c-",
    "< %m >",
    "%t [%p] ",
    "%m %p ",
    "[%p] ",
    "%m ",
    "%t ",
    "",
];

impl Prefix {
    /// Compiles a `log_line_prefix` value. Padding (`%-10u`) is accepted and absorbed.
    pub fn compile(source: &str) -> Result<Prefix, PrefixError> {
        let b = source.as_bytes();
        let mut tokens = Vec::new();
        let mut literal = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] != b'%' {
                literal.push(b[i]);
                i += 1;
                continue;
            }
            i += 1;
            // padding: %-10u, %10u
            while i < b.len() && (b[i] == b'-' || b[i].is_ascii_digit()) {
                i += 1;
            }
            let Some(&c) = b.get(i) else {
                return Err(PrefixError::TrailingPercent);
            };
            i += 1;
            if c == b'%' {
                literal.push(b'%');
                continue;
            }
            if !literal.is_empty() {
                tokens.push(Token::Literal(std::mem::take(&mut literal)));
            }
            if c == b'q' {
                tokens.push(Token::SessionOnly);
            } else {
                let escape = Escape::from_letter(c).ok_or(PrefixError::UnknownEscape(c as char))?;
                tokens.push(Token::Field(escape));
            }
        }
        if !literal.is_empty() {
            tokens.push(Token::Literal(literal));
        }
        Ok(Prefix {
            source: source.to_string(),
            tokens,
        })
    }

    /// The prefix as the server's setting spells it.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True when a line's backend can be told: `%p` or `%c` (whose second half is the pid).
    pub fn has_pid(&self) -> bool {
        self.tokens.iter().any(|t| {
            matches!(
                t,
                Token::Field(Escape::Pid) | Token::Field(Escape::SessionId)
            )
        })
    }

    pub fn has_time(&self) -> bool {
        self.tokens.iter().any(|t| {
            matches!(
                t,
                Token::Field(Escape::Time)
                    | Token::Field(Escape::TimeMs)
                    | Token::Field(Escape::Epoch)
            )
        })
    }

    /// Splits `line` into prefix fields, severity and message; None when the line does not start
    /// with this prefix followed by a severity (`LOG:  `, `DETAIL:  `, ...).
    pub fn split<'a>(&self, line: &'a [u8]) -> Option<PrefixedLine<'a>> {
        let mut fields = PrefixFields::default();
        let mut budget = MATCH_BUDGET;
        let (severity, verbose_sqlstate, message) =
            match_tokens(&self.tokens, line, 0, &mut fields, &mut budget)?;
        Some(PrefixedLine {
            fields,
            severity,
            verbose_sqlstate,
            message,
        })
    }
}

type Tail<'a> = severity::SeveritySplit<'a>;

/// Longest value a free-text field (`%u %d %a %h ...`) may take.
const MAX_FREE_TEXT: usize = 512;
/// Token matches tried per line. A real line matches in a few dozen even with separators inside
/// its free-text fields; a line crafted to repeat the prefix's separators would otherwise make
/// the backtracking try every split of them (exponential in the free-text fields).
const MATCH_BUDGET: u32 = 512;

/// Matches `tokens` against `line[pos..]`, then a severity; fills `fields` on success. Gives up
/// (None) once `budget` tries are spent.
fn match_tokens<'a>(
    tokens: &[Token],
    line: &'a [u8],
    pos: usize,
    fields: &mut PrefixFields<'a>,
    budget: &mut u32,
) -> Option<Tail<'a>> {
    *budget = budget.checked_sub(1)?;
    let Some((first, rest)) = tokens.split_first() else {
        return severity::split(&line[pos..]);
    };
    match first {
        Token::Literal(lit) => {
            if line[pos..].starts_with(lit) {
                match_tokens(rest, line, pos + lit.len(), fields, budget)
            } else {
                None
            }
        }
        Token::SessionOnly => {
            let saved = *fields;
            if let Some(tail) = match_tokens(rest, line, pos, fields, budget) {
                return Some(tail);
            }
            *fields = saved;
            fields.stopped_at_q = true;
            severity::split(&line[pos..])
        }
        Token::Field(escape) if escape.is_free_text() => {
            let saved = *fields;
            // Candidate ends: each place where what follows can start.
            let mut from = pos;
            // The field's value ends within MAX_FREE_TEXT: look no further for its end.
            let window = &line[..line.len().min(pos + MAX_FREE_TEXT + 64)];
            loop {
                let end = next_candidate_end(rest, window, from)?;
                let value = &line[pos..end];
                set_field(fields, *escape, value);
                if let Some(tail) = match_tokens(rest, line, end, fields, budget) {
                    return Some(tail);
                }
                *fields = saved;
                if *budget == 0 || end >= line.len() || end - pos > MAX_FREE_TEXT {
                    return None;
                }
                from = end + 1;
            }
        }
        Token::Field(escape) => {
            let len = shaped_len(*escape, &line[pos..])?;
            set_field(fields, *escape, &line[pos..pos + len]);
            match_tokens(rest, line, pos + len, fields, budget)
        }
    }
}

/// The first position at or after `from` where the tokens after a free-text field could
/// begin: the next literal, or the severity when nothing follows.
fn next_candidate_end(rest: &[Token], line: &[u8], from: usize) -> Option<usize> {
    if from > line.len() {
        return None;
    }
    match rest.iter().find(|t| !matches!(t, Token::SessionOnly)) {
        Some(Token::Literal(lit)) => memmem::find(&line[from..], lit).map(|i| from + i),
        Some(Token::Field(_)) | Some(Token::SessionOnly) => Some(from),
        None => {
            (from..line.len().min(from + 1024)).find(|&p| severity::split(&line[p..]).is_some())
        }
    }
}

fn set_field<'a>(fields: &mut PrefixFields<'a>, escape: Escape, value: &'a [u8]) {
    fields.matched = fields.matched.saturating_add(1);
    let trimmed = value.trim_ascii();
    match escape {
        Escape::TimeMs | Escape::Time if fields.time.is_none() || fields.epoch => {
            fields.time = Some(trimmed);
            fields.epoch = false;
        }
        Escape::Epoch if fields.time.is_none() => {
            fields.time = Some(trimmed);
            fields.epoch = true;
        }
        Escape::Pid => fields.pid = parse_u32(trimmed),
        Escape::SessionId => {
            if fields.pid.is_none()
                && let Some(dot) = memchr::memchr(b'.', trimmed)
            {
                fields.pid = parse_hex_u32(&trimmed[dot + 1..]);
            }
        }
        Escape::User => fields.user = Some(trimmed),
        Escape::Database => fields.database = Some(trimmed),
        Escape::Application => fields.application = Some(trimmed),
        Escape::SqlState => fields.sqlstate = Some(trimmed),
        _ => {}
    }
}

fn parse_hex_u32(b: &[u8]) -> Option<u32> {
    if b.is_empty() || b.len() > 8 {
        return None;
    }
    u32::from_str_radix(std::str::from_utf8(b).ok()?, 16).ok()
}

/// The length of a fixed-shape escape's value at the start of `b` (padding spaces included).
fn shaped_len(escape: Escape, b: &[u8]) -> Option<usize> {
    let lead = b.iter().take_while(|&&c| c == b' ').count();
    let s = &b[lead..];
    let len = match escape {
        Escape::Time | Escape::TimeMs | Escape::SessionStart => timestamp_len(s)?,
        Escape::Epoch => {
            let int = digits(s);
            if int == 0 {
                return None;
            }
            if s.get(int) == Some(&b'.') {
                int + 1 + digits(&s[int + 1..])
            } else {
                int
            }
        }
        Escape::Pid | Escape::LineNumber | Escape::Xid => {
            let n = digits(s);
            if n == 0 {
                return None;
            }
            n
        }
        Escape::LeaderPid => digits(s),
        Escape::QueryId => {
            usize::from(s.first() == Some(&b'-'))
                + digits(&s[usize::from(s.first() == Some(&b'-'))..])
        }
        Escape::SqlState => {
            if s.len() >= 5
                && s[..5]
                    .iter()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            {
                5
            } else {
                0
            }
        }
        Escape::SessionId => s
            .iter()
            .take_while(|c| c.is_ascii_hexdigit() || **c == b'.')
            .count(),
        Escape::VirtualXid => s
            .iter()
            .take_while(|c| c.is_ascii_digit() || **c == b'/')
            .count(),
        _ => return None,
    };
    // An empty value (`vxid= xid=0`) leaves the spaces to the literal after it.
    Some(if len == 0 { 0 } else { lead + len })
}

fn digits(b: &[u8]) -> usize {
    b.iter().take_while(|c| c.is_ascii_digit()).count()
}

/// `YYYY-MM-DD HH:MM:SS[.fff][ ZONE]` where ZONE is an abbreviation (`UTC`, `CEST`) or a
/// numeric offset (`+03`, `-0530`).
pub fn timestamp_len(b: &[u8]) -> Option<usize> {
    if b.len() < 19 {
        return None;
    }
    let shape = b"dddd-dd-dd dd:dd:dd";
    for (i, &want) in shape.iter().enumerate() {
        let c = b[i];
        let ok = if want == b'd' {
            c.is_ascii_digit()
        } else if i == 10 {
            c == b' ' || c == b'T'
        } else {
            c == want
        };
        if !ok {
            return None;
        }
    }
    let mut n = 19;
    if b.get(n) == Some(&b'.') {
        let d = digits(&b[n + 1..]);
        if d > 0 {
            n += 1 + d;
        }
    }
    if b.get(n) == Some(&b' ') {
        let z = &b[n + 1..];
        let alpha = z.iter().take_while(|c| c.is_ascii_uppercase()).count();
        if (1..=6).contains(&alpha) && z.get(alpha).is_none_or(|c| !c.is_ascii_alphanumeric()) {
            n += 1 + alpha;
        } else if matches!(z.first(), Some(b'+' | b'-')) {
            let d = z[1..]
                .iter()
                .take_while(|c| c.is_ascii_digit() || **c == b':')
                .count();
            if d >= 2 {
                n += 2 + d;
            }
        }
    }
    Some(n)
}

/// Inferred prefixes tried per log (distinct guesses from different lines).
const MAX_INFERRED: usize = 6;

/// What prefix detection found: the prefix that reads the most lines, or, when none reads most
/// of them, the best candidates for the error message.
#[derive(Debug, Clone)]
pub enum Detection {
    Found(Prefix),
    /// No candidate reads more than half the lines that are not continuations. Candidates are
    /// `(log_line_prefix, lines read)`, best first, and `lines` the lines they were tried on.
    Undecided {
        candidates: Vec<(String, usize)>,
        lines: usize,
    },
}

/// Picks the prefix that reads the most of `lines` (the first lines of a log), trying the
/// common ones and the ones inferred from the lines themselves. None when none reads any.
pub fn detect<'a>(lines: impl Iterator<Item = &'a [u8]> + Clone) -> Option<Prefix> {
    match detect_or_candidates(lines) {
        Detection::Found(p) => Some(p),
        Detection::Undecided { .. } => None,
    }
}

/// Like [`detect`], but says which candidates came closest when none reads most lines.
pub fn detect_or_candidates<'a>(lines: impl Iterator<Item = &'a [u8]> + Clone) -> Detection {
    let mut candidates: Vec<Prefix> = COMMON_PREFIXES
        .iter()
        .filter_map(|s| Prefix::compile(s).ok())
        .collect();
    for inferred in infer_all(lines.clone(), MAX_INFERRED) {
        if COMMON_PREFIXES.contains(&inferred.as_str()) {
            continue;
        }
        let Ok(p) = Prefix::compile(&inferred) else {
            continue;
        };
        let variants = session_only_variants(&p);
        candidates.push(p);
        for tokens in variants {
            candidates.push(Prefix {
                source: source_of(&tokens),
                tokens,
            });
        }
    }
    // Score: lines read, then the fields those lines gave values to (of two prefixes that read
    // the same lines, the one that tells more fields apart: `%u@%d %h %e ` over `%u@%d `
    // swallowing the host and SQLSTATE into the database, `... b=%b %q| %u@%d ` over the
    // `... b=%b ` of background lines; a %q placed early gains nothing), then lines read in
    // full (not stopped at %q); the first candidate wins a tie (the common ones come first,
    // then the inferred ones).
    let body: Vec<&[u8]> = lines
        .filter(|l| !l.starts_with(b"\t") && !l.starts_with(b" ") && !l.is_empty())
        .collect();
    let mut scored: Vec<((usize, usize, usize), Prefix)> = Vec::new();
    for candidate in candidates {
        if scored.iter().any(|(_, p)| p.source == candidate.source) {
            continue;
        }
        let mut read = 0;
        let mut full = 0;
        let mut fields = 0;
        for l in &body {
            if let Some(split) = candidate.split(l) {
                read += 1;
                full += usize::from(!split.fields.stopped_at_q);
                fields += usize::from(split.fields.matched);
            }
        }
        if read == 0 {
            continue;
        }
        scored.push(((read, fields, full), candidate));
    }
    // stable: equal scores keep their order
    scored.sort_by_key(|s| std::cmp::Reverse(s.0));
    match scored.first() {
        Some(((read, _, _), _)) if *read * 2 > body.len() => {
            Detection::Found(scored.swap_remove(0).1)
        }
        _ => Detection::Undecided {
            candidates: scored
                .into_iter()
                .take(3)
                .map(|((read, _, _), p)| (p.source, read))
                .collect(),
            lines: body.len(),
        },
    }
}

/// Background processes print nothing after %q: the prefix with %q at each place, inside
/// literals too (`type=%b %q| %u@%d`).
fn session_only_variants(p: &Prefix) -> Vec<Vec<Token>> {
    let mut variants = Vec::new();
    for k in 0..p.tokens.len() {
        if let Token::Literal(l) = &p.tokens[k] {
            for cut in 1..l.len() {
                let mut tokens = p.tokens.clone();
                tokens.splice(
                    k..=k,
                    [
                        Token::Literal(l[..cut].to_vec()),
                        Token::SessionOnly,
                        Token::Literal(l[cut..].to_vec()),
                    ],
                );
                variants.push(tokens);
            }
        }
        if k > 0 {
            let mut tokens = p.tokens.clone();
            tokens.insert(k, Token::SessionOnly);
            variants.push(tokens);
        }
    }
    variants
}

/// The `log_line_prefix` spelling of compiled tokens.
fn source_of(tokens: &[Token]) -> String {
    let mut out = String::new();
    for t in tokens {
        match t {
            Token::Literal(l) => out.push_str(&String::from_utf8_lossy(l).replace('%', "%%")),
            Token::SessionOnly => out.push_str("%q"),
            Token::Field(e) => {
                out.push('%');
                out.push(e.letter());
            }
        }
    }
    out
}

/// Guesses a `log_line_prefix` from the text before the severity of the lines that show the
/// most (client backends print user and database; background processes leave them empty).
pub fn infer<'a>(lines: impl Iterator<Item = &'a [u8]>) -> Option<String> {
    infer_all(lines, 1).into_iter().next()
}

/// Up to `max` distinct guesses from the first 400 lines, those with the most escapes first
/// (then in order of appearance): a log that starts with connection lines (`[unknown]`,
/// `[local]`) or background processes' lines (empty values) still yields the guess of its
/// ordinary lines, and detection scores them all.
pub fn infer_all<'a>(lines: impl Iterator<Item = &'a [u8]>, max: usize) -> Vec<String> {
    let mut guesses: Vec<(usize, String)> = Vec::new();
    for line in lines.take(400) {
        let Some(at) = severity::find(line) else {
            continue;
        };
        let guess = infer_one(&line[..at]);
        if guesses.iter().any(|(_, g)| *g == guess) {
            continue;
        }
        let escapes = guess.matches('%').count() - 2 * guess.matches("%%").count();
        guesses.push((escapes, guess));
        if guesses.len() >= 64 {
            break;
        }
    }
    guesses.sort_by_key(|g| std::cmp::Reverse(g.0));
    guesses.into_iter().take(max).map(|(_, g)| g).collect()
}

/// The values PostgreSQL prints for a field it does not know yet: `[unknown]` for user,
/// database and application before authentication, `[local]` for the host of a Unix-socket
/// connection (`%h`, `%r`). Their length and whether it is the host's.
fn placeholder_len(b: &[u8]) -> Option<(usize, bool)> {
    if b.starts_with(b"[unknown]") {
        Some((9, false))
    } else if b.starts_with(b"[local]") {
        Some((7, true))
    } else {
        None
    }
}

/// Keys people put before `=` in a prefix, and the escape each stands for.
const KEYED: &[(&str, char)] = &[
    ("user", 'u'),
    ("usr", 'u'),
    ("u", 'u'),
    ("db", 'd'),
    ("database", 'd'),
    ("dbname", 'd'),
    ("d", 'd'),
    ("app", 'a'),
    ("application", 'a'),
    ("application_name", 'a'),
    ("appname", 'a'),
    ("a", 'a'),
    ("client", 'h'),
    ("host", 'h'),
    ("remote", 'r'),
    ("h", 'h'),
    ("pid", 'p'),
    ("p", 'p'),
    ("sql_error_code", 'e'),
    ("sqlstate", 'e'),
    ("state", 'e'),
    ("e", 'e'),
    ("xid", 'x'),
    ("txid", 'x'),
    ("vxid", 'v'),
    ("session", 'c'),
    ("sid", 'c'),
    ("line", 'l'),
    ("query_id", 'Q'),
    ("queryid", 'Q'),
    ("backend", 'b'),
    ("backend_type", 'b'),
    ("type", 'b'),
    ("tag", 'i'),
    ("cmd", 'i'),
    ("qid", 'Q'),
    ("epoch", 'n'),
    ("start", 's'),
];

fn infer_one(text: &[u8]) -> String {
    let mut out = String::new();
    let mut i = 0;
    let mut seen_time = false;
    let mut seen_pid = false;
    let mut seen_line = false;
    // escapes already used, for unkeyed values: the next is %u, then %d, then %a
    let mut used: Vec<char> = Vec::new();
    let unkeyed = |used: &mut Vec<char>| {
        let esc = ['u', 'd', 'a', 'i']
            .into_iter()
            .find(|e| !used.contains(e))
            .unwrap_or('i');
        used.push(esc);
        esc
    };
    while i < text.len() {
        let rest = &text[i..];
        let at_word_start = i == 0 || matches!(text[i - 1], b' ' | b'[' | b'(' | b':' | b',');
        if let Some(n) = timestamp_len(rest) {
            let has_ms = rest.get(19) == Some(&b'.');
            out.push_str(if seen_time {
                "%s"
            } else if has_ms {
                "%m"
            } else {
                "%t"
            });
            seen_time = true;
            i += n;
            continue;
        }
        let d = digits(rest);
        if d == 10 && rest.get(10) == Some(&b'.') && digits(&rest[11..]) == 3 && !seen_time {
            out.push_str("%n");
            seen_time = true;
            i += 14;
            continue;
        }
        // session id: hex.hex
        let hex = rest.iter().take_while(|c| c.is_ascii_hexdigit()).count();
        if (6..=8).contains(&hex) && rest.get(hex) == Some(&b'.') {
            let hex2 = rest[hex + 1..]
                .iter()
                .take_while(|c| c.is_ascii_hexdigit())
                .count();
            if hex2 >= 1 && (i == 0 || !text[i - 1].is_ascii_alphanumeric()) {
                out.push_str("%c");
                i += hex + 1 + hex2;
                continue;
            }
        }
        if rest[0] == b'[' {
            let d = digits(&rest[1..]);
            if d > 0 && rest.get(1 + d) == Some(&b']') && !seen_pid {
                out.push_str("[%p]");
                seen_pid = true;
                i += d + 2;
                continue;
            }
            if d > 0 && rest.get(1 + d) == Some(&b'-') && !seen_line {
                let d2 = digits(&rest[2 + d..]);
                if d2 > 0 && rest.get(2 + d + d2) == Some(&b']') {
                    out.push_str("[%l-");
                    out.push_str(&String::from_utf8_lossy(&rest[2 + d..2 + d + d2]));
                    out.push(']');
                    seen_line = true;
                    i += 3 + d + d2;
                    continue;
                }
            }
            if let Some((n, host)) = placeholder_len(rest) {
                // `[unknown]@[unknown]`
                if !host && rest[n..].starts_with(b"@") {
                    let db = rest[n + 1..]
                        .iter()
                        .take_while(|c| {
                            c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')
                        })
                        .count();
                    let db = placeholder_len(&rest[n + 1..]).map_or(db, |(p, _)| p);
                    out.push_str("%u@%d");
                    used.extend(['u', 'd']);
                    i += n + 1 + db;
                    continue;
                }
                if host {
                    out.push_str("%r");
                } else {
                    out.push('%');
                    out.push(unkeyed(&mut used));
                }
                i += n;
                continue;
            }
        }
        // key=value: the value's shape says the escape where it can, the key where it cannot
        let word = rest
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
            .count();
        if word > 0
            && rest.get(word) == Some(&b'=')
            && (i == 0 || !text[i - 1].is_ascii_alphanumeric())
        {
            let key = String::from_utf8_lossy(&rest[..word]).to_ascii_lowercase();
            let value = &rest[word + 1..];
            let (esc, len) = keyed_value(&key, value, seen_time);
            seen_time |= matches!(esc, 'm' | 't' | 'n');
            seen_pid |= esc == 'p';
            used.push(esc);
            out.push_str(&String::from_utf8_lossy(&rest[..=word]));
            out.push('%');
            out.push(esc);
            i += word + 1 + len;
            continue;
        }
        // user@db
        if word > 0 && rest.get(word) == Some(&b'@') {
            let db = rest[word + 1..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
                .count();
            let db = placeholder_len(&rest[word + 1..]).map_or(db, |(p, _)| p);
            if db > 0 {
                out.push_str("%u@%d");
                used.extend(['u', 'd']);
                i += word + 1 + db;
                continue;
            }
        }
        // host(port)
        if let Some(n) = host_port_len(rest) {
            out.push_str("%r");
            i += n;
            continue;
        }
        if d > 0
            && !seen_pid
            && (i == 0 || !text[i - 1].is_ascii_alphanumeric())
            && rest.get(d).is_none_or(|c| !c.is_ascii_alphanumeric())
        {
            out.push_str("%p");
            seen_pid = true;
            i += d;
            continue;
        }
        // an unkeyed SQLSTATE (`%e`: `00000`, `22012`, `40P01`)
        if word == 5
            && (seen_time || seen_pid)
            && at_word_start
            && !used.contains(&'e')
            && rest[..5]
                .iter()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
            && rest[..2].iter().all(u8::is_ascii_alphanumeric)
            && rest[..5].iter().filter(|c| c.is_ascii_digit()).count() >= 3
            && rest.get(5).is_none_or(|c| matches!(c, b' ' | b']' | b','))
        {
            out.push_str("%e");
            used.push('e');
            i += 5;
            continue;
        }
        // an unkeyed value after the time or pid (`%p %m %u %d `): a word between separators.
        // An address is the host; other words are user, database, application in turn.
        let word_len = rest
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
            .count();
        let address_len = rest
            .iter()
            .take_while(|c| c.is_ascii_hexdigit() || matches!(c, b'.' | b':'))
            .count();
        let token = if is_address(&rest[..address_len]) {
            address_len
        } else {
            word_len
        };
        if token > 0
            && (seen_time || seen_pid)
            && at_word_start
            && rest
                .get(token)
                .is_none_or(|c| matches!(c, b' ' | b']' | b','))
            && (rest[..token].iter().any(u8::is_ascii_alphabetic) || is_address(&rest[..token]))
        {
            if is_address(&rest[..token]) {
                out.push_str("%h");
                used.push('h');
            } else {
                out.push('%');
                out.push(unkeyed(&mut used));
            }
            i += token;
            continue;
        }
        let ch = rest[0];
        if ch == b'%' {
            out.push_str("%%");
        } else {
            out.push(ch as char);
        }
        i += 1;
    }
    out
}

/// The escape a `key=value` stands for, and the value's length.
fn keyed_value(key: &str, v: &[u8], seen_time: bool) -> (char, usize) {
    // `l=%l`: a one-letter key is most often the escape's own letter
    let letter = (key.len() == 1)
        .then(|| key.as_bytes()[0])
        .filter(|c| Escape::from_letter(*c).is_some())
        .map(char::from);
    let known = letter.or_else(|| KEYED.iter().find(|(k, _)| *k == key).map(|(_, e)| *e));
    if let Some((n, host)) = placeholder_len(v) {
        return (known.unwrap_or(if host { 'h' } else { 'u' }), n);
    }
    if let Some(n) = timestamp_len(v) {
        let esc = if seen_time || matches!(key, "start" | "session_start" | "s" | "started") {
            's'
        } else if v.get(19) == Some(&b'.') {
            'm'
        } else {
            't'
        };
        return (esc, n);
    }
    let d = digits(v);
    if d >= 9 && v.get(d) == Some(&b'.') && digits(&v[d + 1..]) > 0 {
        return ('n', d + 1 + digits(&v[d + 1..]));
    }
    let hex = v.iter().take_while(|c| c.is_ascii_hexdigit()).count();
    if (6..=8).contains(&hex) && v.get(hex) == Some(&b'.') {
        let hex2 = v[hex + 1..]
            .iter()
            .take_while(|c| c.is_ascii_hexdigit())
            .count();
        if hex2 > 0 {
            return ('c', hex + 1 + hex2);
        }
    }
    if let Some(n) = host_port_len(v) {
        return ('r', n);
    }
    // text: to a delimiter, or a space before another `key=` or a symbol
    let mut len = 0;
    while len < v.len() {
        let c = v[len];
        if matches!(c, b',' | b';' | b']' | b'|') {
            break;
        }
        if c == b' ' {
            let next = &v[len + 1..];
            let w = next
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                .count();
            if next.is_empty()
                || w == 0
                || next.get(w) == Some(&b'=')
                || severity::split(next).is_some()
            {
                break;
            }
        }
        len += 1;
    }
    if len > 0 && v[len - 1] == b':' {
        len -= 1;
    }
    let value = &v[..len];
    let numeric = !value.is_empty()
        && value
            .iter()
            .enumerate()
            .all(|(i, c)| c.is_ascii_digit() || (i == 0 && *c == b'-'));
    let esc = match known {
        Some(e) => e,
        None if numeric => 'Q',
        None => 'i',
    };
    (esc, len)
}

/// `127.0.0.1`, `::1`, `fe80::1`: an IP address as `%h` prints it.
fn is_address(b: &[u8]) -> bool {
    let v4 = b.iter().filter(|c| **c == b'.').count() == 3
        && b.iter().all(|c| c.is_ascii_digit() || *c == b'.');
    let v6 = b.contains(&b':') && b.iter().all(|c| c.is_ascii_hexdigit() || *c == b':');
    v4 || v6
}

/// `127.0.0.1(5432)`, `::1(5432)`, `host.example(5432)`.
fn host_port_len(b: &[u8]) -> Option<usize> {
    let host = b
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b':' | b'-'))
        .count();
    if host == 0 || b.get(host) != Some(&b'(') {
        return None;
    }
    let port = digits(&b[host + 1..]);
    if port > 0
        && b.get(host + 1 + port) == Some(&b')')
        && memchr::memchr2(b'.', b':', &b[..host]).is_some()
    {
        Some(host + port + 2)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split<'a>(prefix: &str, line: &'a str) -> PrefixedLine<'a> {
        Prefix::compile(prefix)
            .unwrap()
            .split(line.as_bytes())
            .unwrap_or_else(|| panic!("{prefix:?} does not read {line:?}"))
    }

    fn s(b: Option<&[u8]>) -> Option<&str> {
        b.map(|b| std::str::from_utf8(b).unwrap())
    }

    #[test]
    fn default_prefix() {
        let l = split(
            "%m [%p] ",
            "2026-11-26 22:38:11.336 UTC [8776] LOG:  starting PostgreSQL 15.18",
        );
        assert_eq!(s(l.fields.time), Some("2026-11-26 22:38:11.336 UTC"));
        assert_eq!(l.fields.pid, Some(8776));
        assert_eq!(l.severity, Severity::Log);
        assert_eq!(l.message, b"starting PostgreSQL 15.18");
    }

    #[test]
    fn debian_prefix_with_and_without_session() {
        let p = "%m [%p] %q%u@%d ";
        let l = split(
            p,
            "2026-11-26 22:38:11.593 UTC [8787] django@shop LOG:  duration: 0.240 ms  statement: SELECT 1",
        );
        assert_eq!(s(l.fields.user), Some("django"));
        assert_eq!(s(l.fields.database), Some("shop"));
        assert_eq!(l.message, b"duration: 0.240 ms  statement: SELECT 1");
        let l = split(
            p,
            "2026-11-26 22:38:11.336 UTC [8776] LOG:  checkpoint starting: time",
        );
        assert_eq!(l.fields.user, None);
        assert_eq!(l.fields.pid, Some(8776));
        // an '@' later in the message must not be taken for user@db
        let l = split(
            p,
            "2026-11-26 22:38:11.336 UTC [8776] LOG:  duration: 1 ms  statement: SELECT 'a@b' x",
        );
        assert_eq!(l.fields.user, None);
        assert_eq!(l.message, b"duration: 1 ms  statement: SELECT 'a@b' x");
    }

    #[test]
    fn pgbadger_prefix_with_spaces_in_app_name() {
        let l = split(
            "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
            "2026-11-26 22:38:11 UTC [8787]: [3-1] user=django,db=shop,app=pgAdmin 4 - CONN,client=10.0.0.5 ERROR:  deadlock detected",
        );
        assert_eq!(s(l.fields.application), Some("pgAdmin 4 - CONN"));
        assert_eq!(s(l.fields.database), Some("shop"));
        assert_eq!(l.severity, Severity::Error);
    }

    #[test]
    fn rds_prefix() {
        let p = "%t:%r:%u@%d:[%p]:";
        let l = split(
            p,
            "2026-11-26 22:38:11 UTC:10.1.2.3(51234):app@prod:[4242]:LOG:  duration: 5.1 ms  statement: SELECT 1",
        );
        assert_eq!(l.fields.pid, Some(4242));
        assert_eq!(s(l.fields.user), Some("app"));
        let l = split(
            p,
            "2026-11-26 22:38:11 UTC::@:[4200]:LOG:  checkpoint starting: time",
        );
        assert_eq!(l.fields.pid, Some(4200));
        assert_eq!(s(l.fields.user), Some(""));
    }

    #[test]
    fn session_id_gives_pid_and_epoch_time() {
        let l = split(
            "%n %c %e ",
            "1732660691.336 6b08b4d3.2248 40P01 ERROR:  deadlock detected",
        );
        assert_eq!(l.fields.pid, Some(0x2248));
        assert!(l.fields.epoch);
        assert_eq!(s(l.fields.sqlstate), Some("40P01"));
    }

    #[test]
    fn verbose_sqlstate_and_unknown_escape() {
        let l = split(
            "%m [%p] ",
            "2026-11-26 22:38:18.128 UTC [8818] ERROR:  40P01: deadlock detected",
        );
        assert_eq!(s(l.verbose_sqlstate), Some("40P01"));
        assert_eq!(l.message, b"deadlock detected");
        assert_eq!(
            Prefix::compile("%m %z").unwrap_err(),
            PrefixError::UnknownEscape('z')
        );
        assert_eq!(
            Prefix::compile("%m %").unwrap_err(),
            PrefixError::TrailingPercent
        );
        assert!(Prefix::compile("%-10u %5p 100%% ").is_ok());
    }

    #[test]
    fn rejects_lines_without_severity() {
        let p = Prefix::compile("%m [%p] ").unwrap();
        assert!(p.split(b"\tFROM app_book").is_none());
        assert!(
            p.split(b"2026-11-26 22:38:11.336 UTC [87x6] LOG:  x")
                .is_none()
        );
        assert!(p.split(b"").is_none());
    }

    #[test]
    fn detects_common_prefixes() {
        let debian = [
            &b"2026-11-26 22:38:11.336 UTC [8776] LOG:  starting PostgreSQL 15.18"[..],
            b"2026-11-26 22:38:11.593 UTC [8787] django@shop LOG:  duration: 0.240 ms  statement: SELECT 1",
        ];
        assert_eq!(
            detect(debian.iter().copied()).unwrap().source(),
            "%m [%p] %q%u@%d "
        );
        let default = [&b"2026-11-26 22:38:11.336 UTC [8776] LOG:  starting"[..]];
        let p = detect(default.iter().copied()).unwrap();
        assert!(p.has_pid());
    }

    #[test]
    fn placeholders_are_values_not_prefix_text() {
        // pgBadger's t/fixtures/begin_end.log starts so (issue 8: read as `db=%d],user=%u],...`)
        let connection = &b"2021-02-14 01:34:02 CET [30291]: db=[unknown],user=[unknown],app=[unknown],client=[local] LOG:  connection received: host=[local]"[..];
        assert_eq!(
            infer([connection].into_iter()).unwrap(),
            "%t [%p]: db=%d,user=%u,app=%a,client=%h "
        );
        let unkeyed = &b"20507 2026-12-02 11:47:09.109 UTC [unknown] [unknown] LOG:  connection received: host=[local]"[..];
        assert_eq!(infer([unkeyed].into_iter()).unwrap(), "%p %m %u %d ");
        let rds = &b"2026-12-02 11:47:09 UTC:[local]:[unknown]@[unknown]:[20507]:LOG:  connection received: host=[local]"[..];
        assert_eq!(infer([rds].into_iter()).unwrap(), "%t:%r:%u@%d:[%p]:");
        let sqlstate = &b"2026-12-02 11:47:09.117 UTC [20507] django@shop [local] 22012 ERROR:  division by zero"[..];
        assert_eq!(
            infer([sqlstate].into_iter()).unwrap(),
            "%m [%p] %u@%d %r %e "
        );
    }

    #[test]
    fn detection_says_when_no_candidate_reads_most_lines() {
        let lines = [
            &b"20507 2026-12-02 11:47:09.109 UTC django shop LOG:  x"[..],
            b"2026-12-02 11:47:09 UTC:[local]:django@shop:[20507]:LOG:  x",
            b"2026-12-02 11:47:09.117 UTC [20507] user=django,db=shop,app=psql,client=[local] LOG:  x",
        ];
        match detect_or_candidates(lines.iter().copied()) {
            Detection::Undecided { candidates, lines } => {
                assert_eq!(lines, 3);
                assert!(candidates.len() >= 2, "{candidates:?}");
                assert!(candidates.iter().all(|(_, read)| *read == 1));
            }
            Detection::Found(p) => panic!("found {}", p.source()),
        }
    }

    #[test]
    fn infers_a_custom_prefix() {
        let lines = [
            &b"2026-11-26 22:38:11.336 UTC pid=8776 sid=6b08b4d3.2248 app=,usr=,db= LOG:  starting"[..],
            b"2026-11-26 22:38:11.593 UTC pid=8787 sid=6b08b4d3.2253 app=shop-setup,usr=django,db=shop LOG:  duration: 0.240 ms  statement: SELECT 1",
        ];
        let inferred = infer(lines.iter().copied()).unwrap();
        assert_eq!(inferred, "%m pid=%p sid=%c app=%a,usr=%u,db=%d ");
        let p = detect(lines.iter().copied()).unwrap();
        let l = p.split(lines[1]).unwrap();
        assert_eq!(l.fields.pid, Some(8787));
        assert_eq!(s(l.fields.application), Some("shop-setup"));
    }
}
