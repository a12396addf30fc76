//! TODO(stub): lag_compensation, being written.
