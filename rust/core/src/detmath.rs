//! TODO(stub): detmath, being written.
