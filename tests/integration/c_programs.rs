//! Builds the C and C++ programs in `tests/c` against `include/mmo.h` (and `mmo.hpp`) and
//! the static library, with gcc and clang, `-Wall -Wextra -Wpedantic -Werror`, under
//! AddressSanitizer + UndefinedBehaviorSanitizer, runs them, and requires their closing line
//! to report no failure.
//!
//! The static library is built by invoking `$CARGO build --lib` (plain `cargo test` does not
//! emit `libmmo.a`). A compiler that is missing fails the test under CI (where `ci/test.sh`
//! installs both) and is skipped with a printed note elsewhere.

use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `target/<profile>` of this test binary: the executable is `target/<profile>/deps/x`.
pub(crate) fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<exe>")
        .to_path_buf()
}

/// Builds the library so `libmmo.a` exists for this profile, and returns its path.
pub(crate) fn static_library() -> PathBuf {
    let dir = profile_dir();
    let release = dir.file_name().is_some_and(|n| n == "release");
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .current_dir(repo_root())
        .args(["build", "--lib", "--quiet"]);
    if release {
        cargo.arg("--release");
    }
    let status = cargo.status().expect("run cargo build --lib");
    assert!(status.success(), "cargo build --lib failed");
    let lib = dir.join("libmmo.a");
    assert!(
        lib.exists(),
        "{} missing after cargo build --lib",
        lib.display()
    );
    lib
}

/// Warnings every C and C++ program of the tests is built with (all are errors).
pub(crate) const WARNINGS: &[&str] = &["-Wall", "-Wextra", "-Wpedantic", "-Werror"];

/// Debug info, light optimisation, and ASan + UBSan stopping at the first error.
pub(crate) const SANITIZE: &[&str] = &[
    "-g",
    "-O1",
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=all",
    "-fno-omit-frame-pointer",
];

/// Native libraries a Rust static library needs on Linux (`cargo rustc -- --print
/// native-static-libs`).
pub(crate) const NATIVE_LIBS: &[&str] = &[
    "-lgcc_s",
    "-lutil",
    "-lrt",
    "-lpthread",
    "-lm",
    "-ldl",
    "-lc",
];

/// AddressSanitizer settings of every program run: leaks are errors, the first error stops.
pub(crate) const ASAN_OPTIONS: &str = "detect_leaks=1:abort_on_error=0:halt_on_error=1";
/// UBSan settings of every program run: a stack trace, and the first error stops.
pub(crate) const UBSAN_OPTIONS: &str = "print_stacktrace=1:halt_on_error=1";

pub(crate) fn have(compiler: &str) -> bool {
    Command::new(compiler)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

pub(crate) struct Program {
    pub(crate) source: &'static str,
    /// Language flag and standard.
    pub(crate) std: &'static str,
}

const PROGRAMS: &[Program] = &[
    Program {
        source: "tests/c/abi_test.c",
        std: "-std=c11",
    },
    Program {
        source: "tests/c/abi_test.cpp",
        std: "-std=c++17",
    },
    Program {
        source: "tests/c/abi_test.cpp",
        std: "-std=c++20",
    },
];

/// Compiles `program` with `compiler` (gcc or clang; g++/clang++ for C++) under ASan +
/// UBSan, checks the sanitizer runtimes are linked, and returns the executable's path.
pub(crate) fn compile(compiler: &str, program: &Program, lib: &Path, out_dir: &Path) -> PathBuf {
    let root = repo_root();
    let stem = Path::new(program.source)
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let exe = out_dir.join(format!(
        "{stem}-{compiler}-{}",
        program.std.trim_start_matches("-std=")
    ));
    let cpp = program.source.ends_with(".cpp");
    let driver = match (compiler, cpp) {
        ("gcc", true) => "g++",
        ("clang", true) => "clang++",
        (c, _) => c,
    };
    let mut cmd = Command::new(driver);
    cmd.current_dir(&root)
        .arg(program.std)
        .args(WARNINGS)
        .args(SANITIZE)
        .arg("-Iinclude")
        .arg(program.source)
        .arg(lib)
        .args(NATIVE_LIBS)
        .arg("-o")
        .arg(&exe);
    if cpp {
        cmd.args(["-fno-exceptions", "-fno-rtti"]);
    }
    let out = cmd.output().expect("run the compiler");
    assert!(
        out.status.success(),
        "{driver} {} {} failed:\n{}",
        program.std,
        program.source,
        String::from_utf8_lossy(&out.stderr)
    );
    // The sanitizer runtimes are really linked: instrumented code references them.
    let nm = Command::new("nm").arg(&exe).output().expect("run nm");
    let symbols = String::from_utf8_lossy(&nm.stdout);
    assert!(
        symbols.contains("__asan"),
        "{} has no AddressSanitizer symbols",
        exe.display()
    );
    assert!(
        symbols.contains("__ubsan"),
        "{} has no UBSan symbols",
        exe.display()
    );

    exe
}

fn build_and_run(compiler: &str, program: &Program, lib: &Path, out_dir: &Path) {
    let exe = compile(compiler, program, lib, out_dir);
    let run = Command::new(&exe)
        .env("ASAN_OPTIONS", ASAN_OPTIONS)
        .env("UBSAN_OPTIONS", UBSAN_OPTIONS)
        .output()
        .expect("run the test program");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    print!("{stdout}");
    let closing = stdout
        .lines()
        .rev()
        .find(|l| l.contains(" passed, "))
        .unwrap_or("");
    assert!(
        run.status.success() && closing.ends_with(" 0 failed") && !closing.starts_with("0 passed"),
        "{} exited with {:?}, closing line {closing:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        exe.display(),
        run.status
    );
}

#[test]
fn c_and_cpp_programs_pass_under_sanitizers_with_gcc_and_clang() {
    let lib = static_library();
    let out_dir = profile_dir().join("c-tests");
    std::fs::create_dir_all(&out_dir).expect("create the output directory");
    let in_ci = std::env::var_os("CI").is_some();
    let mut built = 0;
    for compiler in ["gcc", "clang"] {
        if !have(compiler) {
            assert!(
                !in_ci,
                "{compiler} is missing under CI: ci/test.sh installs it"
            );
            println!("note: {compiler} not found, its builds are skipped (ci/test.sh installs it)");
            continue;
        }
        for program in PROGRAMS {
            build_and_run(compiler, program, &lib, &out_dir);
            built += 1;
        }
    }
    assert!(built > 0, "no C compiler found: nothing was checked");
}
