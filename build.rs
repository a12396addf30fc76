//! Build script of the root package `mmo-ffi`.
//!
//! For now it only tells Cargo when to re-run. The C ABI issue makes it run cbindgen into
//! `OUT_DIR`, with a test comparing the result against the committed `include/mmo.h`.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=rust/ffi");
}
