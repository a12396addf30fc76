//! The Unreal plugin without the engine (`unreal-plugin/MMOCore`):
//!
//! - every plugin `.cpp` (the Automation specs too, with `WITH_DEV_AUTOMATION_TESTS=0`) is
//!   compiled with g++ and clang++ (`-std=c++20 -Wall -Wextra -Wpedantic -Werror`) against
//!   the engine stand-in in `tests/unreal-shim` and the repository's `include/`, linked with
//!   a driver (`tests/unreal-shim/driver/plugin_driver.cpp`) and the static library under
//!   ASan + UBSan, and run against a real server: module ABI check, connect, components fed
//!   by routed events, movement, the stats overlay, a refused inventory move, disconnect;
//! - `tests/c/unreal_logic_client.cpp`, which uses only the plugin's engine-free helpers
//!   (`Private/Logic`) and `mmo.hpp`, checks the unit and yaw conversions and routes a real
//!   two-client session's events to its handlers, with both compilers under the sanitizers.
//!
//! The `.generated.h` files the plugin includes are written here from each header, the way
//! UHT names them (`CURRENT_FILE_ID` and the `GENERATED_BODY` line), defining `Super` and
//! `StaticClass()`. This proves our code and our use of the library, not Unreal API
//! conformance (see tests/unreal-shim/README.md). A missing compiler fails under CI and is
//! skipped with a note elsewhere, as in `c_programs.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

use mmo_net::auth::StaticTokens;

use super::c_programs::{self, NATIVE_LIBS, Program, SANITIZE, WARNINGS};
use super::live_server::{assert_players_leave, describe, run_watched, runtime, start_server};

/// The plugin's runtime module sources.
const MODULE_DIR: &str = "unreal-plugin/MMOCore/Source/MMOCore";
/// The engine stand-in.
const SHIM_DIR: &str = "tests/unreal-shim";
/// The driver that exercises the plugin's classes.
const DRIVER: &str = "tests/unreal-shim/driver/plugin_driver.cpp";

/// Every `.cpp` under `dir`, sorted.
fn cpp_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("read {}: {e}", d.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "cpp") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// The stand-in `<Stem>.generated.h` of one plugin header: `CURRENT_FILE_ID` and, for each
/// `UCLASS`/`USTRUCT`, the macro its `GENERATED_BODY()` line names.
fn generated_header(stem: &str, header: &str) -> String {
    let file_id = format!("FID_{stem}_h");
    let mut out = format!(
        "// Written by tests/integration/unreal_plugin.rs (UHT stand-in).\n#undef CURRENT_FILE_ID\n#define CURRENT_FILE_ID {file_id}\n"
    );
    // (is a class, name, base) of the reflected type being read.
    let mut pending: Option<bool> = None;
    let mut current: Option<(bool, String, Option<String>)> = None;
    for (index, line) in header.lines().enumerate() {
        let t = line.trim();
        if t.starts_with("UCLASS(") || t.starts_with("USTRUCT(") {
            pending = Some(t.starts_with("UCLASS("));
            continue;
        }
        if let Some(is_class) = pending
            && (t.starts_with("class ") || t.starts_with("struct "))
        {
            let words: Vec<&str> = t
                .split(|c: char| c.is_whitespace() || c == ':' || c == '{')
                .filter(|w| !w.is_empty())
                .collect();
            let name_at = if words.get(1).is_some_and(|w| w.ends_with("_API")) {
                2
            } else {
                1
            };
            let name = words
                .get(name_at)
                .expect("a reflected type's name")
                .to_string();
            let base = words
                .iter()
                .position(|w| *w == "public")
                .and_then(|i| words.get(i + 1))
                .map(|w| w.trim_end_matches(',').to_string());
            current = Some((is_class, name, base));
            pending = None;
            continue;
        }
        if t.starts_with("GENERATED_BODY(") {
            let (is_class, name, base) = current.take().unwrap_or_else(|| {
                panic!(
                    "{stem}.h:{}: GENERATED_BODY outside a UCLASS/USTRUCT",
                    index + 1
                )
            });
            let sup = base
                .map(|b| format!("using Super = {b}; "))
                .unwrap_or_default();
            let body = if is_class {
                format!(
                    "public: {sup}static UClass *StaticClass() {{ static UClass ShimClass; return &ShimClass; }} private:"
                )
            } else {
                format!(
                    "{sup}static UClass *StaticStruct() {{ static UClass ShimStruct; return &ShimStruct; }}"
                )
            };
            out.push_str(&format!(
                "// {name}\n#define {file_id}_{}_GENERATED_BODY {body}\n",
                index + 1
            ));
        }
    }
    out
}

/// Writes the `.generated.h` of every public header into `dir`.
fn write_generated_headers(root: &Path, dir: &Path) {
    std::fs::create_dir_all(dir).expect("create the generated headers directory");
    let public = root.join(MODULE_DIR).join("Public");
    let mut written = 0;
    for entry in std::fs::read_dir(&public).expect("read Public/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "h") {
            let stem = path
                .file_stem()
                .expect("stem")
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(&path).expect("read a header");
            std::fs::write(
                dir.join(format!("{stem}.generated.h")),
                generated_header(&stem, &text),
            )
            .expect("write a generated header");
            written += 1;
        }
    }
    assert!(
        written >= 8,
        "only {written} public headers in {}",
        public.display()
    );
}

/// Compiles every plugin source and the driver with `compiler`, links them with `lib`, and
/// returns the executable.
fn build_plugin(compiler: &str, lib: &Path, out_dir: &Path) -> PathBuf {
    let root = c_programs::repo_root();
    let generated = out_dir.join("generated");
    write_generated_headers(&root, &generated);
    let module = root.join(MODULE_DIR);
    let sources = cpp_files(&module);
    let names: Vec<String> = sources
        .iter()
        .map(|p| {
            p.strip_prefix(&module)
                .expect("under the module")
                .display()
                .to_string()
        })
        .collect();
    for expected in [
        "Private/MMONetSubsystem.cpp",
        "Private/MMOCoreModule.cpp",
        "Private/CombatComponent.cpp",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} not found among {names:?}"
        );
    }
    assert!(
        names.iter().any(|n| n.starts_with("Private/Tests/")),
        "no Automation spec among {names:?}"
    );

    let obj_dir = out_dir.join(format!("obj-{compiler}"));
    std::fs::create_dir_all(&obj_dir).expect("create the object directory");
    let mut objects = Vec::new();
    for source in sources.iter().chain(std::iter::once(&root.join(DRIVER))) {
        let stem = source
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .into_owned();
        let object = obj_dir.join(format!("{stem}.o"));
        let out = Command::new(compiler)
            .current_dir(&root)
            .arg("-std=c++20")
            .args(WARNINGS)
            .args(SANITIZE)
            .args(["-DMMOCORE_API=", "-DWITH_DEV_AUTOMATION_TESTS=0"])
            .arg(format!("-I{SHIM_DIR}"))
            .arg("-Iinclude")
            .arg("-Itests/c")
            .arg(format!("-I{MODULE_DIR}/Public"))
            .arg(format!("-I{MODULE_DIR}/Private"))
            .arg(format!("-I{}", generated.display()))
            .arg("-c")
            .arg(source)
            .arg("-o")
            .arg(&object)
            .output()
            .expect("run the compiler");
        assert!(
            out.status.success(),
            "{compiler} failed on {}:\n{}",
            source.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        objects.push(object);
    }
    let exe = out_dir.join(format!("plugin_driver-{compiler}"));
    let out = Command::new(compiler)
        .args(SANITIZE)
        .args(&objects)
        .arg(lib)
        .args(NATIVE_LIBS)
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("run the linker");
    assert!(
        out.status.success(),
        "{compiler} could not link the plugin with {}:\n{}",
        lib.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// The compilers present (g++, clang++); fails under CI when one is missing.
fn compilers() -> Vec<&'static str> {
    let in_ci = std::env::var_os("CI").is_some();
    let mut found = Vec::new();
    for (c, cpp) in [("gcc", "g++"), ("clang", "clang++")] {
        if c_programs::have(cpp) {
            found.push(c);
        } else {
            assert!(!in_ci, "{cpp} is missing under CI: ci/test.sh installs it");
            println!("note: {cpp} not found, its build is skipped");
        }
    }
    found
}

/// The run passed: exit 0, the closing "N passed, 0 failed" line and the summary line.
fn assert_passed(output: &std::process::Output, summary_prefix: &str, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let description = format!("{what}: {}", describe(output));
    print!("{what}: {stdout}");
    let closing = stdout
        .lines()
        .rev()
        .find(|l| l.contains(" passed, "))
        .unwrap_or("");
    assert!(
        output.status.success()
            && closing.ends_with(" 0 failed")
            && !closing.starts_with("0 passed"),
        "closing line {closing:?}\n{description}"
    );
    stdout
        .lines()
        .find(|l| l.starts_with(summary_prefix))
        .unwrap_or_else(|| panic!("no {summary_prefix:?} line\n{description}"))
        .to_owned()
}

#[test]
fn every_plugin_source_compiles_against_the_shim_links_and_drives_a_real_session() {
    let lib = c_programs::static_library();
    let out_dir = c_programs::profile_dir().join("unreal-tests");
    std::fs::create_dir_all(&out_dir).expect("create the output directory");
    let runtime = runtime();
    let token = "unreal-plugin";
    let server = start_server(&runtime, StaticTokens::new().with(token, "plugin"));
    let args = [
        "127.0.0.1".to_owned(),
        server.local_addr().port().to_string(),
        server.fingerprint().to_hex(),
        token.to_owned(),
    ];
    let mut ran = 0;
    for compiler in compilers() {
        let driver = if compiler == "gcc" { "g++" } else { "clang++" };
        let exe = build_plugin(driver, &lib, &out_dir);
        let (out, most_players) = run_watched(&exe, &args, &runtime, &server);
        let summary = assert_passed(&out, "plugin_driver: ok ", driver);
        assert!(summary.contains("refusal=inventory_bad_slot"), "{summary}");
        assert_eq!(most_players, 1, "the server never had the plugin's player");
        assert_players_leave(&runtime, &server);
        ran += 1;
    }
    assert!(ran > 0, "no C++ compiler found: nothing was checked");
    runtime.block_on(server.shutdown(std::time::Duration::from_millis(500)));
}

#[test]
fn the_engine_free_helpers_convert_units_and_route_a_real_sessions_events() {
    let lib = c_programs::static_library();
    let out_dir = c_programs::profile_dir().join("unreal-tests");
    std::fs::create_dir_all(&out_dir).expect("create the output directory");
    let runtime = runtime();
    let tokens = StaticTokens::new()
        .with("logic-a", "ana")
        .with("logic-b", "ben");
    let server = start_server(&runtime, tokens);
    let args = [
        "127.0.0.1".to_owned(),
        server.local_addr().port().to_string(),
        server.fingerprint().to_hex(),
        "logic-a".to_owned(),
        "logic-b".to_owned(),
    ];
    let root = c_programs::repo_root();
    let mut ran = 0;
    for compiler in compilers() {
        let exe = compile_logic_client(compiler, &root, &lib, &out_dir);
        let (out, most_players) = run_watched(&exe, &args, &runtime, &server);
        let summary = assert_passed(&out, "unreal_logic_client: ok ", compiler);
        assert!(summary.contains(" damage=12 "), "{summary}");
        assert_eq!(most_players, 2, "the server never had both players");
        assert_players_leave(&runtime, &server);
        ran += 1;
    }
    assert!(ran > 0, "no C++ compiler found: nothing was checked");
    runtime.block_on(server.shutdown(std::time::Duration::from_millis(500)));
}

/// Builds tests/c/unreal_logic_client.cpp (C++17, no exceptions, no RTTI) under ASan + UBSan
/// with the plugin's `Private/` (where `Logic/` lives) on the include path.
fn compile_logic_client(compiler: &str, root: &Path, lib: &Path, out_dir: &Path) -> PathBuf {
    let program = Program {
        source: "tests/c/unreal_logic_client.cpp",
        std: "-std=c++17",
    };
    let driver = if compiler == "gcc" { "g++" } else { "clang++" };
    let exe = out_dir.join(format!("unreal_logic_client-{compiler}"));
    let out = Command::new(driver)
        .current_dir(root)
        .arg(program.std)
        .args(WARNINGS)
        .args(SANITIZE)
        .args(["-fno-exceptions", "-fno-rtti"])
        .args(["-Iinclude", "-Itests/c"])
        .arg(format!("-I{MODULE_DIR}/Private"))
        .arg(program.source)
        .arg(lib)
        .args(NATIVE_LIBS)
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("run the compiler");
    assert!(
        out.status.success(),
        "{driver} {} failed:\n{}",
        program.source,
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}
