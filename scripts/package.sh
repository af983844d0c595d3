#!/usr/bin/env bash
# Build the Debian packages (release): tether-host, tether-viewer and tether-relay, into target/debian/
# (or $CARGO_TARGET_DIR/debian/). Package metadata lives in each crate's Cargo.toml ([package.metadata.deb]);
# desktop entries, icons, the example settings and the changelogs in deploy/.
#   apt-get install ./target/debian/tether-host_*.deb      # then /etc/tether/host.toml, see README.md
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=packages.sh
. scripts/packages.sh
tether_ensure_packages "${TETHER_BUILD_PACKAGES[@]}" "${TETHER_PACKAGE_PACKAGES[@]}"
if ! cargo deb --version 2>/dev/null | grep -q "^cargo-deb 3\.8"; then
    echo "Installing cargo-deb 3.8 (builds from crates.io, a few minutes)" >&2
    cargo install --locked --quiet cargo-deb --version 3.8.0
fi
# One build of the three (dependencies compiled once), then one package each from it.
packages=(tether-host tether-viewer tether-relay)
cargo build --locked --quiet --profile deb "${packages[@]/#/-p}"
for package in "${packages[@]}"; do
    cargo deb --locked --no-build --profile deb -p "$package"
done
ls -l "${CARGO_TARGET_DIR:-target}"/debian/*.deb
