//! The fixed cause vocabulary every subcommand attributes timeouts to, and the standard remedy for
//! each. The snake_case names are a public contract: users' CI scripts match on them.

use serde::Serialize;

/// Why a worker timed out or was killed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// A loop of lazy ORM loads: one query per row.
    NPlusOne,
    /// An outbound HTTP/socket call made without a timeout, waiting on a silent peer.
    MissingApiTimeout,
    /// One SQL statement that runs too long.
    SlowQuery,
    /// Waiting for a row or table lock held by another transaction.
    LockWait,
    /// Two transactions waiting on each other; PostgreSQL kills one.
    Deadlock,
    /// Request code burning CPU without I/O.
    CpuBound,
    /// Swap thrashing or the kernel OOM killer.
    Memory,
    /// The worker timed out before serving anything: loading the app takes longer than
    /// `timeout` (heavy imports, model loading).
    BootTimeout,
    /// The worker waited on a client: one that never sent its request (22+: `Error handling
    /// request (no URI read)`) or reads the response slowly.
    SlowClient,
    /// Every worker stalled at once: the heartbeat file on slow storage, a stopped or
    /// CPU-throttled container, a swapping host.
    HostStall,
    /// The reverse proxy gave up first (nginx `upstream timed out`, a 504) while the worker
    /// kept running: `proxy_read_timeout` below Gunicorn's `timeout`, the timeouts in the wrong
    /// order.
    ProxyTimeout,
    /// An endpoint whose finished requests take most of Gunicorn's timeout (from access or
    /// slow-request logs): the next to time out.
    SlowEndpoint,
    /// Requests that ran past Gunicorn's timeout without being timed out: under gthread and
    /// the async worker classes a request waiting on I/O never times the worker out, so
    /// nothing but the proxy (or the request's own timeouts) ends it.
    HungRequest,
    /// Not enough evidence to say.
    #[default]
    Unknown,
}

impl Cause {
    pub const ALL: [Cause; 14] = [
        Cause::NPlusOne,
        Cause::MissingApiTimeout,
        Cause::SlowQuery,
        Cause::LockWait,
        Cause::Deadlock,
        Cause::CpuBound,
        Cause::Memory,
        Cause::BootTimeout,
        Cause::SlowClient,
        Cause::HostStall,
        Cause::ProxyTimeout,
        Cause::SlowEndpoint,
        Cause::HungRequest,
        Cause::Unknown,
    ];

    /// The contract name, as it appears in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Cause::NPlusOne => "n_plus_one",
            Cause::MissingApiTimeout => "missing_api_timeout",
            Cause::SlowQuery => "slow_query",
            Cause::LockWait => "lock_wait",
            Cause::Deadlock => "deadlock",
            Cause::CpuBound => "cpu_bound",
            Cause::Memory => "memory",
            Cause::BootTimeout => "boot_timeout",
            Cause::SlowClient => "slow_client",
            Cause::HostStall => "host_stall",
            Cause::ProxyTimeout => "proxy_timeout",
            Cause::SlowEndpoint => "slow_endpoint",
            Cause::HungRequest => "hung_request",
            Cause::Unknown => "unknown",
        }
    }

    /// True for the causes that live in the database.
    pub fn is_database(self) -> bool {
        matches!(
            self,
            Cause::NPlusOne | Cause::SlowQuery | Cause::LockWait | Cause::Deadlock
        )
    }

    /// The standard remedy, as a short imperative paragraph.
    pub fn advice(self) -> &'static str {
        match self {
            Cause::NPlusOne => {
                "Load related rows in the same query: use select_related() for ForeignKey/OneToOne \
                 and prefetch_related() for many-to-many and reverse relations; paginate large \
                 listings. django-debug-toolbar or nplusone in development shows the query count \
                 per view."
            }
            Cause::MissingApiTimeout => {
                "Give every outbound call a timeout: requests.get(url, timeout=(3.05, 10)), \
                 httpx.Client(timeout=...), urllib3 Timeout(connect=, read=). A slow upstream \
                 then fails fast with an error you can handle instead of holding the worker until \
                 Gunicorn kills it; move long calls to a background task (Celery/RQ)."
            }
            Cause::SlowQuery => {
                "Find the statement in the PostgreSQL log (wtdiag pg), EXPLAIN ANALYZE it, add the \
                 missing index or narrow the query; set statement_timeout (e.g. OPTIONS \
                 {'options': '-c statement_timeout=5000'} in DATABASES) below Gunicorn's timeout \
                 so a runaway query fails cleanly; move long reports to a background task."
            }
            Cause::LockWait => {
                "Another transaction holds the row or table lock: keep transactions short (no \
                 HTTP calls inside transaction.atomic()), take locks in a consistent order, use \
                 select_for_update(nowait=True or skip_locked=True) where waiting is pointless, and \
                 set lock_timeout below Gunicorn's timeout. log_lock_waits = on shows the blocker."
            }
            Cause::Deadlock => {
                "Two transactions lock the same rows in opposite orders: lock rows in a consistent \
                 order (e.g. ORDER BY id with select_for_update()), keep transactions short, and \
                 retry the transaction that PostgreSQL cancels."
            }
            Cause::CpuBound => {
                "The request computes for longer than the timeout: profile the view (py-spy \
                 record, wtdiag live), cache the result, paginate, or move the work to a \
                 background task (Celery/RQ). Raise Gunicorn's timeout only for endpoints that are \
                 legitimately long, preferably in a separate worker pool."
            }
            Cause::Memory => {
                "The kernel killed the worker (SIGKILL without a WORKER TIMEOUT before it): check \
                 `dmesg`/`journalctl -k` for 'Out of memory: Killed process', stream large \
                 querysets with .iterator(), paginate, cap per-request data, set max_requests to \
                 recycle leaking workers, and size workers to the RAM you have."
            }
            Cause::BootTimeout => {
                "The worker timed out while loading the application, before serving a request: \
                 make the import cheaper (load models and clients lazily, on first use), or load \
                 the app once in the master with --preload so workers fork ready; a longer \
                 timeout only for boot needs a custom worker class, so measure the import \
                 (`python -X importtime -c 'import yourproject.wsgi'`) first. If the workers \
                 boot in a second or two when started by hand, look at the heartbeat instead \
                 (host_stall)."
            }
            Cause::SlowClient => {
                "A sync worker waited on a client, not on your code: a connection opened and left \
                 silent (browser pre-connects, a load balancer's idle or health-check \
                 connections) or a client reading slowly. Put a buffering proxy in front (nginx \
                 with proxy_buffering/proxy_request_buffering on), or use -k gthread so an idle \
                 connection holds a thread, not the whole worker; keep the load balancer's idle \
                 timeout below Gunicorn's timeout. No application change fixes this."
            }
            Cause::HostStall => {
                "Workers stopped together, so the cause is the process or the host, not a \
                 request: put the heartbeat file in memory (--worker-tmp-dir /dev/shm; Docker's \
                 overlay /tmp can block on fchmod), check the container's CPU throttling \
                 (cpu.stat nr_throttled) and whether it was paused or stopped, and the host for \
                 swapping (vmstat si/so, dmesg). If the workers had just started, loading the app \
                 may take longer than timeout (see boot_timeout)."
            }
            Cause::ProxyTimeout => {
                "Put the timeouts in order, outermost longest: client > load balancer > nginx \
                 proxy_read_timeout > Gunicorn --timeout > statement_timeout/lock_timeout and \
                 every outbound call's timeout. Set proxy_read_timeout a few seconds above \
                 Gunicorn's timeout (35s for 30s), or lower Gunicorn's: when the proxy gives up \
                 first, the client gets a 504 while the worker keeps running the request for \
                 nothing, holding its slot until Gunicorn's own timeout. On Heroku the router's \
                 30 s cannot be changed and includes queueing: keep Gunicorn's timeout well below \
                 it (20-25 s). Then fix the slow request itself (see the other findings)."
            }
            Cause::SlowEndpoint => {
                "This endpoint already takes most of Gunicorn's timeout: find what it waits on \
                 before it times out (`wtdiag live --pid <master>` while it runs, the PostgreSQL \
                 log for its queries, py-spy record), then paginate, add the missing index, cache, \
                 or move the work to a background task. Raising the timeout only moves the cliff."
            }
            Cause::HungRequest => {
                "Under gthread (and gevent, eventlet, uvicorn) Gunicorn's timeout does not end a \
                 request waiting on I/O: only the request's own timeouts do. Give every outbound \
                 call a timeout (requests timeout=, httpx, smtplib), set statement_timeout and \
                 lock_timeout on the database connection, keep proxy_read_timeout as the last \
                 resort, and watch for threads piling up (each hung request holds one of \
                 --threads until it ends)."
            }
            Cause::Unknown => {
                "The log does not say what the worker was doing. Run `wtdiag live --pid <master>` \
                 while it happens, upgrade Gunicorn to 22+ (it logs the aborted request's \
                 traceback), and give wtdiag the PostgreSQL log (--pg-log) and an application log \
                 with request start/end lines (--app-log)."
            }
        }
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
