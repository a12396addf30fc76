//! Runs the Unreal Header Tool lint (`ci/lint-unreal.py`) as a real process: the clean
//! fixture tree passes, each broken fixture tree (`tests/unreal-lint-fixtures/<rule-id>/`)
//! is reported under exactly its rule and names its offending file, and the plugin itself
//! (`unreal-plugin/MMOCore`) passes when it exists in the tree.
//!
//! python3 missing fails the tests under CI (where `ci/test.sh` installs it) and skips them
//! with a printed note elsewhere.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::c_programs::{have, repo_root};

/// Each rule the lint documents, with the file its broken fixture must be reported in
/// (relative to the fixture's root).
const FIXTURES: &[(&str, &str)] = &[
    ("generated-body", "Source/Fixture/Public/FixtureActor.h"),
    (
        "generated-include-last",
        "Source/Fixture/Public/FixtureActor.h",
    ),
    ("rpc-implementation", "Source/Fixture/Public/FixtureActor.h"),
    ("onrep-exists", "Source/Fixture/Public/FixtureActor.h"),
    (
        "replicated-registered",
        "Source/Fixture/Public/FixtureActor.h",
    ),
    ("api-macro", "Source/Fixture/Public/FixtureActor.h"),
    ("uplugin", "Fixture.uplugin"),
];

fn fixtures_dir() -> PathBuf {
    repo_root().join("tests/unreal-lint-fixtures")
}

/// Whether python3 can run; panics under CI when it cannot.
fn python_available() -> bool {
    if have("python3") {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "python3 is missing under CI: ci/test.sh installs it"
    );
    println!("note: python3 not found, the Unreal lint tests are skipped (ci/test.sh installs it)");
    false
}

fn lint(args: &[&Path]) -> Output {
    Command::new("python3")
        .arg(repo_root().join("ci/lint-unreal.py"))
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("run python3 ci/lint-unreal.py")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// One finding line `path:line: rule-id: message`, split into (path, line, rule).
fn parse_finding(line: &str) -> (String, u32, String) {
    let mut parts = line.splitn(4, ':');
    let path = parts.next().unwrap_or_default().to_string();
    let number = parts.next().unwrap_or_default();
    let rule = parts.next().unwrap_or_default().trim().to_string();
    let message = parts.next().unwrap_or_default().trim();
    let number: u32 = number
        .parse()
        .unwrap_or_else(|_| panic!("finding without a line number: {line:?}"));
    assert!(number >= 1, "line numbers start at 1: {line:?}");
    assert!(!message.is_empty(), "finding without a message: {line:?}");
    (path, number, rule)
}

#[test]
fn the_clean_fixture_passes_the_lint() {
    if !python_available() {
        return;
    }
    let out = lint(&[&fixtures_dir().join("clean")]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "clean fixture reported findings:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "clean output: {}", text(&out.stdout));
}

#[test]
fn every_rule_has_a_broken_fixture_and_nothing_else_is_there() {
    if !python_available() {
        return;
    }
    let out = lint(&[Path::new("--list-rules")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let documented: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    let tested: Vec<String> = FIXTURES.iter().map(|(r, _)| r.to_string()).collect();
    assert_eq!(
        documented, tested,
        "the lint's rules and this test's table differ"
    );

    let mut on_disk: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("read tests/unreal-lint-fixtures")
        .map(|e| {
            e.expect("fixture entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    on_disk.sort();
    let mut expected = tested.clone();
    expected.push("clean".to_string());
    expected.sort();
    assert_eq!(on_disk, expected, "fixture folders differ from the rules");
}

#[test]
fn each_broken_fixture_is_reported_under_exactly_its_rule() {
    if !python_available() {
        return;
    }
    for (rule, offending) in FIXTURES {
        let dir = fixtures_dir().join(rule);
        let out = lint(&[&dir]);
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(1),
            "fixture {rule}: expected exit 1\n{stdout}{}",
            text(&out.stderr)
        );
        let findings: Vec<_> = stdout.lines().map(parse_finding).collect();
        assert!(!findings.is_empty(), "fixture {rule}: no finding printed");
        for (path, line, found_rule) in &findings {
            assert_eq!(
                found_rule, rule,
                "fixture {rule} also violates {found_rule} ({path}:{line}): it must break exactly one rule"
            );
            let expected = dir.join(offending);
            assert!(
                Path::new(path) == expected || path.ends_with(offending),
                "fixture {rule}: finding names {path}, expected {offending}"
            );
        }
    }
}

#[test]
fn usage_errors_exit_with_status_2() {
    if !python_available() {
        return;
    }
    let missing = repo_root().join("tests/unreal-lint-fixtures/no-such-plugin");
    let out = lint(&[&missing]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no-such-plugin"),
        "error does not name the directory: {}",
        text(&out.stderr)
    );
    let out = lint(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("usage"), "{}", text(&out.stderr));
}

#[test]
fn the_plugin_passes_the_lint() {
    let plugin = repo_root().join("unreal-plugin/MMOCore");
    if !plugin.is_dir() {
        println!(
            "note: {} does not exist yet; the plugin lint runs once it does",
            plugin.display()
        );
        return;
    }
    if !python_available() {
        return;
    }
    let out = lint(&[&plugin]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "unreal-plugin/MMOCore has lint findings:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}
