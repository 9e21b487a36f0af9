# SPDX-License-Identifier: Apache-2.0
# The shipped units start the loader and cgroupd, hardened as shipped, and
# the loader attaches at the root of systemd's cgroup tree.
start_authwall
for u in authwall-loader authwall-cgroupd; do
    systemctl show -p ActiveState,SubState,Type,NoNewPrivileges,ProtectSystem,CapabilityBoundingSet "$u"
    [ "$(systemctl show -P NoNewPrivileges "$u")" = yes ] || die "$u: NoNewPrivileges is off"
    [ "$(systemctl show -P ProtectSystem "$u")" = strict ] || die "$u: ProtectSystem is not strict"
    pid=$(systemctl show -P MainPID "$u")
    grep -E '^(CapEff|CapBnd|NoNewPrivs)' "/proc/$pid/status"
    grep -q '^NoNewPrivs:[[:space:]]*1' "/proc/$pid/status" || die "$u runs without no_new_privs"
    grep -q '^Seccomp:[[:space:]]*2' "/proc/$pid/status" || die "$u runs without its seccomp filter"
    # Bounded: no CAP_SYS_MODULE (bit 16) nor CAP_SYS_PTRACE (bit 19).
    bnd=$((16#$(awk '/^CapBnd/ {print $2}' "/proc/$pid/status")))
    [ $((bnd & (1 << 16))) = 0 ] && [ $((bnd & (1 << 19))) = 0 ] || die "$u: capability bounding set too wide"
    systemd-analyze security --no-pager "$u" | tail -1
done
authctl status
authctl status --json >/tmp/status.json
# The daemons' instance locks say who runs: the units' main pids.
loader_pid=$(systemctl show -p MainPID --value authwall-loader)
cgroupd_pid=$(systemctl show -p MainPID --value authwall-cgroupd)
jq -e --argjson l "$loader_pid" --argjson c "$cgroupd_pid" \
    '.installed == true and .daemons["authwall-loader"].running and .daemons["authwall-loader"].pid == $l and
     .daemons["authwall-cgroupd"].running and .daemons["authwall-cgroupd"].pid == $c' /tmp/status.json >/dev/null ||
    die "authctl status: not installed, or the daemons holding the locks are not the units' ($loader_pid, $cgroupd_pid)"
jq -e '.kernel.cgroup2 == "/sys/fs/cgroup"' /tmp/status.json >/dev/null || die "cgroup2 mount not found at /sys/fs/cgroup"
n=$(jq '[.links[] | select(.cgroup == "/sys/fs/cgroup")] | length' /tmp/status.json)
[ "$n" -ge 9 ] || die "only $n programs attached at the cgroup root"
# Readiness really was signalled (Type=notify) and the pins are in bpffs.
[ "$(systemctl show -P Type authwall-loader)" = notify ] || die "loader unit is not Type=notify"
ls /sys/fs/bpf/authwall
log "units: ok"
