# SPDX-License-Identifier: Apache-2.0
# The user is the boundary. A confined user (awvm: policy vmtest, only
# 127.0.0.1:7788 allowed) tries every way out of an enforced SSH login that
# a systemd host offers: the user manager (systemd-run --user in every
# form, a unit of their own, a delegated slice, a socket-activated
# service), a service left running
# after logout (with linger), cron and at. Each must be refused with EPERM;
# the same attempt by awfree, whom no policy claims, must get through (the
# control: the test can fail). Then logind's own controls, which the login
# must not break: session-status, kill-session, terminate-session,
# enable-linger, ReleaseSession.
setup_world
make_free_user
# Whatever happens, the users' cron jobs, linger and left-running services
# must not outlive this test (60-deb runs after it in the same guest).
escapes_cleanup() {
    for u in awvm awfree; do
        crontab -r -u $u 2>/dev/null || true
        loginctl disable-linger $u 2>/dev/null || true
        systemctl stop "user@$(id -u $u).service" 2>/dev/null || true
    done
}
trap escapes_cleanup EXIT
systemctl start cron.service atd.service
DENIED="refused: Operation not permitted"

# expect WHAT USER RESULT: RESULT must be EPERM for awvm and "ok" for awfree.
expect() {
    local what=$1 user=$2 got=$3 want=ok
    [ "$user" = awvm ] && want=$DENIED
    log "$what as $user: $got"
    [ "$got" = "$want" ] || die "$what as $user: got '$got', expected '$want'"
}

# Scripts the users run from inside their login (no quoting over ssh).
cat >/tmp/vmtest-esc-unit <<'SCRIPT'
#!/bin/bash
mkdir -p ~/.config/systemd/user
cat >~/.config/systemd/user/vmtest-esc.service <<UNIT
[Service]
Type=oneshot
ExecStart=/bin/sh -c '/tmp/vmtest-try 7789 > /tmp/esc-unit-$USER'
UNIT
systemctl --user daemon-reload
systemctl --user start vmtest-esc.service
cat /tmp/esc-unit-$USER
SCRIPT
cat >/tmp/vmtest-esc-scope <<'SCRIPT'
#!/bin/bash
systemd-run --user --scope --quiet /bin/bash -c 'echo "cgroup=$(cut -d: -f3 /proc/self/cgroup)"; /tmp/vmtest-try 7789'
SCRIPT
cat >/tmp/vmtest-esc-left <<'SCRIPT'
#!/bin/bash
loginctl enable-linger || exit 1
systemd-run --user --quiet --unit=vmtest-left /bin/bash -c \
    'while :; do /tmp/vmtest-try 7789 >>/tmp/esc-left-$USER; sleep 0.3; done'
SCRIPT
# A socket-activated user service: the user manager listens on $1; each
# connection starts an instance that probes the denied port.
cat >/tmp/vmtest-esc-socket <<'SCRIPT'
#!/bin/bash
mkdir -p ~/.config/systemd/user
cat >~/.config/systemd/user/vmtest-act.socket <<UNIT
[Socket]
ListenStream=127.0.0.1:$1
Accept=yes
UNIT
cat >~/.config/systemd/user/vmtest-act@.service <<UNIT
[Service]
ExecStart=/bin/sh -c '/tmp/vmtest-try 7789 > /tmp/esc-socket-$USER'
StandardInput=socket
UNIT
systemctl --user daemon-reload
systemctl --user start vmtest-act.socket
SCRIPT
cat >/tmp/vmtest-esc-cron <<'SCRIPT'
#!/bin/bash
echo '* * * * * /tmp/vmtest-try 7789 >/tmp/esc-cron-$LOGNAME 2>&1' | crontab -
echo "/tmp/vmtest-try 7789 >/tmp/esc-at-$USER 2>&1" | at now 2>/dev/null
SCRIPT
chmod 0755 /tmp/vmtest-esc-*
rm -f /tmp/esc-*

for u in awvm awfree; do
    # The login itself: enforced for awvm (the baseline the escapes try to beat).
    expect "in the login" $u "$(ssh_run $u '/tmp/vmtest-try 7789')"
    # systemd-run --user: a transient service of the user manager.
    out=$(ssh_run $u 'systemd-run --user --quiet --wait --pipe /bin/sh -c "cut -d: -f3 /proc/self/cgroup; /tmp/vmtest-try 7789"')
    [[ $(head -1 <<<"$out") == */user@$(id -u $u).service/app.slice/* ]] || die "systemd-run --user ran in $(head -1 <<<"$out")"
    expect "systemd-run --user" $u "$(tail -1 <<<"$out")"
    # A unit the user wrote, started with systemctl --user.
    expect "a user unit" $u "$(ssh_run $u /tmp/vmtest-esc-unit | tail -1)"
    # systemd-run --user --scope: systemd moves the login's own process out.
    out=$(ssh_run $u /tmp/vmtest-esc-scope)
    [[ $(head -1 <<<"$out") == cgroup=*/user@$(id -u $u).service/* ]] || die "the scope is $(head -1 <<<"$out")"
    expect "systemd-run --user --scope" $u "$(tail -1 <<<"$out")"
    # A delegated slice of the user's own.
    out=$(ssh_run $u 'systemd-run --user --quiet --wait --pipe --slice=vmesc.slice -p Delegate=yes /tmp/vmtest-try 7789')
    expect "systemd-run --user --slice -p Delegate=yes" $u "$(tail -1 <<<"$out")"
    # A socket-activated user service, activated from outside the login.
    port=7790
    [ $u = awfree ] && port=7791
    ssh_run $u "/tmp/vmtest-esc-socket $port"
    bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" || die "the user socket of $u does not accept"
    wait_for 10 test -s /tmp/esc-socket-$u || die "the socket-activated service of $u did not run"
    expect "a socket-activated user service" $u "$(cat /tmp/esc-socket-$u)"
    # A service left running after logout (linger keeps the manager).
    ssh_run $u /tmp/vmtest-esc-left || die "enable-linger or systemd-run failed for $u"
    # cron and at, scheduled from inside the login.
    ssh_run $u /tmp/vmtest-esc-cron
done

# Both users are logged out now; their left-running services go on.
# logind lists a logged-out session as "closing" until its scope is empty;
# under TCG on a busy machine that can take a while.
if ! wait_for 30 bash -c '! loginctl list-sessions --no-legend | grep -q "awvm\|awfree"'; then
    for s in $(loginctl list-sessions --no-legend | awk '$3 == "awvm" || $3 == "awfree" {print $1}'); do
        loginctl session-status --no-pager "$s" || true
    done
    die "sessions still open 30 s after logout"
fi
# (Only lines written from now on count; the file is the user's, which
# root may not truncate in sticky /tmp.)
declare -A seen
for u in awvm awfree; do
    systemctl is-active --quiet "user@$(id -u $u).service" || die "the user manager of $u is gone"
    seen[$u]=$(wc -l <"/tmp/esc-left-$u")
done
sleep 2
for u in awvm awfree; do
    after=$(tail -n +$((seen[$u] + 1)) "/tmp/esc-left-$u" | sort -u)
    [ -n "$after" ] || die "the left-running service of $u wrote nothing after logout"
    expect "a service left running after logout" $u "$after"
done
log "waiting for at and cron (cron runs at the next minute)"
wait_for 20 bash -c '[ -s /tmp/esc-at-awvm ] && [ -s /tmp/esc-at-awfree ]' || die "the at jobs did not run"
for u in awvm awfree; do expect "an at job" $u "$(cat /tmp/esc-at-$u)"; done
wait_for 75 bash -c '[ -s /tmp/esc-cron-awvm ] && [ -s /tmp/esc-cron-awfree ]' || die "the cron jobs did not run"
for u in awvm awfree; do expect "a cron job" $u "$(cat /tmp/esc-cron-$u)"; done
escapes_cleanup

# Every refusal above was the user layer's, and counted: authctl shows it.
authctl users
authctl users --json | jq -e '.users[] | select(.user == "awvm") | .denied >= 7' >/dev/null ||
    die "awvm's user layer did not count the refusals"
authctl users --json | jq -e '.users[] | select(.user == "awfree")' >/dev/null &&
    die "awfree, whom no policy claims, is in the user layer"

# --- logind's controls on an enforced login.
sess_of() { loginctl list-sessions --no-legend | awk '$3 == "awvm" {print $1}' | head -1; }
ssh_login status
sess=$(sess_of)
[ -n "$sess" ] || die "logind lists no session of awvm"
loginctl session-status "$sess" | tee /tmp/status.txt
grep -q vmtest-session /tmp/status.txt || die "session-status does not list the login's processes"
# kill-session signals the login's processes.
loginctl kill-session "$sess" --signal=SIGTERM || die "loginctl kill-session failed"
wait "$SSH_PID" || true
grep -q '^released' /tmp/vmtest-out-status && die "the session script was not signalled"
# terminate-session ends the login's processes, and authwall closes or reaps it.
ssh_login term
cg=$(session_value term cgroup)
id=$(cgroup_id_of "/sys/fs/cgroup$cg")
sess=$(sess_of)
in_sessions_map "$id" || die "no entry for $id"
loginctl terminate-session "$sess" || die "loginctl terminate-session failed"
wait "$SSH_PID" || true
wait_for 10 bash -c "[ ! -d /sys/fs/cgroup$cg ]" || die "the login's scope $cg is still there: processes left"
wait_for 10 bash -c "! authctl sessions --json | jq -e '.sessions[] | select(.id == $id)'" ||
    die "session $id is still in the map after terminate-session"
wait_for 5 bash -c "has_event $id close || has_event $id reaped" || die "no close/reaped event for $id"
[ -z "$(awvm_record)" ] || die "the record is still there after terminate-session"
if journalctl --no-pager -q -u vmtest-sshd | grep -i "release session\|does not belong to any known session"; then
    die "pam_systemd could not release a session"
fi
log "escapes: ok"
