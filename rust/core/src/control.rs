//! TODO(stub): control, being written.
