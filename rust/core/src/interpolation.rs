//! TODO(stub): interpolation, being written.
