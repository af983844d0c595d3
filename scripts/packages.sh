# shellcheck shell=bash
# System packages Tether needs, installed with apt-get only when missing. Sourced by the other scripts.
#
#   build: C toolchain for ring and zstd-sys; xcb headers for scrap's X11 capture; libvpx (VP9) for the
#          video path (tether-video links Debian's libvpx through pkg-config).
#   tests: a virtual X server and the X clients the tests drive (xterm, xdotool, import for screenshots,
#          xclip for clipboard checks, ffmpeg for the video the video-path test plays with ffplay).
#   gui:   what the windows (eframe: winit + glow) load at run time: OpenGL/EGL through Mesa's software
#          renderer (llvmpipe, so no GPU is needed), xkbcommon, Xcursor/Xrandr/Xi.

TETHER_BUILD_PACKAGES=(ca-certificates gcc g++ make pkg-config libxcb1-dev libxcb-shm0-dev libxcb-randr0-dev
    libvpx-dev)
TETHER_GUI_PACKAGES=(libgl1 libegl1 libgl1-mesa-dri libglx-mesa0 libegl-mesa0 libxkbcommon-x11-0 libxcursor1
    libxrandr2 libxi6 libx11-xcb1 fonts-dejavu-core)
TETHER_TEST_PACKAGES=(xvfb xauth x11-xserver-utils xterm xfonts-base xdotool imagemagick xclip ffmpeg
    "${TETHER_GUI_PACKAGES[@]}")

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
