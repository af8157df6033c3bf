#!/usr/bin/env bash
# Tests of the gateway builds and the Debian packages, on what build.sh left in target/dist/:
#  - the field and full builds run under qemu-user: `heatctl check` on the example
#    configuration (aarch64, armv7), `heatctl run` controlling the plant simulator over Modbus
#    (aarch64, armv7: the cycle runs, SIGTERM writes the safe positions), and the field build
#    has no `demo`; the field builds are under the size budget;
#  - each .deb: its contents, conffiles, architecture and dependencies; lintian without errors;
#  - the packaged unit: `systemd-analyze verify` clean, `systemd-analyze security` exposure at
#    most HEATCTL_MAX_EXPOSURE;
#  - install, upgrade with the local configuration kept, remove and purge of the amd64 package
#    with dpkg inside a throw-away Debian root (a copy of the debootstrap root ci-setup.sh
#    caches), maintainer scripts and all.
# A missing tool fails the run under CI=true and skips its tests otherwise.
# Ends with the line "packaging: N passed, N failed"; exits non-zero on any failure.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
dist="$root/target/dist"
deb_root_cache="${HEATCTL_DEB_ROOT_CACHE:-/var/cache/heatctl-ci/bookworm-minbase}"
# The field build's budget on a gateway, bytes (stripped).
size_budget=$((8 * 1024 * 1024))
max_exposure="${HEATCTL_MAX_EXPOSURE:-2.0}"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)

passed=0
failed=0
skipped=0
ok() { printf 'ok      %s\n' "$*"; passed=$((passed + 1)); }
fail() { printf 'FAILED  %s\n' "$*"; failed=$((failed + 1)); }
check() { # check DESCRIPTION COMMAND...: pass when the command succeeds
    local what=$1
    shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}
# have TOOL...: true when all are installed; else fail under CI, skip otherwise.
have() {
    local t missing=()
    for t in "$@"; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "${CI:-}" = true ]; then
        fail "required under CI: ${missing[*]} (controller/packaging/ci-setup.sh installs it)"
    else
        printf 'SKIPPED %s not installed (controller/packaging/ci-setup.sh installs it)\n' "${missing[*]}"
        skipped=$((skipped + 1))
    fi
    return 1
}
timed() { # timed LABEL: print seconds since the last mark
    local now
    now=$(date +%s)
    printf '   (%s: %ss)\n' "$1" $((now - mark))
    mark=$now
}
mark=$(date +%s)
tmp=$(mktemp -d /var/tmp/heatctl-pkgtest.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

deb_of() { ls "$dist"/heatctl_"$version"-1_"$1".deb 2>/dev/null | head -1; }

# --- the builds under qemu-user -----------------------------------------------------------
example=config/substation.example.toml
declare -A qemu=([aarch64-unknown-linux-gnu]="qemu-aarch64 -L /usr/aarch64-linux-gnu"
    [armv7-unknown-linux-gnueabihf]="qemu-arm -L /usr/arm-linux-gnueabihf")
declare -A machine=([aarch64-unknown-linux-gnu]=AArch64 [armv7-unknown-linux-gnueabihf]=ARM
    [x86_64-unknown-linux-gnu]=X86-64)
for t in x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf; do
    field="$dist/$t/heatctl"
    if [ ! -x "$field" ]; then
        fail "$t: field build missing ($field): run controller/packaging/build.sh"
        continue
    fi
    size=$(stat -c %s "$field")
    check "$t: field build $size bytes, under the budget of $size_budget" [ "$size" -lt "$size_budget" ]
    check "$t: field build is an ELF for ${machine[$t]}" \
        sh -c "readelf -h '$field' | grep -q 'Machine:.*${machine[$t]}'"
    [ "$t" = x86_64-unknown-linux-gnu ] && continue
    have "${qemu[$t]%% *}" || continue
    out=$(${qemu[$t]} "$field" check --config "$example" 2>&1)
    check "$t: heatctl check on the example under qemu-user: $out" \
        sh -c "printf '%s' \"\$1\" | grep -q ': valid'" _ "$out"
    if ${qemu[$t]} "$field" demo --hours 0.1 >/dev/null 2>&1; then
        fail "$t: the field build has no demo (no simulator)"
    else
        ok "$t: the field build has no demo (no simulator)"
    fi
done
timed "qemu check"
# The shipped field builds control a plant under qemu-user: `heatctl run` (ARM, emulated) on
# the configuration `plant-sim` (the host's build) writes for itself, over Modbus TCP on
# loopback; SCADA shows the cycle count advancing and a setpoint, SIGTERM writes the safe
# positions and exits 0.
plant_sim="$root/target/release/plant-sim"
# scada_read PORT ADDRESS: one input register (0-based address) from heatctl's SCADA slave.
scada_read() {
    mbpoll -m tcp -p "$1" -a 1 -t 3 -0 -r "$2" -c 1 -1 -o 1 -q 127.0.0.1 2>/dev/null |
        sed -n 's/^\[[0-9]*\]:[[:space:]]*\(-\{0,1\}[0-9]*\).*/\1/p' | head -1
}
if [ ! -x "$plant_sim" ]; then
    fail "$plant_sim missing: cargo build --release -p heatctl-plant --bins"
elif have mbpoll; then
    # Below the kernel's ephemeral range (32768 and up by default), where an outgoing
    # connection elsewhere on the machine can hold one of the rig's ports.
    port_base=$((20000 + ($$ % 300) * 10))
    for t in aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf; do
        have "${qemu[$t]%% *}" || continue
        rig="$tmp/rig-$t"
        mkdir -p "$rig"
        port_base=$((port_base + 4000))
        "$plant_sim" --scenario "$root/hil-tests/scenarios/small.toml" --base-port "$port_base" \
            --write-config "$rig" --status-every-s 0 >"$rig/plant.log" 2>&1 &
        sim_pid=$!
        for _ in $(seq 100); do
            [ -f "$rig/heatctl.toml" ] || ! kill -0 "$sim_pid" 2>/dev/null && break
            sleep 0.2
        done
        if [ ! -f "$rig/heatctl.toml" ]; then
            fail "$t: plant-sim wrote no configuration: $(grep -v '^ ' "$rig/plant.log" | tail -5)"
            kill "$sim_pid" 2>/dev/null
            continue
        fi
        ${qemu[$t]} "$dist/$t/heatctl" run --config "$rig/heatctl.toml" --state-dir "$rig" \
            >"$rig/heatctl.log" 2>&1 &
        run_pid=$!
        scada=$((port_base + 2))
        first="" cycle="" setpoint=""
        for _ in $(seq 120); do
            kill -0 "$run_pid" 2>/dev/null || break
            cycle=$(scada_read "$scada" 26)
            setpoint=$(scada_read "$scada" 10)
            # 65535: no cycle published yet.
            [ "$cycle" = 65535 ] && cycle=""
            [ -z "$first" ] && [ -n "$cycle" ] && first=$cycle
            if [ -n "$first" ] && [ -n "$cycle" ] && [ "$cycle" != "$first" ] &&
                [ -n "$setpoint" ] && [ "$setpoint" != -32768 ]; then
                break
            fi
            sleep 0.5
        done
        check "$t: the field build under qemu-user runs the control cycle on the plant simulator (SCADA cycle count ${first:-none} -> ${cycle:-none}, setpoint ${setpoint:-none} x0.1 °C)" \
            sh -c '[ -n "$1" ] && [ -n "$2" ] && [ "$1" != "$2" ] && [ -n "$3" ] && [ "$3" != -32768 ]' _ "$first" "$cycle" "$setpoint"
        kill -TERM "$run_pid" 2>/dev/null
        rc=0
        wait "$run_pid" || rc=$?
        kill "$sim_pid" 2>/dev/null
        wait "$sim_pid" 2>/dev/null
        check "$t: SIGTERM under qemu-user: exit $rc, the safe positions written" \
            sh -c '[ "$1" -eq 0 ] && grep -q "safe positions written" "$2"' _ "$rc" "$rig/heatctl.log"
        [ "$rc" -eq 0 ] || tail -20 "$rig/heatctl.log"
    done
    timed "qemu field runs"
fi

# --- the packages -------------------------------------------------------------------------
for arch in amd64 arm64 armhf; do
    deb=$(deb_of "$arch")
    if [ -z "$deb" ]; then
        fail "$arch: no package heatctl_${version}-1_$arch.deb in $dist"
        continue
    fi
    have dpkg-deb || continue
    contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
    for f in ./usr/bin/heatctl ./etc/heatctl/heatctl.toml ./etc/heatctl/devices/substation-io.toml \
        ./usr/lib/systemd/system/heatctl.service ./usr/share/doc/heatctl/README.md \
        ./usr/share/doc/heatctl/copyright; do
        check "$arch: package holds $f" sh -c "printf '%s\n' \"\$1\" | grep -qx '$f'" _ "$contents"
    done
    check "$arch: package Architecture is $arch" \
        sh -c "[ \"\$(dpkg-deb -f '$deb' Architecture)\" = '$arch' ]"
    check "$arch: package depends on adduser and libc6" \
        sh -c "dpkg-deb -f '$deb' Depends | grep -q adduser && dpkg-deb -f '$deb' Depends | grep -q libc6"
    conffiles=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles 2>/dev/null)
    for f in /etc/heatctl/heatctl.toml /etc/heatctl/devices/heat-meter.toml \
        /etc/heatctl/devices/room-node.toml /etc/heatctl/devices/substation-io.toml \
        /etc/heatctl/devices/valve-actuator.toml; do
        check "$arch: $f is a conffile" sh -c "printf '%s\n' \"\$1\" | grep -qx '$f'" _ "$conffiles"
    done
    if have lintian; then
        lintian --fail-on error,warning --tag-display-limit 0 "$deb" >"$tmp/lintian-$arch.txt" 2>&1
        rc=$?
        check "$arch: lintian: no errors, no warnings beyond the overrides (exit $rc)" [ $rc -eq 0 ]
        grep -v 'root privileges' "$tmp/lintian-$arch.txt" | sed 's/^/   lintian: /'
    fi
done
grep -v '^#' controller/packaging/debian/lintian-overrides | sed 's/^/   lintian accepted (overridden, reasons in the file): /'
timed "packages and lintian"

# --- the unit -----------------------------------------------------------------------------
deb=$(deb_of amd64)
if [ -n "$deb" ] && have systemd-analyze dpkg-deb; then
    unit_root="$tmp/unit-root"
    mkdir -p "$unit_root/lib/systemd/system" "$unit_root/bin"
    # The host's units (targets the service is ordered against), then the package's files.
    cp -a /lib/systemd/system/. "$unit_root/lib/systemd/system/"
    cp /bin/kill "$unit_root/bin/"
    dpkg-deb -x "$deb" "$unit_root"
    out=$(systemd-analyze verify --root="$unit_root" heatctl.service 2>&1)
    rc=$?
    check "systemd-analyze verify heatctl.service: clean (exit $rc)${out:+: $out}" \
        sh -c "[ $rc -eq 0 ] && [ -z \"\$1\" ]" _ "$out"
    sec=$(systemd-analyze security --offline=yes "$unit_root/usr/lib/systemd/system/heatctl.service" 2>&1)
    score=$(printf '%s\n' "$sec" | sed -n 's/.*Overall exposure level for heatctl.service: \([0-9.]*\).*/\1/p')
    printf '%s\n' "$sec" | grep '✗' | sed 's/  */ /g; s/^/   exposed: /'
    check "systemd-analyze security: exposure ${score:-?} at most $max_exposure" \
        awk -v s="${score:-99}" -v m="$max_exposure" 'BEGIN { exit !(s + 0 <= m + 0) }'
    timed "unit"
fi

# --- install, upgrade, remove, purge in a throw-away Debian root --------------------------
if [ -n "$deb" ] && have dpkg-deb chroot; then
    if [ ! -x "$deb_root_cache/usr/sbin/adduser" ]; then
        fail "no cached Debian root at $deb_root_cache (controller/packaging/ci-setup.sh makes it)"
    elif [ "$(id -u)" -ne 0 ]; then
        if [ "${CI:-}" = true ]; then fail "the install test needs root (chroot)"; else
            printf 'SKIPPED install test: needs root (chroot)\n'
            skipped=$((skipped + 1))
        fi
    else
        r="$tmp/root"
        cp -a "$deb_root_cache" "$r"
        # The package's -2: the same files but a changed example configuration (as a release
        # that improves the shipped example would); -3: the same as -2.
        rebuild() { # rebuild REVISION SHIPPED_EXTRA_LINE OUT
            local d="$tmp/pkg-$1"
            rm -rf "$d"
            dpkg-deb -R "$deb" "$d"
            sed -i "s/^Version: .*/Version: $version-$1/" "$d/DEBIAN/control"
            [ -z "$2" ] || printf '%s\n' "$2" >>"$d/etc/heatctl/heatctl.toml"
            (cd "$d" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' |
                xargs -0 md5sum >DEBIAN/md5sums)
            dpkg-deb --root-owner-group -b "$d" "$3" >/dev/null
        }
        rebuild 2 "# shipped with $version-2" "$r/tmp/heatctl-2.deb"
        rebuild 3 "# shipped with $version-2" "$r/tmp/heatctl-3.deb"
        cp "$deb" "$r/tmp/heatctl-1.deb"

        check "install: dpkg -i succeeds, maintainer scripts run" \
            sh -c "chroot '$r' dpkg -i /tmp/heatctl-1.deb >'$tmp/dpkg-1.log' 2>&1 </dev/null"
        check "install: heatctl system user exists" sh -c "chroot '$r' getent passwd heatctl >/dev/null"
        check "install: heatctl is in group dialout" \
            sh -c "chroot '$r' id -nG heatctl | tr ' ' '\n' | grep -qx dialout"
        check "install: /var/lib/heatctl owned by heatctl, mode 750" \
            sh -c "[ \"\$(chroot '$r' stat -c '%U:%G %a' /var/lib/heatctl)\" = 'heatctl:heatctl 750' ]"
        check "install: the installed heatctl checks the installed configuration" \
            sh -c "chroot '$r' /usr/bin/heatctl check --config /etc/heatctl/heatctl.toml | grep -q ': valid'"
        check "install: the service is installed, not enabled (commission first)" \
            sh -c "[ -f '$r/usr/lib/systemd/system/heatctl.service' ] && ! ls '$r'/etc/systemd/system/*/heatctl.service >/dev/null 2>&1"

        # The technician's edit and the controller's state.
        printf '# site edit: kept across upgrades\n' >>"$r/etc/heatctl/heatctl.toml"
        printf 'demand_shift_k = 1.5\n' >"$r/var/lib/heatctl/state.toml"
        check "upgrade to -2 (shipped example changed too): dpkg -i --force-confold" \
            sh -c "chroot '$r' dpkg -i --force-confold /tmp/heatctl-2.deb >'$tmp/dpkg-2.log' 2>&1 </dev/null"
        check "upgrade: the package is at $version-2" \
            sh -c "[ \"\$(chroot '$r' dpkg-query -W -f '\${Version}' heatctl)\" = '$version-2' ]"
        check "upgrade: the local configuration is kept" \
            grep -q '^# site edit: kept across upgrades' "$r/etc/heatctl/heatctl.toml"
        check "upgrade: the new shipped configuration is beside it as .dpkg-dist" \
            grep -q "^# shipped with $version-2" "$r/etc/heatctl/heatctl.toml.dpkg-dist"
        check "upgrade to -3 (shipped configuration unchanged): no prompt, plain dpkg -i" \
            sh -c "chroot '$r' dpkg -i /tmp/heatctl-3.deb >'$tmp/dpkg-3.log' 2>&1 </dev/null"
        check "upgrade: the local configuration is still kept" \
            grep -q '^# site edit: kept across upgrades' "$r/etc/heatctl/heatctl.toml"
        check "upgrade: the control state is kept" grep -q 'demand_shift_k = 1.5' "$r/var/lib/heatctl/state.toml"

        check "remove: dpkg -r succeeds" sh -c "chroot '$r' dpkg -r heatctl >'$tmp/dpkg-r.log' 2>&1"
        check "remove: the binary is gone" [ ! -e "$r/usr/bin/heatctl" ]
        check "remove: the configuration and the state stay" \
            sh -c "[ -f '$r/etc/heatctl/heatctl.toml' ] && [ -f '$r/var/lib/heatctl/state.toml' ]"
        check "purge: dpkg -P succeeds" sh -c "chroot '$r' dpkg -P heatctl >'$tmp/dpkg-p.log' 2>&1"
        check "purge: /etc/heatctl is gone" [ ! -e "$r/etc/heatctl/heatctl.toml" ]
        check "purge: /var/lib/heatctl is gone" [ ! -e "$r/var/lib/heatctl" ]
        check "purge: the system user is kept (Debian practice)" sh -c "chroot '$r' getent passwd heatctl >/dev/null"
        for f in "$tmp"/dpkg-*.log; do sed "s|^|   $(basename "$f"): |" "$f"; done
        timed "install test"
    fi
fi

printf '\npackaging: %d passed, %d failed' "$passed" "$failed"
[ "$skipped" -eq 0 ] || printf ', %d skipped' "$skipped"
printf '\n'
[ "$failed" -eq 0 ]
