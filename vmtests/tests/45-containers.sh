# SPDX-License-Identifier: Apache-2.0
# vmtests-needs: containers
# Real container runtimes under the shipped policies/tenants.toml, with
# systemd as the cgroup manager. podman (4.3) and docker (20.10) start
# containers with --cgroup-parent=tenant-a.slice / tenant-b.slice; systemd
# nests those in tenant.slice, where the tenants' match.cgroups globs find
# them, and authwall-cgroupd enrolls each one (kind container, policy
# tenant-a / tenant-b) with nobody running an authctl command. Each
# container's first action is a connect to the other tenant's service: it
# must already be refused with EPERM, and its own service must be reached
# (the control); inbound, only the load balancer's address reaches port
# 8080; `rm -f` reaps the session. Also a plain service in a tenant slice
# (systemd-run --slice=).
#
# The containers use --network=host: their sockets live in the guest's one
# network namespace (no netavark/CNI/docker bridge, no iptables), while each
# container's cgroup is its own, and the cgroup is all the programs decide
# on. The tenants' networks are addresses on lo. The image is a busybox
# rootfs imported with `podman import` / `docker import` (no registry).
# The runtimes come from the host's root (scripts/install-deps installs them
# there without starting any daemon).
for b in podman /usr/bin/docker /usr/sbin/dockerd containerd runc crun conmon; do
    command -v $b >/dev/null || die "$b missing on the host: scripts/install-deps installs podman and docker.io"
done
# Nothing of this test may outlive it (later tests share the guest; 60-deb
# expects /etc/authwall to hold only what it knows).
containers_cleanup() {
    podman rm -f -t 0 awctr-podman-a awctr-podman-b >/dev/null 2>&1 || true
    if systemctl is-active --quiet docker.service; then
        /usr/bin/docker rm -f awctr-docker-a awctr-docker-b >/dev/null 2>&1 || true
    fi
    systemctl stop docker.service docker.socket containerd.service awctr-svc.service \
        awctr-listen-5432.service awctr-listen-6379.service awctr-listen-9191.service 2>/dev/null || true
    ip netns del awlan 2>/dev/null || true
    ip link del awctr-h 2>/dev/null || true
    ip addr del 10.100.1.5/32 dev lo 2>/dev/null || true
    ip addr del 10.100.2.5/32 dev lo 2>/dev/null || true
    if [ -e /etc/authwall/policies.d/tenants.toml ]; then
        rm -f /etc/authwall/policies.d/tenants.toml
        systemctl reload authwall-loader.service || true
    fi
}
trap containers_cleanup EXIT
start_authwall
install -m 0644 /usr/share/authwall/policies/tenants.toml /etc/authwall/policies.d/tenants.toml
systemctl reload authwall-loader.service
wait_for 10 sh -c 'authctl policy show | grep -q tenant-b' || die "tenants.toml not in force after reload"
# cgroupd reads the globs from the policy index the loader publishes.
wait_for 10 grep -q tenant-b /run/authwall/policies.json || die "the policy index has no tenant-b"
sleep 0.5

# The host's network as tenants.toml sees it: tenant A's database
# (10.100.1.5:5432) and tenant B's cache (10.100.2.5:6379) on lo, the
# services outside any session; the load balancer (10.100.0.7) and a host of
# tenant B's network (10.100.2.7) in a network namespace of their own, joined
# to the guest's by a veth pair: inbound flows over loopback start on this
# host and are admitted by design (the sender's egress policy governs them),
# so what ingress rules decide must arrive over a link.
for a in 10.100.1.5 10.100.2.5; do ip addr add $a/32 dev lo; done
ip netns add awlan
ip link add awctr-h type veth peer name awctr-l
ip link set awctr-l netns awlan
ip addr add 10.100.0.1/24 dev awctr-h
ip link set awctr-h up
ip route add 10.100.2.7/32 dev awctr-h
ip -n awlan addr add 10.100.0.7/24 dev awctr-l
ip -n awlan addr add 10.100.2.7/24 dev awctr-l
ip -n awlan link set awctr-l up
ip -n awlan link set lo up
ip -n awlan route add 10.100.1.0/24 via 10.100.0.1
for p in 5432 6379 9191; do
    systemd-run --quiet --unit="awctr-listen-$p" /bin/busybox nc -ll -p "$p" -e /bin/true
done
wait_for 5 bash -c 'exec 3<>/dev/tcp/10.100.2.5/6379' || die "listeners not up"
# The control for every refusal below: unconfined, both services answer.
bash -c 'exec 3<>/dev/tcp/10.100.1.5/5432' || die "10.100.1.5:5432 unreachable from outside any session"
bash -c 'exec 3<>/dev/tcp/10.100.2.5/6379' || die "10.100.2.5:6379 unreachable from outside any session"
DENIED="refused: Operation not permitted"

# What each workload runs: its first action is a connect to the other
# tenant's service, then one to its own; with "listen" it serves 8080 (the
# load balancer's port) and 9090; then it waits to be removed. busybox only.
# It reports to a file (for containers, in a directory they get as /out):
# cheaper to wait on under TCG than polling `podman logs`.
mkdir -p /tmp/awctr-root/bin /tmp/awctr-root/{proc,sys,dev,tmp,etc,run,out} /tmp/awctr-out
cp /bin/busybox /tmp/awctr-root/bin/busybox
for a in sh true; do ln -sf busybox /tmp/awctr-root/bin/$a; done
cat >/tmp/awctr-root/probe <<'SCRIPT'
#!/bin/busybox sh
# /probe REPORT OTHER_ADDR OTHER_PORT OWN_ADDR OWN_PORT [listen]
exec >"$1" 2>&1
shift
try() { if out=$(/bin/busybox nc -w 3 "$1" "$2" </dev/null 2>&1); then echo ok; else echo "refused: ${out##*: }"; fi; }
first=$(try "$1" "$2")
echo "first=$first"
echo "own=$(try "$3" "$4")"
if [ "${5:-}" = listen ]; then
    /bin/busybox nc -ll -p 8080 -e /bin/true &
    /bin/busybox nc -ll -p 9090 -e /bin/true &
fi
echo ready
exec /bin/busybox sleep 100000
SCRIPT
chmod 0755 /tmp/awctr-root/probe
tar -C /tmp/awctr-root -cf /tmp/awctr-root.tar .

# from SOURCE DEST PORT: a connect from the load balancer's namespace,
# bound to SOURCE: "ok", "timeout" (the SYN was dropped) or the error.
from() {
    ip netns exec awlan python3 - "$@" <<'PY'
import socket, sys
s = socket.socket()
s.settimeout(3)
s.bind((sys.argv[1], 0))
try:
    s.connect((sys.argv[2], int(sys.argv[3])))
    print("ok")
except socket.timeout:
    print("timeout")
except OSError as e:
    print(e.strerror)
PY
}

# session_of CGROUP: the JSON of the session keyed on CGROUP (a path
# relative to /sys/fs/cgroup), from `authctl sessions --json`.
session_of() {
    authctl sessions --json | jq -ce --arg cg "$1" '.sessions[] | select(.cgroup | endswith($cg))'
}

# expect_workload WHAT CGROUP POLICY OUTPUT: enrolled with POLICY, the first
# connect refused, its own service reached.
expect_workload() {
    local what=$1 cg=$2 policy=$3 out=$4 s
    log "$what: $cg"
    sed 's/^/    /' <<<"$out"
    [[ $cg == tenant.slice/tenant-${policy#tenant-}.slice/* ]] || die "$what is in $cg, not under tenant.slice/$policy.slice"
    wait_for 5 session_of "$cg" || die "$what: no session for $cg"
    s=$(session_of "$cg")
    log "$what: session $s"
    [ "$(jq -r .kind <<<"$s")" = container ] || die "$what: not a container session"
    [ "$(jq -r .policy <<<"$s")" = "$policy" ] || die "$what: policy $(jq -r .policy <<<"$s"), expected $policy"
    [ "$(jq -r .enforced <<<"$s")" = true ] || die "$what: not enforced: $(jq -r .not_enforced_reason <<<"$s")"
    local first own
    first=$(grep '^first=' <<<"$out" | cut -d= -f2-)
    own=$(grep '^own=' <<<"$out" | cut -d= -f2-)
    [ "$first" = "$DENIED" ] || die "$what: its first connect (to the other tenant) got '$first', expected '$DENIED'"
    [ "$own" = ok ] || die "$what: its own service got '$own', expected ok"
    [ "$(session_of "$cg" | jq -r .denied)" -ge 1 ] || die "$what: the session counted no denial"
    journalctl --no-pager -q -o cat AUTHWALL_SESSION="$(jq -r .id <<<"$s")" AUTHWALL_EVENT=open
}

# expect_reaped WHAT ID CGROUP: the session is gone with its cgroup.
expect_reaped() {
    wait_for 15 bash -c "! authctl sessions --json | jq -e '.sessions[] | select(.id == $2)'" ||
        die "$1: session $2 still in the map"
    [ ! -d "/sys/fs/cgroup/$3" ] || die "$1: cgroup $3 still there"
    wait_for 5 bash -c "has_event $2 reaped || has_event $2 close" || die "$1: no reaped/close event for $2"
    wait_for 5 bash -c "! ls /run/authwall/sessions/$2.json" || die "$1: the record of $2 is still there"
    log "$1: session $2 reaped"
}

# expect_ingress WHAT: the tenant-a workload listens on 8080 and 9090 (on
# every address of the guest: --network=host).
expect_ingress() {
    local got
    got=$(from 10.100.0.7 10.100.0.1 8080)
    [ "$got" = ok ] || die "$1: the load balancer to 8080 got '$got'"
    got=$(from 10.100.0.7 10.100.0.1 9090)
    [ "$got" = timeout ] || die "$1: the load balancer to 9090 got '$got', expected a dropped SYN"
    got=$(from 10.100.2.7 10.100.0.1 8080)
    [ "$got" = timeout ] || die "$1: tenant B's 10.100.2.7 to 8080 got '$got', expected a dropped SYN"
    log "$1: inbound: load balancer to 8080 ok; to 9090, and from tenant B's network, dropped"
}

# The control for the inbound refusals: from both of the namespace's
# addresses, a listener outside any session is reached.
for src in 10.100.0.7 10.100.2.7; do
    got=$(from $src 10.100.0.1 9191)
    [ "$got" = ok ] || die "from $src to a listener outside any session got '$got'"
done

# --- A plain service in a tenant slice (the slices are new here).
systemd-run --quiet --unit=awctr-svc --slice=tenant-a.slice \
    /tmp/awctr-root/probe /tmp/awctr-svc.out 10.100.2.5 6379 10.100.1.5 5432
wait_for 30 grep -q '^ready' /tmp/awctr-svc.out || die "the service did not come up: $(cat /tmp/awctr-svc.out)"
cg=$(systemctl show -P ControlGroup awctr-svc.service)
cg=${cg#/}
id=$(stat -c %i "/sys/fs/cgroup/$cg")
expect_workload "systemd-run --slice=tenant-a.slice" "$cg" tenant-a "$(cat /tmp/awctr-svc.out)"
systemctl stop awctr-svc.service
expect_reaped "systemd-run --slice=tenant-a.slice" "$id" "$cg"

# run_containers RUNTIME: tenant A's and tenant B's container, probed and
# removed. RUNTIME is podman or /usr/bin/docker (the Debian client).
run_containers() {
    local rt=$1 name=${1##*/} t out cg pid id
    shift
    declare -A ids cgs
    log "$name: import"
    $rt import /tmp/awctr-root.tar awbox:latest >/dev/null
    log "$name: run"
    $rt run -d --name "awctr-$name-a" --network=host --cgroup-parent=tenant-a.slice "$@" \
        -v /tmp/awctr-out:/out awbox:latest /probe "/out/$name-a" 10.100.2.5 6379 10.100.1.5 5432 listen >/dev/null
    $rt run -d --name "awctr-$name-b" --network=host --cgroup-parent=tenant-b.slice "$@" \
        -v /tmp/awctr-out:/out awbox:latest /probe "/out/$name-b" 10.100.1.5 5432 10.100.2.5 6379 >/dev/null
    for t in a b; do
        wait_for 60 grep -q '^ready' "/tmp/awctr-out/$name-$t" ||
            die "$name container $t did not come up: $(cat "/tmp/awctr-out/$name-$t"; $rt logs "awctr-$name-$t" 2>&1)"
        out=$(cat "/tmp/awctr-out/$name-$t")
        pid=$($rt inspect --format '{{.State.Pid}}' "awctr-$name-$t")
        cg=$(cut -d: -f3 "/proc/$pid/cgroup")
        log "$name container $t: pid $pid in $cg"
        if [ "$name" = podman ]; then
            pid=$($rt inspect --format '{{.State.ConmonPid}}' "awctr-$name-$t")
            log "podman container $t: conmon (pid $pid) in $(cut -d: -f3 "/proc/$pid/cgroup")"
        fi
        # The runtime's scope, the directory the glob matches (the OCI
        # runtime may run the process in a cgroup below it).
        cg=$(cut -d/ -f2-4 <<<"$cg")
        cgs[$t]=$cg
        ids[$t]=$(stat -c %i "/sys/fs/cgroup/$cg")
        expect_workload "$name --cgroup-parent=tenant-$t.slice" "$cg" "tenant-$t" "$out"
    done
    expect_ingress "$name tenant-a"
    # The session list as an operator sees it.
    authctl sessions
    if [ "$name" = podman ]; then $rt rm -f -t 0 "awctr-$name-a" >/dev/null; else $rt rm -f "awctr-$name-a" >/dev/null; fi
    expect_reaped "$name rm -f tenant-a" "${ids[a]}" "${cgs[a]}"
    session_of "${cgs[b]}" >/dev/null || die "$name: removing tenant A's container ended tenant B's session"
    if [ "$name" = podman ]; then $rt rm -f -t 0 "awctr-$name-b" >/dev/null; else $rt rm -f "awctr-$name-b" >/dev/null; fi
    expect_reaped "$name rm -f tenant-b" "${ids[b]}" "${cgs[b]}"
}

# docker: vfs storage, the systemd cgroup driver, no bridge and no iptables
# (daemon.json in the guest only). dockerd starts while podman runs.
mkdir -p /etc/docker
cat >/etc/docker/daemon.json <<'JSON'
{
    "storage-driver": "vfs",
    "exec-opts": ["native.cgroupdriver=systemd"],
    "bridge": "none",
    "iptables": false
}
JSON
systemctl start --no-block docker.service

# --- podman: vfs storage (the guest's root is an overlayfs), written in the
# guest only.
mkdir -p /etc/containers
cat >/etc/containers/storage.conf <<'CONF'
[storage]
driver = "vfs"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"
CONF
info=$(podman info --format '{{.Host.CgroupManager}} {{.Host.CgroupsVersion}} {{.Store.GraphDriverName}}')
log "podman: $info"
[ "${info%% *}" = systemd ] || die "podman's cgroup manager is not systemd"
run_containers podman

# --- docker
wait_for 60 /usr/bin/docker info || die "dockerd did not come up: $(journalctl --no-pager -n 20 -u docker.service)"
info=$(/usr/bin/docker info --format '{{.CgroupDriver}} {{.CgroupVersion}} {{.Driver}}')
log "docker: $info"
[ "${info%% *}" = systemd ] || die "docker's cgroup driver is not systemd"
# The guest's kernel has AppArmor, the host no apparmor_parser to load
# docker's default profile with (podman runs without one then).
run_containers /usr/bin/docker --security-opt apparmor=unconfined
log "containers: ok"
