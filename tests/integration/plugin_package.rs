//! Runs `ci/package-plugin.sh` as a real process with the static library this test build
//! makes (`--lib`), into a fresh folder under `target/<profile>/` (`--out`), and checks the
//! drop-in layout: the plugin tree copied whole, the header pair and the library at the
//! paths `MMOCoreRust.Build.cs` reads, and a zip listing exactly the folder's files (read
//! from the zip's central directory here, no unzip tool needed).
//!
//! The lint's clean fixture tree is packaged always; the real plugin
//! (`unreal-plugin/MMOCore`) is packaged when it exists (skipped with a note before that).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::c_programs::{profile_dir, repo_root, static_library};

/// Where `MMOCoreRust.Build.cs` expects this host's library, relative to the plugin root.
fn host_library_path() -> &'static str {
    if cfg!(target_os = "macos") {
        "Source/ThirdParty/MMOCoreRust/lib/Mac/libmmo.a"
    } else if cfg!(windows) {
        "Source/ThirdParty/MMOCoreRust/lib/Win64/mmo.lib"
    } else {
        "Source/ThirdParty/MMOCoreRust/lib/Linux/libmmo.a"
    }
}

fn host_platform() -> &'static str {
    if cfg!(target_os = "macos") {
        "Mac"
    } else if cfg!(windows) {
        "Win64"
    } else {
        "Linux"
    }
}

/// A fresh, empty output folder for one test.
fn fresh_out_dir(name: &str) -> PathBuf {
    let dir = profile_dir().join("plugin-package-tests").join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("remove the previous test output");
    }
    dir
}

fn package(args: &[&Path]) -> Output {
    Command::new("bash")
        .arg(repo_root().join("ci/package-plugin.sh"))
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("run bash ci/package-plugin.sh")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every file under `root`, as `/`-separated paths relative to `root`.
fn files_under(root: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read a packaged folder") {
            let path = entry.expect("folder entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(root).expect("under the root");
                let parts: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                found.insert(parts.join("/"));
            }
        }
    }
    found
}

fn u16_at(bytes: &[u8], at: usize) -> usize {
    usize::from(u16::from_le_bytes([bytes[at], bytes[at + 1]]))
}

fn u32_at(bytes: &[u8], at: usize) -> usize {
    let v = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    usize::try_from(v).expect("32-bit zip offsets fit in usize")
}

/// The file names (not folder entries) in a zip's central directory.
fn zip_file_names(zip: &[u8]) -> BTreeSet<String> {
    const END_SIGNATURE: [u8; 4] = [0x50, 0x4b, 0x05, 0x06];
    const ENTRY_SIGNATURE: [u8; 4] = [0x50, 0x4b, 0x01, 0x02];
    let end = (0..zip.len().saturating_sub(21))
        .rev()
        .find(|&i| zip[i..i + 4] == END_SIGNATURE)
        .expect("zip end-of-central-directory record");
    let count = u16_at(zip, end + 10);
    let mut at = u32_at(zip, end + 16);
    let mut names = BTreeSet::new();
    for _ in 0..count {
        assert_eq!(
            zip[at..at + 4],
            ENTRY_SIGNATURE,
            "zip central directory entry"
        );
        let name_len = u16_at(zip, at + 28);
        let extra_len = u16_at(zip, at + 30);
        let comment_len = u16_at(zip, at + 32);
        let name = String::from_utf8_lossy(&zip[at + 46..at + 46 + name_len]).into_owned();
        if !name.ends_with('/') {
            names.insert(name);
        }
        at += 46 + name_len + extra_len + comment_len;
    }
    names
}

/// `[workspace.package] version` of Cargo.toml (a line scan: the only key read here).
fn workspace_version() -> String {
    let manifest =
        std::fs::read_to_string(repo_root().join("Cargo.toml")).expect("read Cargo.toml");
    let mut section = "";
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
        } else if section == "[workspace.package]" && line.starts_with("version") {
            return line
                .split('"')
                .nth(1)
                .expect("version = \"x.y.z\"")
                .to_string();
        }
    }
    panic!("Cargo.toml has no [workspace.package] version");
}

/// Packages `plugin` and checks the layout and the zip; returns the packaged folder.
fn package_and_check(plugin: &Path, test_name: &str) -> PathBuf {
    let lib = static_library();
    let out = fresh_out_dir(test_name);
    let result = package(&[
        Path::new("--plugin"),
        plugin,
        Path::new("--lib"),
        &lib,
        Path::new("--out"),
        &out,
    ]);
    assert!(
        result.status.success(),
        "package-plugin.sh failed:\n{}{}",
        text(&result.stdout),
        text(&result.stderr)
    );
    let uplugin = std::fs::read_dir(plugin)
        .expect("read the plugin folder")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|e| e == "uplugin"))
        .expect("the plugin has a .uplugin");
    let name = uplugin
        .file_stem()
        .expect("file stem")
        .to_string_lossy()
        .into_owned();
    let packaged = out.join(&name);

    // The files packaging adds (they replace any copies a developer left in the tree).
    let lib_rel = host_library_path();
    let added: BTreeSet<String> = [
        "Source/ThirdParty/MMOCoreRust/include/mmo.h",
        "Source/ThirdParty/MMOCoreRust/include/mmo.hpp",
        lib_rel,
    ]
    .into_iter()
    .map(str::to_string)
    .collect();

    // The plugin tree is there, byte for byte, less Unreal's build outputs.
    let source_files: BTreeSet<String> = files_under(plugin)
        .into_iter()
        .filter(|f| !f.starts_with("Binaries/") && !f.starts_with("Intermediate/"))
        .filter(|f| !added.contains(f))
        .collect();
    let packaged_files = files_under(&packaged);
    for rel in &source_files {
        assert!(
            packaged_files.contains(rel),
            "{rel} missing from the package"
        );
        assert_eq!(
            std::fs::read(plugin.join(rel)).expect("read source file"),
            std::fs::read(packaged.join(rel)).expect("read packaged file"),
            "{rel} differs in the package"
        );
    }
    let extra: BTreeSet<&String> = packaged_files.difference(&source_files).collect();
    assert_eq!(
        extra,
        added.iter().collect(),
        "files in the package that are neither the plugin's nor added by packaging"
    );
    assert!(
        packaged_files.iter().any(|f| f.ends_with(".Build.cs")),
        "no Build.cs in the package"
    );
    assert!(packaged_files.contains(&format!("{name}.uplugin")));

    // The header pair and this host's library at the contract paths.
    for header in ["mmo.h", "mmo.hpp"] {
        let rel = format!("Source/ThirdParty/MMOCoreRust/include/{header}");
        assert_eq!(
            std::fs::read(packaged.join(&rel)).expect("packaged header"),
            std::fs::read(repo_root().join("include").join(header)).expect("repo header"),
            "{rel} is not the repository's include/{header}"
        );
    }
    assert_eq!(
        std::fs::metadata(packaged.join(lib_rel))
            .expect("packaged library")
            .len(),
        std::fs::metadata(&lib).expect("built library").len(),
        "{lib_rel} is not the library given with --lib"
    );

    // The zip holds the same files under `<Name>/`.
    let zip_path = out.join(format!(
        "{name}-{}-{}.zip",
        workspace_version(),
        host_platform()
    ));
    let zip = std::fs::read(&zip_path)
        .unwrap_or_else(|e| panic!("{} not written: {e}", zip_path.display()));
    let in_zip = zip_file_names(&zip);
    let expected_zip: BTreeSet<String> = packaged_files
        .iter()
        .map(|f| format!("{name}/{f}"))
        .collect();
    assert_eq!(in_zip, expected_zip, "zip listing differs from the folder");
    assert!(
        text(&result.stdout).contains(&zip_path.display().to_string()),
        "the script does not print the zip it made:\n{}",
        text(&result.stdout)
    );
    packaged
}

#[test]
fn packages_the_lint_clean_fixture_tree() {
    let fixture = repo_root().join("tests/unreal-lint-fixtures/clean");
    let packaged = package_and_check(&fixture, "clean-fixture");
    assert!(
        packaged
            .join("Source/LintClean/LintClean.Build.cs")
            .is_file()
    );
    assert!(
        packaged
            .join("Source/ThirdParty/MMOCoreRust/MMOCoreRust.Build.cs")
            .is_file()
    );
}

#[test]
fn packages_the_plugin() {
    let plugin = repo_root().join("unreal-plugin/MMOCore");
    if !plugin.is_dir() {
        println!(
            "note: {} does not exist yet; its packaging test runs once it does",
            plugin.display()
        );
        return;
    }
    let packaged = package_and_check(&plugin, "mmocore");
    for rel in [
        "MMOCore.uplugin",
        "Source/MMOCore/MMOCore.Build.cs",
        "Source/ThirdParty/MMOCoreRust/MMOCoreRust.Build.cs",
    ] {
        assert!(
            packaged.join(rel).is_file(),
            "{rel} missing from the package"
        );
    }
}

#[test]
fn missing_inputs_are_named_in_the_error() {
    let out = fresh_out_dir("missing-inputs");
    let absent_plugin = repo_root().join("tests/unreal-lint-fixtures/no-such-plugin");
    let result = package(&[
        Path::new("--plugin"),
        &absent_plugin,
        Path::new("--out"),
        &out,
    ]);
    assert_eq!(result.status.code(), Some(1));
    assert!(
        text(&result.stderr).contains("no-such-plugin"),
        "error does not name the plugin directory: {}",
        text(&result.stderr)
    );

    let fixture = repo_root().join("tests/unreal-lint-fixtures/clean");
    let absent_lib = out.join("no-such-libmmo.a");
    let result = package(&[
        Path::new("--plugin"),
        &fixture,
        Path::new("--lib"),
        &absent_lib,
        Path::new("--out"),
        &out,
    ]);
    assert_eq!(result.status.code(), Some(1));
    assert!(
        text(&result.stderr).contains("no-such-libmmo.a"),
        "error does not name the library: {}",
        text(&result.stderr)
    );

    let result = package(&[Path::new("--no-such-flag")]);
    assert_eq!(
        result.status.code(),
        Some(2),
        "unknown flags are usage errors"
    );
}
