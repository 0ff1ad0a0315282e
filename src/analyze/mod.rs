//! Analysis: events in, causes and findings out. Knows nothing about text formats.

pub mod applog_join;
pub mod buckets;
pub mod endpoint_findings;
pub mod endpoints;
pub mod incident;
pub mod kernel_join;
pub mod live;
pub mod pg;
pub mod pg_join;
pub mod proxy_join;
pub mod stack;
pub mod timeline;
pub mod watch_join;
pub mod window;
pub mod worker_findings;
