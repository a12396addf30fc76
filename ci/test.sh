#!/usr/bin/env bash
# The project's test command (the README's second command, called by .ci/run).
#
# Works on a fresh Debian machine with the Rust toolchain: it installs what is missing
# (apt packages, rustup components), then runs formatting, lints and the whole test suite.
# The storage, outage, chat and relay tests run against a real PostgreSQL, Redis and NATS that
# ci/services.sh installs (if missing) and starts on loopback for the run.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

ensure_rust_component() {
    # rustfmt and clippy ship with the rustup toolchain; add them only where missing.
    local component=$1 probe=$2
    if ! cargo "$probe" --version >/dev/null 2>&1; then
        log "installing rustup component $component"
        rustup component add "$component"
    fi
}

ensure_apt_packages() {
    # Installs the Debian packages whose commands are missing (one apt-get run for all).
    local missing=() pair
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing ${missing[*]}"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
    fi
}

# C and C++ compilers for the C ABI programs (tests/c), built under ASan + UBSan with both;
# python3 for the Unreal plugin lint (ci/lint-unreal.py).
ensure_apt_packages gcc:gcc g++:g++ clang:clang clang++:clang nm:binutils python3:python3

log "toolchain"
cargo --version
rustc --version
ensure_rust_component rustfmt fmt
ensure_rust_component clippy clippy

log "cargo fmt --check"
cargo fmt --all --check

# --all-targets type-checks the benches and examples too, so no separate release build of
# them is needed (it cost 11 of CI's minutes).
log "cargo clippy (workspace, all targets, -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "deploy/: Kubernetes and Agones manifests against their schemas (ci/deploy-check.sh)"
bash ci/deploy-check.sh

log "PostgreSQL, Redis and NATS for the storage, outage, chat and relay tests (ci/services.sh)"
services_dir=$(mktemp -d /tmp/mmo-services.XXXXXX)
trap 'bash ci/services.sh stop "$services_dir"' EXIT
bash ci/services.sh start "$services_dir" >/dev/null
# shellcheck disable=SC1091
. "$services_dir/env"
# Tests that need PostgreSQL, Redis or NATS fail (instead of skipping) when they are missing here.
export MMO_REQUIRE_SERVICES=1

log "cargo test (workspace)"
cargo test --workspace --locked

log "miri: C ABI unit tests checked for undefined behaviour"
bash ci/miri.sh

log "all checks passed"
