//! TODO(stub): prediction, being written.
