# shellcheck shell=bash
# System packages Tether needs, installed with apt-get only when missing. Sourced by the other scripts.
#
#   build: C toolchain for ring and zstd-sys; xcb headers for scrap's X11 capture.
#   tests: a virtual X server and the X clients the tests drive (xterm, xdotool, import for screenshots).

TETHER_BUILD_PACKAGES=(ca-certificates gcc g++ make pkg-config libxcb1-dev libxcb-shm0-dev libxcb-randr0-dev)
TETHER_TEST_PACKAGES=(xvfb xauth x11-xserver-utils xterm xfonts-base xdotool imagemagick)

tether_ensure_packages() {
    local missing=()
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        echo "Installing system packages: ${missing[*]}" >&2
        local sudo=()
        [ "$(id -u)" -eq 0 ] || sudo=(sudo)
        "${sudo[@]}" apt-get update -qq
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        echo "cargo is missing: install Rust 1.95 (rustup) first; see README.md." >&2
        return 1
    fi
}
