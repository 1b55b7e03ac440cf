//! End-to-end tests: a real controller and real agents (embedded, in-memory
//! bus) on a random loopback port, driven over HTTP. Nothing outside temp
//! dirs is changed: agents read and update a temp resolv.conf and files are
//! deployed into temp dirs.
#![allow(clippy::unwrap_used)] // test code: a panic is how it fails

mod common;

mod audit;
mod auth_matrix;
mod bad_input;
mod cancel;
mod connections;
mod cors;
mod drain;
mod endpoints;
mod files;
mod fleet;
mod listing;
mod lost_agent;
mod packages;
mod permissions;
mod providers;
mod signing;
mod tokens;
mod typed;
mod version;
