//! One integration-test crate, a module per feature. Every test runs the built `wtdiag` binary
//! on fixtures made by real software and checks what a user sees: table text, JSON fields,
//! exit codes.

mod attribution;
mod bad_input;
mod common;
mod fleet;
mod generated;
mod heroku;
mod kernel;
mod live;
mod live_security;
mod live_workers;
mod logs;
mod pg;
mod pg_compressed;
mod pg_managed;
mod pg_servers;
mod proxy;
mod render;
mod render_html;
mod sources;
mod watch;
mod wild;
mod worst_shapes;
