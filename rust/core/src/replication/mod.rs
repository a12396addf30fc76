//! TODO(stub): replication, being written.
