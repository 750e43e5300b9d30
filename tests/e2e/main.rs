//! End-to-end tests: the real `backout` binary, real components built from
//! source (`tests/build.rs`), real files in temp directories.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod c_plugin;
mod cli;
mod commands;
mod compile_cache;
mod completions;
mod crash;
mod env_toggle;
mod escapes;
mod events;
mod examples;
mod file_restore;
mod golden;
mod json_config;
mod live;
mod man_pages;
mod mirror;
mod net;
mod new;
mod pins;
mod policy;
mod qdrant;
mod readme;
mod recover;
mod registry;
mod registry_workflows;
mod release_switch;
mod report;
mod rerun;
mod rollback_site;
mod rto;
mod sandbox;
mod service_control;
mod smoke_test;
mod sqlite_restore;
mod webhook_notify;

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_backout")
}
