//! Live side: which outbound call a sampled, blocked thread waits in, named for what it is (an
//! HTTP upstream, an SMTP server, Redis, a DNS lookup, a TLS handshake, a cloud SDK, a raw
//! socket) with the timeout setting that bounds it. It reads one py-spy stack (outermost frame
//! first, application frames annotated with their line of code) and knows nothing about
//! samples or workers.
//!
//! Kept apart from [`crate::analyze::stack`], which names causes for both `logs` and `live`, so
//! that the two vocabularies of outbound calls can be unified in one place later.

use crate::analyze::stack::{Origin, origin};
use crate::report::Frame;

/// What kind of peer the thread waits on. The names are a public contract
/// (`workers[].outbound`, `workers[].threads[].outbound`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerKind {
    Http,
    Smtp,
    Redis,
    Memcached,
    /// ftplib, imaplib, poplib, nntplib, telnetlib.
    StdlibProtocol,
    CloudSdk,
    Dns,
    TlsHandshake,
    Socket,
}

impl PeerKind {
    pub fn name(self) -> &'static str {
        match self {
            PeerKind::Http => "http",
            PeerKind::Smtp => "smtp",
            PeerKind::Redis => "redis",
            PeerKind::Memcached => "memcached",
            PeerKind::StdlibProtocol => "stdlib_protocol",
            PeerKind::CloudSdk => "cloud_sdk",
            PeerKind::Dns => "dns",
            PeerKind::TlsHandshake => "tls_handshake",
            PeerKind::Socket => "socket",
        }
    }
}

/// One blocked outbound call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundCall {
    pub kind: PeerKind,
    /// The client library the application called (`requests`, `smtplib`, `redis`, `boto3`,
    /// `socket`).
    pub client: String,
    /// What the thread waits for, for a reason line: `a reply from an SMTP server (smtplib)`.
    pub waits_for: String,
    /// The setting that bounds the wait.
    pub advice: &'static str,
}

/// A client library, how to recognise its frames, and what it talks to.
struct Client {
    kind: PeerKind,
    name: &'static str,
    matches: fn(&Frame) -> bool,
}

fn package(f: &Frame, names: &[&str]) -> bool {
    matches!(origin(&f.file), Origin::Package(p) if names.contains(&p))
}

fn stdlib(f: &Frame, modules: &[&str]) -> bool {
    matches!(origin(&f.file), Origin::Stdlib(m) if modules.contains(&m))
}

/// Most specific first: a cloud SDK rides on urllib3, Redis on sockets.
const CLIENTS: &[Client] = &[
    Client {
        kind: PeerKind::CloudSdk,
        name: "boto3",
        matches: |f| package(f, &["boto3", "botocore", "s3transfer", "aiobotocore"]),
    },
    Client {
        kind: PeerKind::CloudSdk,
        name: "google-cloud",
        matches: |f| {
            package(f, &["google"])
                && (f.file.contains("/google/cloud/") || f.file.contains("/google/api_core/"))
        },
    },
    Client {
        kind: PeerKind::CloudSdk,
        name: "azure",
        matches: |f| package(f, &["azure"]),
    },
    Client {
        kind: PeerKind::Redis,
        name: "redis",
        matches: |f| package(f, &["redis", "django_redis", "rq", "kombu"]) && !is_http_file(f),
    },
    Client {
        kind: PeerKind::Memcached,
        name: "pymemcache",
        matches: |f| package(f, &["pymemcache", "pylibmc", "memcache"]),
    },
    Client {
        kind: PeerKind::Smtp,
        name: "smtplib",
        matches: |f| stdlib(f, &["smtplib.py"]) || package(f, &["aiosmtplib"]),
    },
    Client {
        kind: PeerKind::StdlibProtocol,
        name: "ftplib",
        matches: |f| stdlib(f, &["ftplib.py"]),
    },
    Client {
        kind: PeerKind::StdlibProtocol,
        name: "imaplib",
        matches: |f| stdlib(f, &["imaplib.py"]),
    },
    Client {
        kind: PeerKind::StdlibProtocol,
        name: "poplib",
        matches: |f| stdlib(f, &["poplib.py"]),
    },
    Client {
        kind: PeerKind::Http,
        name: "requests",
        matches: |f| package(f, &["requests"]),
    },
    Client {
        kind: PeerKind::Http,
        name: "httpx",
        matches: |f| package(f, &["httpx", "httpcore"]),
    },
    Client {
        kind: PeerKind::Http,
        name: "aiohttp",
        matches: |f| package(f, &["aiohttp"]),
    },
    Client {
        kind: PeerKind::Http,
        name: "urllib3",
        matches: |f| package(f, &["urllib3"]),
    },
    Client {
        kind: PeerKind::Http,
        name: "urllib.request",
        matches: |f| stdlib(f, &["urllib/request.py"]),
    },
    Client {
        kind: PeerKind::Http,
        name: "http.client",
        matches: |f| stdlib(f, &["http/client.py"]),
    },
];

fn is_http_file(f: &Frame) -> bool {
    stdlib(f, &["http/client.py"])
}

fn method(function: &str) -> &str {
    function.rsplit('.').next().unwrap_or(function)
}

/// Socket calls in an application line that block on the network.
const SOCKET_READS: &[&str] = &[
    ".recv(",
    ".recv_into(",
    ".recvfrom(",
    ".recvfrom_into(",
    ".recvmsg(",
];
const SOCKET_OTHER: &[(&str, &str)] = &[
    (".sendall(", "the peer to take what it sends (sendall)"),
    (".connect(", "a TCP connection to be accepted (connect)"),
    (
        "create_connection(",
        "a TCP connection to be accepted (connect)",
    ),
];
const DNS_FUNCTIONS: &[&str] = &[
    "getaddrinfo",
    "gethostbyname",
    "gethostbyname_ex",
    "gethostbyaddr",
    "getnameinfo",
    "getfqdn",
];

/// What the innermost frames are doing on the network, before the client is known.
enum Operation {
    Dns,
    TlsHandshake,
    Connect,
    Read(&'static str),
}

fn operation(frames: &[Frame]) -> Option<Operation> {
    let innermost = frames.last()?;
    let tail = &frames[frames.len().saturating_sub(4)..];
    // getaddrinfo is socket.py's wrapper around the C resolver (or the application calls the
    // C function directly, which leaves no frame of its own).
    if tail
        .iter()
        .any(|f| stdlib(f, &["socket.py"]) && DNS_FUNCTIONS.contains(&method(&f.function)))
        || (origin(&innermost.file) == Origin::App
            && innermost
                .code
                .as_deref()
                .is_some_and(|c| DNS_FUNCTIONS.iter().any(|d| c.contains(&format!("{d}(")))))
    {
        return Some(Operation::Dns);
    }
    if stdlib(innermost, &["ssl.py"]) && method(&innermost.function).contains("handshake") {
        return Some(Operation::TlsHandshake);
    }
    match origin(&innermost.file) {
        Origin::Stdlib("socket.py") if method(&innermost.function) == "create_connection" => {
            Some(Operation::Connect)
        }
        Origin::Stdlib("socket.py" | "ssl.py") => Some(Operation::Read("a reply")),
        // A selector waits on any file: a socket only when a socket or a client is below it
        // (subprocess.communicate() waits in one on pipes).
        Origin::Stdlib("selectors.py")
            if frames.iter().any(|f| {
                stdlib(f, &["socket.py", "ssl.py"]) || CLIENTS.iter().any(|c| (c.matches)(f))
            }) =>
        {
            Some(Operation::Read("a reply"))
        }
        Origin::App => {
            let code = innermost.code.as_deref()?;
            if SOCKET_READS.iter().any(|r| code.contains(r)) {
                return Some(Operation::Read("a reply"));
            }
            SOCKET_OTHER
                .iter()
                .find(|(call, _)| code.contains(call))
                .map(|(call, what)| {
                    if call.contains("connect") {
                        Operation::Connect
                    } else {
                        Operation::Read(what)
                    }
                })
        }
        // A client library's own frame innermost: its C read has no frame (redis-py's hiredis
        // parser, aiohttp's...); only a known client counts.
        Origin::Package(_) | Origin::Stdlib(_) => CLIENTS
            .iter()
            .any(|c| (c.matches)(innermost))
            .then_some(Operation::Read("a reply")),
    }
}

/// The outbound call a blocked stack waits in, if it is one. The caller says the thread is
/// blocked (py-spy's `active` flag off): the same frames while running are no wait.
pub fn outbound_call(frames: &[Frame]) -> Option<OutboundCall> {
    // Only what the request called: frames after the innermost application frame's caller
    // chain are the library's.
    let op = operation(frames)?;
    let last_app = frames
        .iter()
        .rposition(|f| origin(&f.file) == Origin::App)
        .unwrap_or(0);
    let below = &frames[last_app..];
    let client = CLIENTS
        .iter()
        .find(|c| below.iter().any(|f| (c.matches)(f)));
    let (kind, name) = match (&op, client) {
        (Operation::Dns, c) => (PeerKind::Dns, c.map_or("socket", |c| c.name)),
        (Operation::TlsHandshake, c) => (PeerKind::TlsHandshake, c.map_or("ssl", |c| c.name)),
        (_, Some(c)) => (c.kind, c.name),
        (_, None) => (PeerKind::Socket, "socket"),
    };
    let waits_for = match (kind, &op) {
        (PeerKind::Dns, _) => format!("a DNS lookup (getaddrinfo, called through {name})"),
        (PeerKind::TlsHandshake, _) => {
            format!("a TLS handshake with a peer that accepted TCP but does not answer ({name})")
        }
        (_, Operation::Connect) => format!("a TCP connection to be accepted ({name} connect)"),
        (PeerKind::Http, Operation::Read(what)) => format!("{what} from an HTTP upstream ({name})"),
        (PeerKind::Smtp, Operation::Read(what)) => format!("{what} from an SMTP server ({name})"),
        (PeerKind::Redis, Operation::Read(what)) => format!("{what} from Redis ({name})"),
        (PeerKind::Memcached, Operation::Read(what)) => {
            format!("{what} from memcached ({name})")
        }
        (PeerKind::StdlibProtocol, Operation::Read(what)) => {
            format!("{what} from a server ({name})")
        }
        (PeerKind::CloudSdk, Operation::Read(what)) => {
            format!("{what} from a cloud API ({name})")
        }
        (_, Operation::Read(what)) => {
            format!("{what} on a raw socket (a socket call in application code)")
        }
        _ => format!("the network ({name})"),
    };
    Some(OutboundCall {
        kind,
        client: name.to_string(),
        waits_for,
        advice: advice(kind, name),
    })
}

fn advice(kind: PeerKind, client: &str) -> &'static str {
    match (kind, client) {
        (PeerKind::Http, "httpx") => {
            "Give the client a timeout: httpx.Client(timeout=httpx.Timeout(10, connect=3)) (httpx \
             defaults to 5 s unless timeout=None was passed)."
        }
        (PeerKind::Http, "aiohttp") => {
            "Give the session a timeout: aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10, \
             sock_connect=3))."
        }
        (PeerKind::Http, "urllib.request") => {
            "Pass timeout= to urllib.request.urlopen(url, timeout=10); without it the default \
             socket timeout (none) applies."
        }
        (PeerKind::Http, _) => {
            "Pass timeout=(connect, read) to every requests call: requests.get(url, timeout=(3.05, \
             10)) (a Session has no default timeout; urllib3: Timeout(connect=3, read=10))."
        }
        (PeerKind::Smtp, _) => {
            "Give smtplib a timeout: smtplib.SMTP(host, port, timeout=10); with Django's SMTP \
             backend set EMAIL_TIMEOUT = 10. Better, send mail from a background task \
             (Celery/RQ) so a slow mail server never holds a request."
        }
        (PeerKind::Redis, _) => {
            "Set socket_timeout and socket_connect_timeout on the Redis client: \
             redis.Redis(..., socket_timeout=5, socket_connect_timeout=2); with django-redis or \
             Django's RedisCache, OPTIONS {'socket_timeout': 5, 'socket_connect_timeout': 2} \
             (django-redis: 'SOCKET_TIMEOUT', 'SOCKET_CONNECT_TIMEOUT')."
        }
        (PeerKind::Memcached, _) => {
            "Give the memcached client timeouts: pymemcache Client(..., connect_timeout=2, \
             timeout=2); with Django's PyMemcacheCache put them in OPTIONS."
        }
        (PeerKind::StdlibProtocol, _) => {
            "Pass timeout= to the client's constructor (ftplib.FTP(host, timeout=10), \
             imaplib.IMAP4_SSL(host, timeout=10), poplib.POP3(host, timeout=10))."
        }
        (PeerKind::CloudSdk, "boto3") => {
            "Bound botocore's waits: boto3.client(..., config=botocore.config.Config(\
             connect_timeout=3, read_timeout=10, retries={'max_attempts': 2})); the defaults \
             are 60 s per attempt, retried."
        }
        (PeerKind::CloudSdk, _) => {
            "Pass the SDK's timeout on each call (google-cloud: timeout=10 and a bounded retry=; \
             azure: connection_timeout=3, read_timeout=10 on the client)."
        }
        (PeerKind::Dns, _) => {
            "A DNS lookup is bounded by no socket or HTTP client timeout: the C resolver waits \
             as /etc/resolv.conf says (options timeout:1 attempts:2, per nameserver). Fix or \
             replace the unreachable nameserver, add a local cache (systemd-resolved, nscd, \
             dnsmasq), or resolve the host once at start-up."
        }
        (PeerKind::TlsHandshake, _) => {
            "Bound the connection before the handshake: the client's connect timeout \
             (requests timeout=(3.05, 10), urllib3 Timeout(connect=3)) covers it; for a raw \
             socket call sock.settimeout(10) before ssl.wrap_socket/SSLContext.wrap_socket."
        }
        (PeerKind::Socket, _) => {
            "Give the socket a timeout: socket.create_connection((host, port), timeout=10) or \
             sock.settimeout(10) before recv(); socket.setdefaulttimeout(10) at start-up covers \
             sockets created without one."
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SP: &str = "/venv/lib/python3.11/site-packages";
    const LIB: &str = "/usr/lib/python3.11";

    fn f(file: &str, function: &str, code: Option<&str>) -> Frame {
        Frame {
            file: file.into(),
            line: 1,
            function: function.into(),
            code: code.map(str::to_string),
        }
    }

    fn view(code: &str) -> Frame {
        f("/srv/app/shop/views.py", "checkout", Some(code))
    }

    fn handler() -> Frame {
        f(
            &format!("{SP}/gunicorn/workers/gthread.py"),
            "ThreadWorker.handle_request",
            None,
        )
    }

    #[test]
    fn a_raw_recv_in_application_code_is_a_socket_read() {
        let s = vec![handler(), view("reply = conn.recv(1024)")];
        let c = outbound_call(&s).unwrap();
        assert_eq!((c.kind, c.client.as_str()), (PeerKind::Socket, "socket"));
        assert!(c.advice.contains("settimeout"));
        // Running Python on the same line is no wait: the caller checks `active`; a line
        // without a socket call is nothing here.
        assert_eq!(outbound_call(&[handler(), view("total += price")]), None);
    }

    #[test]
    fn libraries_are_named_for_their_peer() {
        let socket_read = f(&format!("{LIB}/socket.py"), "SocketIO.readinto", None);
        let smtp = vec![
            handler(),
            view("smtplib.SMTP(host, port)"),
            f(&format!("{LIB}/smtplib.py"), "SMTP.getreply", None),
            socket_read.clone(),
        ];
        let c = outbound_call(&smtp).unwrap();
        assert_eq!(c.kind, PeerKind::Smtp);
        assert!(c.advice.contains("EMAIL_TIMEOUT"));

        let redis = vec![
            handler(),
            view("cache.get(key)"),
            f(&format!("{SP}/django_redis/client/default.py"), "get", None),
            f(&format!("{SP}/redis/connection.py"), "read_response", None),
            socket_read.clone(),
        ];
        assert_eq!(outbound_call(&redis).unwrap().kind, PeerKind::Redis);

        let s3 = vec![
            handler(),
            view("s3.get_object(Bucket=b, Key=k)"),
            f(&format!("{SP}/botocore/client.py"), "_make_api_call", None),
            f(&format!("{SP}/urllib3/connectionpool.py"), "urlopen", None),
            f(&format!("{LIB}/http/client.py"), "getresponse", None),
            socket_read.clone(),
        ];
        let c = outbound_call(&s3).unwrap();
        assert_eq!((c.kind, c.client.as_str()), (PeerKind::CloudSdk, "boto3"));
        assert!(c.advice.contains("read_timeout"));

        let http = vec![
            handler(),
            view("requests.get(url)"),
            f(&format!("{SP}/requests/api.py"), "get", None),
            f(&format!("{SP}/urllib3/connectionpool.py"), "urlopen", None),
            socket_read,
        ];
        let c = outbound_call(&http).unwrap();
        assert_eq!((c.kind, c.client.as_str()), (PeerKind::Http, "requests"));
    }

    #[test]
    fn dns_and_tls_handshakes_are_named_whatever_client_made_them() {
        let dns = vec![
            handler(),
            view("requests.get(url)"),
            f(&format!("{SP}/requests/api.py"), "get", None),
            f(
                &format!("{SP}/urllib3/util/connection.py"),
                "create_connection",
                None,
            ),
            f(&format!("{LIB}/socket.py"), "getaddrinfo", None),
        ];
        let c = outbound_call(&dns).unwrap();
        assert_eq!((c.kind, c.client.as_str()), (PeerKind::Dns, "requests"));
        assert!(c.advice.contains("resolv.conf"));
        let direct = vec![handler(), view("socket.gethostbyname(host)")];
        assert_eq!(outbound_call(&direct).unwrap().kind, PeerKind::Dns);

        let tls = vec![
            handler(),
            view("smtplib.SMTP_SSL(host)"),
            f(&format!("{LIB}/smtplib.py"), "SMTP_SSL._get_socket", None),
            f(&format!("{LIB}/ssl.py"), "SSLSocket.do_handshake", None),
        ];
        let c = outbound_call(&tls).unwrap();
        assert_eq!(
            (c.kind, c.client.as_str()),
            (PeerKind::TlsHandshake, "smtplib")
        );
    }

    #[test]
    fn a_selector_on_pipes_is_no_socket() {
        let communicate = vec![
            handler(),
            view("out, err = proc.communicate()"),
            f(&format!("{LIB}/subprocess.py"), "Popen._communicate", None),
            f(&format!("{LIB}/selectors.py"), "PollSelector.select", None),
        ];
        assert_eq!(outbound_call(&communicate), None);
        let urllib3 = vec![
            handler(),
            view("requests.get(url)"),
            f(&format!("{SP}/requests/api.py"), "get", None),
            f(&format!("{SP}/urllib3/util/wait.py"), "wait_for_read", None),
            f(&format!("{LIB}/selectors.py"), "PollSelector.select", None),
        ];
        assert_eq!(outbound_call(&urllib3).unwrap().kind, PeerKind::Http);
    }

    #[test]
    fn database_waits_are_not_outbound_calls() {
        let db = vec![
            handler(),
            view("cursor.execute(sql)"),
            f(
                &format!("{SP}/django/db/backends/utils.py"),
                "_execute",
                None,
            ),
        ];
        assert_eq!(outbound_call(&db), None);
    }
}
