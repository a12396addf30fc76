//! TODO(stub): scenario benchmarks, being written.
fn main() {}
