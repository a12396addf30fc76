//! TODO(stub): movement, being written.
