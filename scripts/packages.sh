# shellcheck shell=bash
# System packages Tether needs, installed with apt-get only when missing. Sourced by the other scripts.
#
#   build: C toolchain for ring and zstd-sys; xcb headers for scrap's X11 capture; libvpx (VP9) for the
#          video path (tether-video links Debian's libvpx through pkg-config); libxkbcommon for the keymap
#          enigo uploads to a Wayland compositor's virtual keyboard; libpipewire and libclang (bindgen) for
#          the desktop portal's screen, which arrives through PipeWire.
#   tests: a virtual X server and the X clients the tests drive (xterm, xdotool, import for screenshots,
#          xclip for clipboard checks, ffmpeg for the video the video-path test plays with ffplay,
#          dbus-daemon for a private bus the inventory's systemd reader is tested on, chromium to take a
#          screenshot of a saved HTML report, a headless Wayland compositor with a terminal and its
#          screenshot tool: sway, foot, grim, and wl-clipboard to read and set its clipboard; the desktop
#          portal beside it: xdg-desktop-portal with its
#          wlroots backend, pipewire and wireplumber).
#   gui:   what the windows (eframe: winit + glow) load at run time: OpenGL/EGL through Mesa's software
#          renderer (llvmpipe, so no GPU is needed), xkbcommon, Xcursor/Xrandr/Xi, and on Wayland the
#          client, cursor and EGL libraries winit opens.

TETHER_BUILD_PACKAGES=(ca-certificates gcc g++ make pkg-config libxcb1-dev libxcb-shm0-dev libxcb-randr0-dev
    libvpx-dev libxkbcommon-dev libpipewire-0.3-dev libclang-dev)
TETHER_GUI_PACKAGES=(libgl1 libegl1 libgl1-mesa-dri libglx-mesa0 libegl-mesa0 libxkbcommon-x11-0 libxcursor1
    libxrandr2 libxi6 libx11-xcb1 libwayland-client0 libwayland-cursor0 libwayland-egl1 fonts-dejavu-core)
# Packaging (scripts/package.sh) and checking the packages (.ci/run): dpkg-shlibdeps finds the libraries the
# binaries link; lintian and desktop-file-validate check the result.
TETHER_PACKAGE_PACKAGES=(dpkg-dev lintian desktop-file-utils)
TETHER_TEST_PACKAGES=(xvfb xauth x11-xserver-utils xterm xfonts-base xdotool imagemagick xclip ffmpeg
    dbus-daemon chromium sway foot grim wl-clipboard xdg-desktop-portal xdg-desktop-portal-wlr pipewire
    wireplumber postgresql "${TETHER_GUI_PACKAGES[@]}")

tether_ensure_packages() {
    local missing=()
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        # apt's many lines go to a log; a person sees one line, and the log only if it failed.
        local log="${TMPDIR:-/tmp}/tether-apt.log"
        echo "Installing ${#missing[@]} system packages (${missing[*]}); log: $log" >&2
        local sudo=()
        [ "$(id -u)" -eq 0 ] || sudo=(sudo)
        if ! { "${sudo[@]}" apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
            >"$log" 2>&1; then
            tail -n 20 "$log" >&2
            echo "Installing system packages failed; the whole log is $log" >&2
            return 1
        fi
        echo "Installed ${#missing[@]} system packages." >&2
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        echo "cargo is missing: install Rust 1.95 (rustup) first; see README.md." >&2
        return 1
    fi
}
