//! `--pg DSN`: what PostgreSQL says about the backends that stuck workers wait on. A worker's
//! backend is found by its TCP client port (the worker's end of the connection, from /proc), then
//! `pg_stat_activity` says what the backend does, `pg_blocking_pids()` and `pg_locks` who blocks
//! it and on what. A data source: it returns rows, the diagnosis decides what they mean.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use postgres::{Client, Config, NoTls};

/// A backend as `pg_stat_activity` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Backend {
    pub pid: i32,
    /// `active`, `idle`, `idle in transaction`, ...
    pub state: Option<String>,
    pub wait_event_type: Option<String>,
    pub wait_event: Option<String>,
    /// The statement running, or the last one when idle.
    pub query: Option<String>,
    /// Seconds since the statement started.
    pub query_seconds: Option<f64>,
    /// Seconds since the transaction started.
    pub xact_seconds: Option<f64>,
    pub application_name: Option<String>,
}

/// A worker's backend, with who blocks it.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendActivity {
    pub backend: Backend,
    /// The lock it waits for, e.g. `ShareLock on transaction 745` or
    /// `RowExclusiveLock on relation wtapp_account`.
    pub awaited_lock: Option<String>,
    pub blockers: Vec<Backend>,
}

/// `--pg` failed; the diagnosis goes on without it.
#[derive(Debug, thiserror::Error)]
pub enum PgLookupError {
    #[error(
        "--pg: not a connection string ({0}); use 'host=... port=... dbname=... user=...' or postgresql://..."
    )]
    BadDsn(String),
    #[error("--pg: cannot connect: {0}")]
    Connect(String),
    #[error("--pg: query failed: {0}")]
    Query(String),
}

pub struct PgLookup {
    client: Client,
}

impl PgLookup {
    pub fn connect(dsn: &str) -> Result<PgLookup, PgLookupError> {
        let mut config = Config::from_str(dsn).map_err(|e| PgLookupError::BadDsn(e.to_string()))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        if config.get_application_name().is_none() {
            config.application_name("wtdiag live");
        }
        let client = config
            .connect(NoTls)
            .map_err(|e| PgLookupError::Connect(flatten(&e)))?;
        Ok(PgLookup { client })
    }

    /// The backends whose client end is one of `clients` (the workers' local addresses), keyed by
    /// that address.
    pub fn by_client(
        &mut self,
        clients: &[SocketAddr],
    ) -> Result<HashMap<SocketAddr, BackendActivity>, PgLookupError> {
        if clients.is_empty() {
            return Ok(HashMap::new());
        }
        let ports: Vec<i32> = clients.iter().map(|c| i32::from(c.port())).collect();
        let rows = self
            .client
            .query(
                &format!("{SELECT_BACKEND} WHERE client_port = ANY($1)"),
                &[&ports],
            )
            .map_err(|e| PgLookupError::Query(flatten(&e)))?;
        let mut out = HashMap::new();
        for row in rows {
            let port: Option<i32> = row.get("client_port");
            let addr: Option<String> = row.get("client_host");
            let Some(client) = clients.iter().find(|c| {
                Some(i32::from(c.port())) == port
                    && addr
                        .as_deref()
                        .and_then(|a| a.parse::<std::net::IpAddr>().ok())
                        .is_none_or(|ip| same_ip(ip, c.ip()))
            }) else {
                continue;
            };
            let backend = backend_from(&row);
            let blocking: Vec<i32> = row.get("blocking");
            let awaited_lock = self.awaited_lock(backend.pid)?;
            let blockers = self.backends(&blocking)?;
            out.insert(
                *client,
                BackendActivity {
                    backend,
                    awaited_lock,
                    blockers,
                },
            );
        }
        Ok(out)
    }

    fn backends(&mut self, pids: &[i32]) -> Result<Vec<Backend>, PgLookupError> {
        if pids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self
            .client
            .query(&format!("{SELECT_BACKEND} WHERE pid = ANY($1)"), &[&pids])
            .map_err(|e| PgLookupError::Query(flatten(&e)))?;
        Ok(rows.iter().map(backend_from).collect())
    }

    fn awaited_lock(&mut self, pid: i32) -> Result<Option<String>, PgLookupError> {
        let rows = self
            .client
            .query(
                "SELECT mode, locktype, relation::regclass::text AS relation, \
                        transactionid::text AS xid \
                 FROM pg_locks WHERE pid = $1 AND NOT granted LIMIT 1",
                &[&pid],
            )
            .map_err(|e| PgLookupError::Query(flatten(&e)))?;
        Ok(rows.first().map(|r| {
            let mode: String = r.get("mode");
            let locktype: String = r.get("locktype");
            let relation: Option<String> = r.get("relation");
            let xid: Option<String> = r.get("xid");
            match (locktype.as_str(), relation, xid) {
                ("transactionid", _, Some(xid)) => format!("{mode} on transaction {xid}"),
                (_, Some(rel), _) => format!("{mode} on {locktype} of {rel}"),
                _ => format!("{mode} on {locktype}"),
            }
        }))
    }
}

const SELECT_BACKEND: &str = "SELECT pid, client_port, host(client_addr) AS client_host, state, \
       wait_event_type, wait_event, query, application_name, \
       EXTRACT(EPOCH FROM now() - query_start)::float8 AS query_seconds, \
       EXTRACT(EPOCH FROM now() - xact_start)::float8 AS xact_seconds, \
       pg_blocking_pids(pid) AS blocking \
  FROM pg_stat_activity";

fn backend_from(row: &postgres::Row) -> Backend {
    Backend {
        pid: row.get("pid"),
        state: row.get("state"),
        wait_event_type: row.get("wait_event_type"),
        wait_event: row.get("wait_event"),
        query: row.get("query"),
        query_seconds: row.get("query_seconds"),
        xact_seconds: row.get("xact_seconds"),
        application_name: row
            .get::<_, Option<String>>("application_name")
            .filter(|a| !a.is_empty()),
    }
}

fn same_ip(a: std::net::IpAddr, b: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    let v4 = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    v4(a) == v4(b)
}

/// The error and its causes in one line (the postgres crate puts the useful part in the source).
fn flatten(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}
