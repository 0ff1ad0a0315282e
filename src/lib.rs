//! wtdiag: finds out why Gunicorn workers time out.
//!
//! Data flows one way: [`input`] (files, stdin, gzip) → [`parse`] (one format each) → typed
//! events → [`analyze`] (correlate, attribute causes, rank) → [`report::Report`] →
//! [`render`] (table, JSON). [`commands`] wires a subcommand together.

pub mod analyze;
pub mod cli;
pub mod commands;
pub mod exit_code;
pub mod input;
pub mod live;
pub mod parse;
pub mod render;
pub mod report;
pub mod watch;
