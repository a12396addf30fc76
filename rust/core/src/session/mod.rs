//! TODO(stub): session, being written.
