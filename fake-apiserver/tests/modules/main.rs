//! Integration tests that mirror the crate's modules, one file per module (`src/api/...`,
//! `src/request_info.rs`, `src/control.rs`, `src/transport.rs`), sharing the crate's one test
//! rig (`common`).

#[path = "../common/mod.rs"]
mod common;

mod control;
mod controllers;
mod handlers;
mod patch;
mod protobuf;
mod request_info;
mod store;
mod strategy;
mod transport;
mod watch;
