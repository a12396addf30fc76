//! The outside services integration tests run against (PostgreSQL, Redis, NATS, as
//! `ci/services.sh` installs and starts them): where they are, or why a test is skipped.
//!
//! A test that needs a service it cannot find is skipped (it prints why and returns),
//! unless `MMO_REQUIRE_SERVICES=1` (set by `ci/test.sh`), where a missing service fails the
//! test instead of hiding it.

use std::path::PathBuf;

/// True when `MMO_REQUIRE_SERVICES=1`: missing services fail tests.
#[must_use]
pub fn services_required() -> bool {
    std::env::var("MMO_REQUIRE_SERVICES").as_deref() == Ok("1")
}

/// The URL in the environment variable `var` (`MMO_TEST_NATS_URL`, `MMO_TEST_REDIS_URL`...),
/// or `None`: the test is skipped.
///
/// # Panics
/// When `var` is not set and services are required.
#[must_use]
pub fn service_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) => Some(url),
        Err(_) if services_required() => panic!("{var} not set but MMO_REQUIRE_SERVICES=1"),
        Err(_) => {
            println!("skipped: {var} not set");
            None
        }
    }
}

/// The installed server program `name` (`redis-server`, `nats-server`), looked for in
/// `/usr/sbin`, `/usr/bin` and `/usr/local/bin`, or `None`: the test is skipped.
///
/// # Panics
/// When it is not installed and services are required.
#[must_use]
pub fn installed_server(name: &str) -> Option<PathBuf> {
    let found = ["/usr/sbin", "/usr/bin", "/usr/local/bin"]
        .iter()
        .map(|dir| PathBuf::from(dir).join(name))
        .find(|path| path.is_file());
    if found.is_none() {
        assert!(
            !services_required(),
            "{name} not installed but MMO_REQUIRE_SERVICES=1"
        );
        println!("skipped: {name} not installed");
    }
    found
}
