#!/usr/bin/env bash
# Build heatctl for the gateways and package it: the field build (`--no-default-features`,
# no simulator) and the full build for each target, and a Debian package (cargo-deb) of the
# field build for each. Everything lands in target/dist/:
#   target/dist/<triple>/heatctl        field build, stripped (what the .deb ships)
#   target/dist/<triple>/heatctl-full   full build (with `heatctl demo`), stripped; for the
#                                       gateway targets (the host's is `cargo build --release`)
#   target/dist/heatctl_<version>_<arch>.deb
#
# Usage: controller/packaging/build.sh [TRIPLE...]
#   default triples: x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu
#                    armv7-unknown-linux-gnueabihf
# Environment:
#   HEATCTL_FULL=0         skip the full builds (only the field builds and the .debs)
#   HEATCTL_FULL=all       full builds for the host triple too
#   HEATCTL_FULL_TRIPLES   full builds only for these triples (space-separated; default: every
#                          gateway triple built). The package tests run the aarch64 one.
#   HEATCTL_DEB_REVISION   Debian revision of the packages (default 1)
#   CARGO_TARGET_DIR       where cargo builds (default target/); the results still land in
#                          target/dist/
# Needs what ci-setup.sh installs (cross gcc, rustup targets, cargo-deb).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
out="$root/target/dist"
# Where cargo builds (CARGO_TARGET_DIR when set: the test command builds the packages in a
# directory of their own, beside a running test suite, without waiting on its lock).
build_dir="${CARGO_TARGET_DIR:-$root/target}"
mkdir -p "$out"

triples=("$@")
[ ${#triples[@]} -gt 0 ] || triples=(x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf)

# Debian's cross compilers as the linkers.
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_LINKER=arm-linux-gnueabihf-gcc
# The workspace's release profile keeps line tables (for profiling); shipped binaries do not.
# Shipped binaries are optimised for size: opt-level "s" and whole-program (fat) LTO bring the
# field build from about 11 MB to under 7 MB on x86_64 (the budget is 8 MiB on every target),
# at the cost of a slower final link. Panics still unwind (the tasks' own guards keep working).
# Building with an explicit --target keeps these in target/<triple>/, apart from the host build.
export CARGO_PROFILE_RELEASE_DEBUG=0
export CARGO_PROFILE_RELEASE_STRIP=symbols
export CARGO_PROFILE_RELEASE_OPT_LEVEL=s
export CARGO_PROFILE_RELEASE_LTO=fat
export CARGO_TERM_COLOR=never

log() { printf '== %s\n' "$*"; }

for t in "${triples[@]}"; do
    mkdir -p "$out/$t"
    full=${HEATCTL_FULL:-1}
    [ "$full" = all ] || [ "$t" != x86_64-unknown-linux-gnu ] || full=0
    if [ -n "${HEATCTL_FULL_TRIPLES:-}" ] && [[ " $HEATCTL_FULL_TRIPLES " != *" $t "* ]]; then
        full=0
    fi
    if [ "$full" != 0 ]; then
        log "$t: full build"
        cargo build --release --locked --quiet -p heatctl --bins --target "$t"
        cp "$build_dir/$t/release/heatctl" "$out/$t/heatctl-full"
    fi
    # The field build last: cargo-deb packages target/<triple>/release/heatctl.
    log "$t: field build (--no-default-features)"
    cargo build --release --locked --quiet -p heatctl --bins --no-default-features --target "$t"
    cp "$build_dir/$t/release/heatctl" "$out/$t/heatctl"
    log "$t: Debian package"
    cargo deb -p heatctl --target "$t" --no-build --no-strip --quiet \
        --deb-revision "${HEATCTL_DEB_REVISION:-1}" --output "$out/"
done

log "sizes (stripped), bytes"
for t in "${triples[@]}"; do
    for b in heatctl heatctl-full; do
        [ -f "$out/$t/$b" ] && printf '%-32s %-13s %9d\n' "$t" "$b" "$(stat -c %s "$out/$t/$b")"
    done
done
ls -l "$out"/*.deb
