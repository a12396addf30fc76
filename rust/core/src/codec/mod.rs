//! TODO(stub): codec, being written.
