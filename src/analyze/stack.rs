//! Reads a Python stack (from an abort traceback or a py-spy sample) and says what the worker
//! was doing: which cause of the vocabulary it points to, why, where it was stuck and which
//! application line made the call.

use std::sync::LazyLock;

use memchr::memmem::{Finder, FinderRev};

use crate::parse::traceback::FrameRef;
use crate::report::{Cause, Frame};

/// A frame of either kind: owned (py-spy samples) or borrowed from traceback text.
pub trait StackFrame {
    fn file(&self) -> &str;
    fn function(&self) -> &str;
    fn code(&self) -> Option<&str>;
    fn to_frame(&self) -> Frame;
}

impl StackFrame for Frame {
    fn file(&self) -> &str {
        &self.file
    }
    fn function(&self) -> &str {
        &self.function
    }
    fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }
    fn to_frame(&self) -> Frame {
        self.clone()
    }
}

impl StackFrame for FrameRef<'_> {
    fn file(&self) -> &str {
        self.file
    }
    fn function(&self) -> &str {
        self.function
    }
    fn code(&self) -> Option<&str> {
        self.code
    }
    fn to_frame(&self) -> Frame {
        Frame {
            file: self.file.to_string(),
            line: self.line,
            function: self.function.to_string(),
            code: self.code.map(str::to_string),
        }
    }
}

static SITE_PACKAGES: LazyLock<FinderRev<'static>> =
    LazyLock::new(|| FinderRev::new("/site-packages/"));
static DIST_PACKAGES: LazyLock<FinderRev<'static>> =
    LazyLock::new(|| FinderRev::new("/dist-packages/"));
static LIB_PYTHON3: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("/lib/python3"));
static DJANGO_DB: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("/django/db/"));

/// Where a frame's code comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin<'a> {
    /// The project's own code.
    App,
    /// The standard library; the module path after `lib/python3.X/`.
    Stdlib(&'a str),
    /// An installed package; its top-level name.
    Package(&'a str),
}

/// Classifies a frame's file path.
pub fn origin(file: &str) -> Origin<'_> {
    for marker in [&*SITE_PACKAGES, &*DIST_PACKAGES] {
        // The last one: a venv inside a project inside site-packages is still the package.
        if let Some(at) = marker.rfind(file.as_bytes()) {
            let rest = &file[at + marker.needle().len()..];
            let top = rest.split('/').next().unwrap_or(rest);
            return Origin::Package(top.strip_suffix(".py").unwrap_or(top));
        }
    }
    if file.starts_with("<frozen ") {
        return Origin::Stdlib(file);
    }
    if let Some(at) = LIB_PYTHON3.find(file.as_bytes()) {
        let rest = &file[at + "/lib/python3".len()..];
        if let Some(slash) = rest.find('/') {
            return Origin::Stdlib(&rest[slash + 1..]);
        }
    }
    if file.starts_with("/usr/lib/python3") {
        return Origin::Stdlib(file);
    }
    Origin::App
}

const HTTP_PACKAGES: &[&str] = &[
    "requests",
    "urllib3",
    "httpx",
    "httpcore",
    "h11",
    "aiohttp",
    "httplib2",
    "boto3",
    "botocore",
    "s3transfer",
    "stripe",
    "zeep",
    "suds",
    "redis",
    "openai",
    "anthropic",
];
const HTTP_STDLIB: &[&str] = &[
    "socket.py",
    "ssl.py",
    "http/client.py",
    "urllib/request.py",
    "selectors.py",
    "smtplib.py",
];

/// What kind of outbound call a stack is waiting on, named for what it is, each with the setting
/// that bounds it. Shared by the abort-traceback reader and the live sampler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboundKind {
    /// requests, urllib3, httpx/httpcore, aiohttp, http.client, urllib.request.
    Http,
    /// smtplib (Django's SMTP email backend).
    Smtp,
    /// redis-py.
    Redis,
    /// `socket.getaddrinfo`: name resolution, which no socket timeout bounds.
    Dns,
    /// `ssl` handshake.
    Tls,
    /// boto3/botocore/s3transfer.
    CloudSdk,
    /// openai, anthropic.
    LlmSdk,
}

impl OutboundKind {
    /// What the call is, for titles: "outbound SMTP call".
    pub fn what(self) -> &'static str {
        match self {
            OutboundKind::Http => "HTTP",
            OutboundKind::Smtp => "SMTP (email)",
            OutboundKind::Redis => "Redis",
            OutboundKind::Dns => "DNS resolution",
            OutboundKind::Tls => "TLS handshake",
            OutboundKind::CloudSdk => "cloud SDK (boto3/botocore)",
            OutboundKind::LlmSdk => "LLM API",
        }
    }

    /// The remedy for this kind of call.
    pub fn advice(self) -> &'static str {
        match self {
            OutboundKind::Http => {
                "Give every outbound call a timeout: requests.get(url, timeout=(3.05, 10)), \
                 httpx.Client(timeout=...), urllib3 Timeout(connect=, read=), \
                 aiohttp.ClientTimeout(total=...). A slow upstream then fails fast with an error \
                 you can handle; move long calls to a background task (Celery/RQ)."
            }
            OutboundKind::Smtp => {
                "Sending email inside the request waited on the SMTP server: set EMAIL_TIMEOUT \
                 (Django; smtplib.SMTP(timeout=...) otherwise) well below Gunicorn's timeout, and \
                 send mail from a background task (Celery/RQ) instead of the request."
            }
            OutboundKind::Redis => {
                "A Redis call had no timeout: set socket_timeout and socket_connect_timeout on \
                 the client (redis.Redis(..., socket_timeout=2, socket_connect_timeout=2); \
                 OPTIONS in django-redis CACHES), and check the server for slow commands \
                 (SLOWLOG GET) or a blocking BLPOP/XREAD in a web request."
            }
            OutboundKind::Dns => {
                "The worker was resolving a host name (getaddrinfo), which no socket timeout \
                 bounds and which runs in C: fix the resolver (/etc/resolv.conf `options \
                 timeout:1 attempts:2`, a local caching resolver), resolve once at startup, or \
                 call the service by a name that resolves fast."
            }
            OutboundKind::Tls => {
                "The worker was in a TLS handshake with a silent peer: a connect timeout bounds \
                 it (requests timeout=(connect, read), ssl socket settimeout before \
                 do_handshake); check the peer's reachability and certificate chain."
            }
            OutboundKind::CloudSdk => {
                "A boto3/botocore call waited on AWS: set botocore.config.Config(connect_timeout=\
                 3, read_timeout=10, retries={'max_attempts': 2}) on the client (the defaults are \
                 60 s with retries), and move large transfers to a background task."
            }
            OutboundKind::LlmSdk => {
                "An LLM API call outlasted the worker: set the SDK's timeout (OpenAI(timeout=20, \
                 max_retries=1), Anthropic(timeout=20, max_retries=1); the defaults are minutes \
                 with retries), stream or run generation in a background task and poll, and \
                 never wait on a model inside a sync worker's request."
            }
        }
    }
}

/// The outbound call a stack (outermost first) is waiting on, if its innermost library frames
/// are a network client's. The most specific library wins: SMTP, Redis, an LLM or cloud SDK
/// over the HTTP library under it; DNS and TLS when the innermost frame is the resolver or the
/// handshake.
pub fn outbound_kind<F: StackFrame>(frames: &[F]) -> Option<OutboundKind> {
    let innermost = frames
        .iter()
        .rev()
        .find(|f| origin(f.file()) != Origin::App)?;
    let net = |f: &F| match origin(f.file()) {
        Origin::Package(p) => HTTP_PACKAGES.contains(&p),
        Origin::Stdlib(m) => HTTP_STDLIB.contains(&m),
        Origin::App => false,
    };
    if !net(innermost) || frames.iter().any(|f| is_db_driver(f)) {
        return None;
    }
    let func = method(innermost.function());
    if origin(innermost.file()) == Origin::Stdlib("socket.py") && func == "getaddrinfo" {
        return Some(OutboundKind::Dns);
    }
    if origin(innermost.file()) == Origin::Stdlib("ssl.py") && func == "do_handshake" {
        return Some(OutboundKind::Tls);
    }
    // The most specific client in the stack, in one pass.
    let rank = |kind: OutboundKind| match kind {
        OutboundKind::Smtp => 4,
        OutboundKind::Redis => 3,
        OutboundKind::LlmSdk => 2,
        OutboundKind::CloudSdk => 1,
        _ => 0,
    };
    let mut best = OutboundKind::Http;
    for f in frames {
        let kind = match origin(f.file()) {
            Origin::Stdlib("smtplib.py") => OutboundKind::Smtp,
            Origin::Package("redis") => OutboundKind::Redis,
            Origin::Package("openai" | "anthropic") => OutboundKind::LlmSdk,
            Origin::Package("boto3" | "botocore" | "s3transfer") => OutboundKind::CloudSdk,
            _ => continue,
        };
        if rank(kind) > rank(best) {
            best = kind;
        }
    }
    Some(best)
}

/// True when the stack went through Gunicorn's abort handler (or ends in the `sys.exit` it
/// calls): only then is it where the worker was when the master's SIGABRT landed.
pub fn through_abort_handler<F: StackFrame>(frames: &[F]) -> bool {
    frames
        .iter()
        .rev()
        .take(3)
        .any(|f| is_gunicorn(f) && method(f.function()) == "handle_abort")
}

/// True when a stack has a database driver or Django's ORM in it.
pub fn mentions_database<F: StackFrame>(frames: &[F]) -> bool {
    frames.iter().any(|f| is_db_driver(f) || is_django_db(f))
}

/// Gunicorn's own HTTP code: reading the request (`http/parser.py`, `unreader.py`,
/// `message.py`) or writing the response (`http/wsgi.py`).
fn is_gunicorn_http(f: &(impl StackFrame + ?Sized)) -> bool {
    is_gunicorn(f) && f.file().contains("/gunicorn/http/")
}
const DB_PACKAGES: &[&str] = &[
    "psycopg2",
    "psycopg",
    "MySQLdb",
    "pymysql",
    "cx_Oracle",
    "oracledb",
];

fn is_gunicorn(f: &(impl StackFrame + ?Sized)) -> bool {
    origin(f.file()) == Origin::Package("gunicorn")
}

fn is_django_db(f: &(impl StackFrame + ?Sized)) -> bool {
    DJANGO_DB.find(f.file().as_bytes()).is_some()
}

fn is_db_driver(f: &(impl StackFrame + ?Sized)) -> bool {
    matches!(origin(f.file()), Origin::Package(p) if DB_PACKAGES.contains(&p))
        || f.file().contains("/django/db/backends/")
}

fn is_http(f: &(impl StackFrame + ?Sized)) -> bool {
    match origin(f.file()) {
        Origin::Package(p) => HTTP_PACKAGES.contains(&p),
        Origin::Stdlib(m) => HTTP_STDLIB.contains(&m),
        Origin::App => false,
    }
}

fn is_lazy_related_load(f: &(impl StackFrame + ?Sized)) -> bool {
    f.file()
        .ends_with("django/db/models/fields/related_descriptors.py")
}

/// What a stack says.
#[derive(Debug, Clone, PartialEq)]
pub struct StackVerdict {
    pub cause: Cause,
    pub reason: String,
    /// The innermost frame that is not Gunicorn's own signal handling.
    pub stuck_frame: Option<Frame>,
    /// The innermost application frame: the line in the project to change.
    pub call_site: Option<Frame>,
    /// The view: the first application frame Django's request handler called (else the
    /// outermost application frame).
    pub view: Option<Frame>,
    /// True when the stack is Gunicorn waiting for a connection (an idle worker).
    pub idle: bool,
    /// For an outbound call, what kind (HTTP, SMTP, Redis, DNS, ...).
    pub outbound: Option<OutboundKind>,
}

/// The method name of a function: py-spy names functions by their qualified name
/// (`SyncWorker.wait`), tracebacks by the bare name (`wait`).
fn method(function: &str) -> &str {
    function.rsplit('.').next().unwrap_or(function)
}

/// Classifies a stack, outermost frame first.
pub fn classify<F: StackFrame>(frames: &[F]) -> StackVerdict {
    // Gunicorn's abort handler (and sys.exit) are where the signal landed, not where the
    // worker was.
    let mut end = frames.len();
    while end > 0
        && is_gunicorn(&frames[end - 1])
        && method(frames[end - 1].function()).starts_with("handle_")
    {
        end -= 1;
    }
    // A sampled stack (py-spy) starts in the launcher (bin/gunicorn's `<module>`, runpy), whose
    // frames say nothing about the request: it starts at Gunicorn's first frame.
    let start = frames[..end]
        .iter()
        .position(|f| is_gunicorn(f))
        .unwrap_or(0);
    let stack = &frames[start..end];
    let stuck_frame = stack.last().map(StackFrame::to_frame);
    let call_site = stack
        .iter()
        .rev()
        .find(|f| origin(f.file()) == Origin::App)
        .map(StackFrame::to_frame);
    let after_handler = stack
        .iter()
        .rposition(|f| f.file().contains("/django/core/handlers/"))
        .map_or(0, |i| i + 1);
    let view = stack[after_handler..]
        .iter()
        .find(|f| origin(f.file()) == Origin::App)
        .or_else(|| stack.iter().find(|f| origin(f.file()) == Origin::App))
        .map(StackFrame::to_frame);
    let at = call_site
        .as_ref()
        .map(|f| format!(" at {}", f.short()))
        .unwrap_or_default();

    let verdict = |cause, reason: String| StackVerdict {
        cause,
        reason,
        stuck_frame: stuck_frame.clone(),
        call_site: call_site.clone(),
        view: view.clone(),
        idle: false,
        outbound: None,
    };

    // Gunicorn's own HTTP code with no application frame: the worker was waiting on the
    // client, reading a request that never came or writing to a client that reads slowly.
    let innermost_not_stdlib = stack
        .iter()
        .rev()
        .find(|f| !matches!(origin(f.file()), Origin::Stdlib(_)));
    if call_site.is_none() && innermost_not_stdlib.is_some_and(|f| is_gunicorn_http(f)) {
        let writing = innermost_not_stdlib.is_some_and(|f| f.file().ends_with("/http/wsgi.py"));
        let what = if writing {
            "writing the response to a client that reads slowly"
        } else {
            "waiting for a client to send its request (a connection opened and left silent)"
        };
        return verdict(
            Cause::SlowClient,
            format!("{what}, in Gunicorn's own HTTP code"),
        );
    }

    if stack.is_empty() || stack.iter().all(|f| is_gunicorn(f)) {
        let idle = stack.last().is_some_and(|f| {
            matches!(
                method(f.function()),
                "accept" | "wait" | "run_for_one" | "run_for_multiple" | "sleep"
            )
        });
        return StackVerdict {
            cause: Cause::Unknown,
            reason: "only Gunicorn's own frames: the worker was between requests".into(),
            stuck_frame,
            call_site,
            view,
            idle,
            outbound: None,
        };
    }

    // A module body running inside the request: code being imported (a worker's first
    // request loads the URLconf and the views), not a call in progress, whatever the imported
    // module is (`import requests` is not an outbound call).
    if let Some(import) = stack.iter().find(|f| f.function() == "<module>") {
        let what = StackFrame::to_frame(import);
        return verdict(
            Cause::Unknown,
            format!(
                "importing code inside the request ({}): the first request of a worker loads \
                 the modules it needs; a slow import is not a stuck call (load them at start: \
                 --preload, or import the URLconf in the WSGI module)",
                what.short()
            ),
        );
    }

    if let Some(kind) = outbound_kind(stack) {
        let via = stack
            .iter()
            .find(|f| is_http(*f))
            .map(|f| match origin(f.file()) {
                Origin::Package(p) => p.to_string(),
                Origin::Stdlib(m) => m.trim_end_matches(".py").replace('/', "."),
                Origin::App => String::new(),
            })
            .unwrap_or_default();
        let what = match kind {
            OutboundKind::Http => "a network read".to_string(),
            other => format!("a {} call", other.what()),
        };
        return StackVerdict {
            outbound: Some(kind),
            ..verdict(
                Cause::MissingApiTimeout,
                format!(
                    "waiting on {what} in {via}{at}: an outbound call with no (or a long) timeout"
                ),
            )
        };
    }

    if stack.iter().any(|f| is_db_driver(f) || is_django_db(f)) {
        if stack.iter().any(|f| is_lazy_related_load(f)) {
            return verdict(
                Cause::NPlusOne,
                format!(
                    "inside a lazy related-object load (related_descriptors __get__){at}: one query per row of a loop"
                ),
            );
        }
        if stack.iter().any(|f| is_db_driver(f)) {
            return verdict(
                Cause::SlowQuery,
                format!(
                    "inside a database call{at}: a slow statement or a lock wait (give the PostgreSQL log to tell which)"
                ),
            );
        }
    }

    if let Some(f) = stuck_frame.as_ref()
        && f.code.as_deref().is_some_and(|c| c.contains("sleep("))
    {
        return verdict(
            Cause::Unknown,
            format!("sleeping in time.sleep{at}: the request waits on purpose"),
        );
    }

    verdict(
        Cause::CpuBound,
        format!("running Python code with no I/O in the stack{at}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(file: &str, function: &str) -> Frame {
        Frame {
            file: file.into(),
            line: 1,
            function: function.into(),
            code: None,
        }
    }

    const SP: &str = "/venv/lib/python3.11/site-packages";

    #[test]
    fn origins() {
        assert_eq!(
            origin(&format!("{SP}/requests/api.py")),
            Origin::Package("requests")
        );
        assert_eq!(
            origin("/usr/local/lib/python3.11/socket.py"),
            Origin::Stdlib("socket.py")
        );
        assert_eq!(origin("/srv/app/shop/views.py"), Origin::App);
    }

    #[test]
    fn socket_read_under_requests_is_missing_timeout() {
        let s = vec![
            frame(&format!("{SP}/gunicorn/workers/sync.py"), "handle_request"),
            frame("/srv/app/views.py", "upstream"),
            frame(&format!("{SP}/requests/api.py"), "get"),
            frame("/usr/local/lib/python3.11/socket.py", "readinto"),
            frame(&format!("{SP}/gunicorn/workers/base.py"), "handle_abort"),
        ];
        let v = classify(&s);
        assert_eq!(v.cause, Cause::MissingApiTimeout);
        assert_eq!(v.call_site.unwrap().function, "upstream");
        assert_eq!(v.stuck_frame.unwrap().function, "readinto");
    }

    /// Modelled on a py-spy sample of a gevent worker's first request, which imported the
    /// views (and `requests` with them) inside the request: importing, not a network read.
    #[test]
    fn an_import_inside_the_request_is_not_an_outbound_call() {
        let s = vec![
            frame(
                &format!("{SP}/gunicorn/workers/ggevent.py"),
                "handle_request",
            ),
            frame(
                &format!("{SP}/django/core/handlers/base.py"),
                "_get_response",
            ),
            frame(&format!("{SP}/django/urls/resolvers.py"), "urlconf_module"),
            frame("<frozen importlib._bootstrap>", "_call_with_frames_removed"),
            frame("/srv/app/wtapp/urls.py", "<module>"),
            frame("/srv/app/wtapp/views.py", "<module>"),
            frame(&format!("{SP}/requests/__init__.py"), "<module>"),
            frame(&format!("{SP}/urllib3/connectionpool.py"), "<module>"),
        ];
        let v = classify(&s);
        assert_eq!(v.cause, Cause::Unknown, "{}", v.reason);
        assert!(
            v.reason.starts_with("importing code inside the request"),
            "{}",
            v.reason
        );
        assert_eq!(v.outbound, None);
    }

    #[test]
    fn lazy_load_is_n_plus_one_and_cpu_is_cpu() {
        let n1 = vec![
            frame("/srv/app/views.py", "books"),
            frame(
                &format!("{SP}/django/db/models/fields/related_descriptors.py"),
                "__get__",
            ),
            frame(
                &format!("{SP}/django/db/models/sql/compiler.py"),
                "execute_sql",
            ),
        ];
        assert_eq!(classify(&n1).cause, Cause::NPlusOne);
        let cpu = vec![frame("/srv/app/views.py", "primes")];
        assert_eq!(classify(&cpu).cause, Cause::CpuBound);
    }

    #[test]
    fn py_spy_stacks_skip_the_launcher_and_use_method_names() {
        // As `py-spy dump` gives them (outermost first after parsing): bin/gunicorn's
        // `<module>`, then Gunicorn's frames named by their qualified names.
        let launcher = frame("/venv/bin/gunicorn", "<module>");
        let idle = vec![
            launcher.clone(),
            frame(&format!("{SP}/gunicorn/arbiter.py"), "Arbiter.run"),
            frame(
                &format!("{SP}/gunicorn/workers/sync.py"),
                "SyncWorker.run_for_one",
            ),
            frame(&format!("{SP}/gunicorn/workers/sync.py"), "SyncWorker.wait"),
        ];
        let v = classify(&idle);
        assert!(v.idle);
        assert_eq!(v.cause, Cause::Unknown);
        let busy = vec![
            launcher,
            frame(
                &format!("{SP}/gunicorn/workers/sync.py"),
                "SyncWorker.handle_request",
            ),
            frame(
                &format!("{SP}/django/core/handlers/base.py"),
                "BaseHandler._get_response",
            ),
            frame(&format!("{SP}/cryptography/hazmat/x.py"), "derive"),
        ];
        let v = classify(&busy);
        assert!(!v.idle);
        assert_eq!(v.call_site, None, "the launcher is not the application");
        assert_eq!(v.cause, Cause::CpuBound);
    }

    fn abort() -> Frame {
        frame(&format!("{SP}/gunicorn/workers/base.py"), "handle_abort")
    }

    #[test]
    fn outbound_calls_are_named_for_what_they_are() {
        let view = frame("/srv/app/views.py", "signup");
        let cases = [
            (
                vec![
                    view.clone(),
                    frame("/usr/lib/python3.11/smtplib.py", "sendmail"),
                    frame("/usr/lib/python3.11/socket.py", "readinto"),
                ],
                OutboundKind::Smtp,
            ),
            (
                vec![
                    view.clone(),
                    frame(&format!("{SP}/redis/connection.py"), "read_response"),
                    frame("/usr/lib/python3.11/socket.py", "recv_into"),
                ],
                OutboundKind::Redis,
            ),
            (
                vec![
                    view.clone(),
                    frame(&format!("{SP}/openai/_base_client.py"), "request"),
                    frame(&format!("{SP}/httpx/_client.py"), "send"),
                    frame(
                        &format!("{SP}/httpcore/_sync/connection.py"),
                        "handle_request",
                    ),
                ],
                OutboundKind::LlmSdk,
            ),
            (
                vec![
                    view.clone(),
                    frame(&format!("{SP}/botocore/endpoint.py"), "_send"),
                    frame(&format!("{SP}/urllib3/connectionpool.py"), "urlopen"),
                ],
                OutboundKind::CloudSdk,
            ),
            (
                vec![
                    view.clone(),
                    frame(&format!("{SP}/requests/api.py"), "get"),
                    frame("/usr/lib/python3.11/socket.py", "getaddrinfo"),
                ],
                OutboundKind::Dns,
            ),
            (
                vec![
                    view.clone(),
                    frame(&format!("{SP}/requests/api.py"), "get"),
                    frame("/usr/lib/python3.11/ssl.py", "do_handshake"),
                ],
                OutboundKind::Tls,
            ),
            (
                vec![
                    view.clone(),
                    frame(&format!("{SP}/requests/api.py"), "get"),
                    frame("/usr/lib/python3.11/socket.py", "readinto"),
                ],
                OutboundKind::Http,
            ),
        ];
        for (mut stack, kind) in cases {
            assert_eq!(outbound_kind(&stack), Some(kind), "{stack:?}");
            stack.push(abort());
            let v = classify(&stack);
            assert_eq!(v.cause, Cause::MissingApiTimeout);
            assert_eq!(v.outbound, Some(kind));
        }
        let cpu = vec![view, frame("/usr/lib/python3.11/json/decoder.py", "decode")];
        assert_eq!(outbound_kind(&cpu), None);
    }

    #[test]
    fn reading_the_request_in_gunicorn_is_a_slow_client_not_an_outbound_call() {
        // The 22+ `Error handling request (no URI read)` stack.
        let s = vec![
            frame(&format!("{SP}/gunicorn/workers/sync.py"), "handle"),
            frame(&format!("{SP}/gunicorn/http/parser.py"), "__next__"),
            frame(&format!("{SP}/gunicorn/http/unreader.py"), "chunk"),
            frame("/usr/lib/python3.12/socket.py", "recv"),
            abort(),
        ];
        let v = classify(&s);
        assert_eq!(v.cause, Cause::SlowClient);
        assert!(through_abort_handler(&s));
        assert!(!through_abort_handler(&s[..3]));
        assert!(!mentions_database(&s));
    }
}
