//! The repository's integration tests, one binary (ripgrep's model): the whole client/server
//! loop of the sans-IO core over the test kit's simulated network.

mod c_programs;
mod common;
mod ffi_header;
mod loop_determinism;
mod reconciliation;
mod replication_loss;
