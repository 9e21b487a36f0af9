# SPDX-License-Identifier: Apache-2.0
# Helpers for the vmtests, sourced by each test inside the guest (bash,
# errexit on). The guest is throwaway: tests may change /etc freely.

VM_PASSWORD='Aw-vm-pass-1'
VM_SSH_PORT=2222
VM_ALLOWED_PORT=7788
VM_DENIED_PORT=7789

log() { echo "[$(cut -d' ' -f1 /proc/uptime)] $*"; }
die() {
    echo "FAIL: $*"
    exit 1
}

# wait_for SECONDS COMMAND...: polls every 0.1 s until COMMAND succeeds.
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.1
    done
}

# The shipped units, started as shipped.
start_authwall() {
    systemctl start authwall-loader.service authwall-cgroupd.service
    systemctl is-active --quiet authwall-loader.service || die "authwall-loader not active"
    systemctl is-active --quiet authwall-cgroupd.service || die "authwall-cgroupd not active"
}

# The test policy: the vmtest user's logins may reach VM_ALLOWED_PORT on
# loopback and nothing else.
install_policy() {
    cat >/etc/authwall/policies.d/vmtest.toml <<TOML
[policy.vmtest]
priority = 50
match.users = ["awvm"]
[policy.vmtest.egress]
default = "deny"
allow = ["127.0.0.1 tcp $VM_ALLOWED_PORT"]
TOML
    chmod 0644 /etc/authwall/policies.d/vmtest.toml
    systemctl reload authwall-loader.service
    wait_for 10 sh -c 'authctl policy show | grep -q vmtest' || die "policy vmtest not in force after reload"
}

make_user() {
    id awvm >/dev/null 2>&1 && return 0
    useradd -m -s /bin/bash awvm
    echo "awvm:$VM_PASSWORD" | chpasswd
}

# Listeners on loopback outside any session (as services of their own).
start_listeners() {
    local p
    for p in $VM_ALLOWED_PORT $VM_DENIED_PORT; do
        systemctl is-active --quiet "vmtest-listen-$p" ||
            systemd-run --quiet --unit="vmtest-listen-$p" /bin/busybox nc -ll -p "$p" -e /bin/true
    done
    wait_for 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$VM_DENIED_PORT" || die "listeners not up"
}

# sshd with the distribution's PAM stack for sshd, into which
# pam-auth-update has put pam_authwall (after pam_systemd).
start_sshd() {
    DEBIAN_FRONTEND=noninteractive pam-auth-update --enable authwall
    grep -n 'pam_systemd\|pam_authwall' /etc/pam.d/common-session
    local sd aw
    sd=$(grep -n pam_systemd.so /etc/pam.d/common-session | cut -d: -f1 | head -1)
    aw=$(grep -n pam_authwall.so /etc/pam.d/common-session | cut -d: -f1 | head -1)
    [ -n "$aw" ] || die "pam-auth-update did not add pam_authwall to common-session"
    [ -n "$sd" ] && [ "$aw" -gt "$sd" ] || die "pam_authwall is not after pam_systemd in common-session"
    # The non-interactive stack (cron, at, sudo, the user manager) arms the
    # user layer only.
    grep -q 'pam_authwall.so .*user_only' /etc/pam.d/common-session-noninteractive ||
        die "pam-auth-update did not add pam_authwall ... user_only to common-session-noninteractive"
    systemctl is-active --quiet vmtest-sshd && return 0
    mkdir -p /run/sshd
    cat >/etc/ssh/vmtest_sshd_config <<CONF
Port $VM_SSH_PORT
ListenAddress 127.0.0.1
UsePAM yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
PermitRootLogin no
CONF
    systemd-run --quiet --unit=vmtest-sshd -p Type=notify /usr/sbin/sshd -D -e -f /etc/ssh/vmtest_sshd_config
    wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$VM_SSH_PORT" || die "sshd not listening"
}

setup_world() {
    start_authwall
    install_policy
    make_user
    start_listeners
    start_sshd
}

# What runs as the user inside the SSH login: reports its cgroup and two
# connects, then holds the session until /tmp/vmtest-release-TAG exists.
# While holding, it optionally probes the denied port every 50 ms and logs
# each outcome (for "enforcement never lapses").
cat >/tmp/vmtest-session <<'SCRIPT'
#!/bin/bash
tag=$1 probe=${2:-no}
try() { if out=$(bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>&1); then echo ok; else echo "refused: ${out##*: }"; fi; }
echo "cgroup=$(cut -d: -f3 /proc/self/cgroup)"
echo "allowed=$(try 7788)"
echo "denied=$(try 7789)"
echo "ready"
while [ ! -e /tmp/vmtest-release-$tag ]; do
    if [ "$probe" = probe ]; then echo "probe $(date +%s.%N) $(try 7789)"; fi
    sleep 0.05
done
echo "released"
SCRIPT
chmod 0755 /tmp/vmtest-session

# ssh_login TAG [probe]: a password login of awvm over sshd that runs
# vmtest-session; its output goes to /tmp/vmtest-out-TAG. Returns once the
# session reported "ready". SSH_PID is the ssh client.
ssh_login() {
    local tag=$1
    rm -f "/tmp/vmtest-release-$tag" "/tmp/vmtest-out-$tag"
    sshpass -p "$VM_PASSWORD" ssh -p $VM_SSH_PORT -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o LogLevel=ERROR -o PreferredAuthentications=password -o PubkeyAuthentication=no \
        awvm@127.0.0.1 /tmp/vmtest-session "$tag" "${2:-no}" >"/tmp/vmtest-out-$tag" 2>&1 &
    SSH_PID=$!
    wait_for 60 bash -c "grep -q '^ready' /tmp/vmtest-out-$tag || ! kill -0 $SSH_PID" || true
    grep -q '^ready' "/tmp/vmtest-out-$tag" || {
        journalctl --no-pager -n 20 -u vmtest-sshd
        cat "/tmp/vmtest-out-$tag"
        die "the SSH login did not come up"
    }
    cat "/tmp/vmtest-out-$tag"
}

# ssh_logout TAG: ends the session normally (the shell exits, sshd closes
# the PAM session).
ssh_logout() {
    touch "/tmp/vmtest-release-$1"
    wait "$SSH_PID" || die "ssh exited with $?"
}

session_value() { grep "^$2=" "/tmp/vmtest-out-$1" | head -1 | cut -d= -f2-; }

# The record of awvm's session (JSON), from the run directory.
awvm_record() { jq -c 'select(.user == "awvm")' /run/authwall/sessions/*.json 2>/dev/null | head -1; }
awvm_session_id() { authctl sessions --json | jq -r '.sessions[] | select(.user == "awvm") | .id' | head -1; }
in_sessions_map() { authctl sessions --json | jq -e --argjson id "$1" '.sessions[] | select(.id == $id)' >/dev/null; }
cgroup_id_of() { stat -c %i "$1"; }
# has_event ID EVENT: the journal has authwall's EVENT record for session ID.
has_event() { journalctl --no-pager -q -o cat AUTHWALL_SESSION="$1" AUTHWALL_EVENT="$2" | grep -q .; }
export -f has_event

# --- For the escape tests: a second user no policy claims (the control),
# commands run inside a real SSH login, and a probe both users can run.
make_free_user() {
    id awfree >/dev/null 2>&1 && return 0
    useradd -m -s /bin/bash awfree
    echo "awfree:$VM_PASSWORD" | chpasswd
}

# ssh_run USER COMMAND: runs COMMAND in a password login of USER over sshd
# (the whole PAM session stack, pam_systemd and pam_authwall included);
# prints its output (stderr too).
ssh_run() {
    sshpass -p "$VM_PASSWORD" ssh -p $VM_SSH_PORT -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o LogLevel=ERROR -o PreferredAuthentications=password -o PubkeyAuthentication=no \
        "$1@127.0.0.1" "$2" 2>&1
}

# /tmp/vmtest-try PORT: "ok" when a TCP connect to 127.0.0.1:PORT works,
# else "refused: <the error>".
cat >/tmp/vmtest-try <<'SCRIPT'
#!/bin/bash
if out=$(bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>&1); then echo ok; else echo "refused: ${out##*: }"; fi
SCRIPT
chmod 0755 /tmp/vmtest-try
