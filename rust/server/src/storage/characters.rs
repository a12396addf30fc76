//! Characters, their inventories and batched saves in the [`Store`](super::Store).
//!
//! Not written yet: issue 7's persistence work fills this file.
