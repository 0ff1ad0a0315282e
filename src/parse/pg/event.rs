//! The typed events the PostgreSQL log parser hands to its sink: one per message that matters
//! (a statement's duration, a lock wait, a deadlock, a cancel, a temporary file, an error).
//! They borrow the message's text, so a sink that keeps one copies what it needs; this keeps
//! the parser free of allocation per statement.

use chrono::{DateTime, FixedOffset};

/// One event read from a PostgreSQL log.
#[derive(Debug, Clone)]
pub struct PgEvent<'a> {
    pub time: Option<DateTime<FixedOffset>>,
    /// The backend (server process) the message is about; None when the prefix has no `%p`.
    pub pid: Option<u32>,
    /// 1-based line number of the message's first line.
    pub line: u64,
    pub user: Option<&'a str>,
    pub database: Option<&'a str>,
    pub application: Option<&'a str>,
    /// The message's first line, as evidence (`process 8794 still waiting for ...`).
    pub message: &'a str,
    pub kind: PgEventKind<'a>,
}

#[derive(Debug, Clone)]
pub enum PgEventKind<'a> {
    /// `duration: X ms  statement: ...` and its relatives.
    Statement {
        duration_ms: f64,
        phase: StatementPhase,
        /// The prepared statement (and portal) name of `execute`/`parse`/`bind`: `<unnamed>`,
        /// `_pg3_0`, `S_1/C_2`.
        prepared: Option<&'a str>,
        /// The SQL; None for a bare `duration: X ms` whose statement was not logged.
        query: Option<&'a str>,
        /// `$1 = '...', $2 = '...'` from `DETAIL:  parameters:` (PostgreSQL 16+: `Parameters:`).
        parameters: Option<&'a str>,
    },
    /// `process N still waiting for|acquired|detected deadlock while waiting for|avoided
    /// deadlock for|failed to acquire MODE on OBJECT after X ms`.
    LockWait {
        state: LockState,
        /// `ShareLock`, `AccessExclusiveLock`, ...
        mode: &'a str,
        /// `transaction 779`, `tuple (0,1) of relation 16413 of database 16385`, ...
        object: &'a str,
        wait_ms: f64,
        /// `Process(es) holding the lock: ...`
        holders: Vec<u32>,
        /// `Wait queue: ...`
        queue: Vec<u32>,
        /// `while updating tuple (0,1) in relation "app_order"`
        context: Option<&'a str>,
        statement: Option<&'a str>,
    },
    /// `ERROR:  deadlock detected` with its `Process N waits for ...` lines.
    Deadlock {
        processes: Vec<DeadlockParty<'a>>,
        context: Option<&'a str>,
        /// The statement of the process that was cancelled (the one that logged the error).
        statement: Option<&'a str>,
    },
    /// `canceling statement due to statement timeout | lock timeout | user request | conflict
    /// with recovery`.
    Cancel {
        reason: CancelReason,
        statement: Option<&'a str>,
    },
    /// `temporary file: path "...", size N`.
    TempFile {
        path: &'a str,
        size: u64,
        statement: Option<&'a str>,
    },
    /// Any other ERROR, FATAL or PANIC.
    Error {
        severity: &'static str,
        /// From the log (csvlog, jsonlog, `%e`, verbose), else from the message's wording when it
        /// is one of the common ones.
        sqlstate: Option<&'a str>,
        /// True when the log did not say and `sqlstate` was read from the message's wording
        /// (PostgreSQL's sources map it to that code).
        sqlstate_inferred: bool,
        message: &'a str,
        detail: Option<&'a str>,
        statement: Option<&'a str>,
    },
}

/// Which protocol step a duration measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementPhase {
    /// Simple query protocol: `statement:`.
    Statement,
    /// Extended protocol: `execute NAME:` (or `execute fetch from NAME:`).
    Execute,
    Parse,
    Bind,
    /// auto_explain: `duration: X ms  plan:`.
    Plan,
    /// A bare `duration: X ms` (log_duration), with the text of the statement the same backend
    /// logged before it, when it did.
    Duration,
    /// `fastpath function call`.
    Fastpath,
    /// A bare `duration: X ms` with no statement logged before it, in a log where other bare
    /// durations do follow their statements (log_statement on): the parse and bind steps of
    /// the extended protocol, which log_statement does not log.
    Unpaired,
}

impl StatementPhase {
    pub fn name(self) -> &'static str {
        match self {
            StatementPhase::Statement => "statement",
            StatementPhase::Execute => "execute",
            StatementPhase::Parse => "parse",
            StatementPhase::Bind => "bind",
            StatementPhase::Plan => "plan",
            StatementPhase::Duration => "duration",
            StatementPhase::Fastpath => "fastpath",
            StatementPhase::Unpaired => "unpaired",
        }
    }

    /// True for the steps that time a whole statement run (not parse or bind alone).
    pub fn is_execution(self) -> bool {
        !matches!(
            self,
            StatementPhase::Parse | StatementPhase::Bind | StatementPhase::Unpaired
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LockState {
    Waiting,
    Acquired,
    DeadlockDetected,
    Avoided,
    Failed,
}

impl LockState {
    pub fn name(self) -> &'static str {
        match self {
            LockState::Waiting => "waiting",
            LockState::Acquired => "acquired",
            LockState::DeadlockDetected => "deadlock_detected",
            LockState::Avoided => "avoided",
            LockState::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CancelReason {
    StatementTimeout,
    LockTimeout,
    UserRequest,
    RecoveryConflict,
}

impl CancelReason {
    pub fn name(self) -> &'static str {
        match self {
            CancelReason::StatementTimeout => "statement_timeout",
            CancelReason::LockTimeout => "lock_timeout",
            CancelReason::UserRequest => "user_request",
            CancelReason::RecoveryConflict => "recovery_conflict",
        }
    }
}

/// One process of a deadlock report.
#[derive(Debug, Clone)]
pub struct DeadlockParty<'a> {
    pub pid: u32,
    /// `ShareLock on transaction 784`
    pub waits_for: &'a str,
    pub blocked_by: Option<u32>,
    /// `Process N: ...` (may span lines).
    pub statement: Option<&'a str>,
}
