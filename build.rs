//! Build script of the root package `mmo-ffi`: generates the C header with cbindgen.
//!
//! The header is written to `$OUT_DIR/mmo.h`; `tests/integration/ffi_header.rs` compares it
//! with the committed `include/mmo.h` and fails when they differ. To refresh the committed
//! copy run `MMO_UPDATE_HEADER=1 cargo build` (the only case where this script writes into
//! the source tree).

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=rust/ffi");
    println!("cargo:rerun-if-changed=include/cbindgen.toml");
    println!("cargo:rerun-if-env-changed=MMO_UPDATE_HEADER");

    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    let mut config = cbindgen::Config::from_file(root.join("include/cbindgen.toml"))
        .expect("include/cbindgen.toml is valid");
    // Version macros from Cargo's package version, so they can never drift from it.
    let version = |name: &str| std::env::var(name).expect("set by cargo");
    config.after_includes = Some(format!(
        "\n/* Version of this library (from Cargo.toml). */\n\
         #define MMO_VERSION_MAJOR {}\n\
         #define MMO_VERSION_MINOR {}\n\
         #define MMO_VERSION_PATCH {}\n\
         #define MMO_VERSION_STRING \"{}\"",
        version("CARGO_PKG_VERSION_MAJOR"),
        version("CARGO_PKG_VERSION_MINOR"),
        version("CARGO_PKG_VERSION_PATCH"),
        version("CARGO_PKG_VERSION"),
    ));
    let header = cbindgen::Builder::new()
        .with_config(config)
        .with_src(root.join("rust/ffi/lib.rs"))
        .generate()
        .expect("cbindgen could not generate the header from rust/ffi");
    let generated = out_dir.join("mmo.h");
    header.write_to_file(&generated);
    if std::env::var_os("MMO_UPDATE_HEADER").is_some_and(|v| v == "1") {
        std::fs::copy(&generated, root.join("include/mmo.h"))
            .expect("could not write include/mmo.h");
        println!("cargo:warning=include/mmo.h refreshed from the Rust sources");
    }
}
