//! Live samples → what each worker, and each request it serves, is doing now, in the cause
//! vocabulary: its state (idle, busy, stuck), the longest time it stayed in one stack, the
//! application call site, the outbound call it waits in, the seconds left before the master's
//! timeout kills it (where the worker class means it will), and findings grouped by cause and
//! call site.
//!
//! `reading` reads stacks, `clock` the worker class's clock, `database` PostgreSQL's view,
//! `diagnosis` joins them per reading, `workers` per worker and thread, `findings` groups them;
//! `calls` names outbound calls (kept apart from [`crate::analyze::stack`] to be unified later).

pub mod calls;
mod clock;
mod database;
mod diagnosis;
mod findings;
mod reading;
mod workers;

#[cfg(test)]
mod tests;

pub use diagnosis::{
    BackendLookup, LiveContext, MemoryTrend, WorkerDiagnosis, WorkerInput, diagnose,
};
pub use findings::findings;
pub use reading::{
    Activity, StackReading, class_from_stacks, pool_threads, read_stacks, read_threads,
    serving_samples, site,
};
pub use workers::{WorkerOutcome, diagnose_samples, diagnose_worker};
