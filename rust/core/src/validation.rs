//! TODO(stub): validation, being written.
