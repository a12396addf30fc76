//! TODO(stub): test kit, being written.
