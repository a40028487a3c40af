//! The host's integration tests, in one binary: one link instead of one
//! per area, and the test threads go from one area's tests to the next
//! instead of idling while the last long test of an area runs alone.
//!
//! `cargo test -p mcpod --test suite` runs them all; `… --test suite front::`
//! one area (each module is one, named as its file).

mod support;

mod access;
mod anywhere;
mod browser;
mod catalog;
mod cli;
mod conformance;
mod deploy;
mod front;
mod kube;
mod layers;
mod modern;
mod oauth;
mod plugin_author;
mod plugin_examples;
mod plugin_runtime;
mod real_clients;
mod sandbox;
mod security;
mod supply;
mod virtual_servers;
