#!/usr/bin/env bash
# Install what the packaging builds and tests need, idempotently (skips what is present; one
# apt-get update at most). Run as root (or with sudo available). Usable two ways:
#   bash controller/packaging/ci-setup.sh          # as a script
#   source controller/packaging/ci-setup.sh && heatctl_packaging_setup
# Installs: Debian's cross gcc and libc for arm64 and armhf, qemu-user, lintian, dpkg-dev,
# debootstrap, systemd (for systemd-analyze); the rustup targets aarch64-unknown-linux-gnu and
# armv7-unknown-linux-gnueabihf; cargo-deb (pinned); and a cached Debian bookworm minbase root
# (debootstrap, with adduser) for the install test, at $HEATCTL_DEB_ROOT_CACHE
# (default /var/cache/heatctl-ci/bookworm-minbase).

# cargo-deb, pinned: its metadata keys and output layout move between versions.
HEATCTL_CARGO_DEB_VERSION="${HEATCTL_CARGO_DEB_VERSION:-3.8.0}"
HEATCTL_DEB_ROOT_CACHE="${HEATCTL_DEB_ROOT_CACHE:-/var/cache/heatctl-ci/bookworm-minbase}"
# The Debian mirror debootstrap fetches from: the one this machine's apt already uses (the first
# `URIs:` of a deb822 source or the first `deb` line), unless HEATCTL_DEBIAN_MIRROR says otherwise.
heatctl_apt_mirror() {
    local uri
    uri=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | grep -v -- '-security' \
        | head -n1 | awk '{print $2}')
    [ -n "$uri" ] || uri=$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
        | grep -v -- '-security' | head -n1 | awk '{print $2}')
    printf '%s' "$uri"
}
HEATCTL_DEBIAN_MIRROR="${HEATCTL_DEBIAN_MIRROR:-$(heatctl_apt_mirror)}"

heatctl_packaging_setup() {
    local sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    local need=()
    command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || need+=(gcc-aarch64-linux-gnu)
    command -v arm-linux-gnueabihf-gcc >/dev/null 2>&1 || need+=(gcc-arm-linux-gnueabihf)
    [ -e /usr/aarch64-linux-gnu/lib/libc.so.6 ] || need+=(libc6-dev-arm64-cross)
    [ -e /usr/arm-linux-gnueabihf/lib/libc.so.6 ] || need+=(libc6-dev-armhf-cross)
    command -v qemu-aarch64 >/dev/null 2>&1 || need+=(qemu-user)
    command -v lintian >/dev/null 2>&1 || need+=(lintian)
    command -v dpkg-shlibdeps >/dev/null 2>&1 || need+=(dpkg-dev)
    command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
    command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
    command -v fakeroot >/dev/null 2>&1 || need+=(fakeroot)
    if [ ${#need[@]} -gt 0 ]; then
        echo "== apt-get install ${need[*]}"
        $sudo_cmd apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends \
            "${need[@]}" >/dev/null
    fi

    local t
    for t in aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf; do
        rustup target list --installed | grep -qx "$t" || rustup target add "$t"
    done

    if ! cargo deb --version 2>/dev/null | grep -q "$HEATCTL_CARGO_DEB_VERSION"; then
        echo "== cargo install cargo-deb $HEATCTL_CARGO_DEB_VERSION"
        cargo install cargo-deb --locked --version "=$HEATCTL_CARGO_DEB_VERSION" --quiet
    fi

    if [ ! -x "$HEATCTL_DEB_ROOT_CACHE/usr/sbin/adduser" ]; then
        echo "== debootstrap bookworm minbase -> $HEATCTL_DEB_ROOT_CACHE"
        local tmp="$HEATCTL_DEB_ROOT_CACHE.tmp"
        $sudo_cmd rm -rf "$tmp"
        $sudo_cmd mkdir -p "$(dirname "$HEATCTL_DEB_ROOT_CACHE")"
        $sudo_cmd debootstrap --variant=minbase --include=adduser bookworm "$tmp" \
            "$HEATCTL_DEBIAN_MIRROR" >/dev/null
        $sudo_cmd rm -rf "$HEATCTL_DEB_ROOT_CACHE"
        $sudo_cmd mv "$tmp" "$HEATCTL_DEB_ROOT_CACHE"
    fi
}

# Run directly: set up now.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    heatctl_packaging_setup
fi
