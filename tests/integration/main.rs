//! The repository's integration tests, one binary (ripgrep's model): the whole client/server
//! loop of the sans-IO core over the test kit's simulated network, and the C ABI (C and C++
//! programs, the headless C++ client over real QUIC), and the Unreal plugin (compiled against
//! its engine shim, its engine-free logic against a real server, its lint and packaging).

mod c_programs;
mod common;
mod ffi_header;
mod gameplay_client;
mod headless_client;
mod live_server;
mod loop_determinism;
mod plugin_package;
mod reconciliation;
mod replication_loss;
mod unreal_lint;
mod unreal_plugin;
