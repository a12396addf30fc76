//! The `mmo-loadtest` binary (work in progress; see issue 4).

fn main() {}
