# SPDX-License-Identifier: Apache-2.0
# Ending a session from systemd's side. `systemctl stop` of its scope:
# sshd gets SIGTERM and closes the PAM session itself (a close event), or,
# if it cannot, cgroupd reaps it. `systemctl kill -s KILL` of the scope:
# nothing closes it, cgroupd reaps it (a reaped event). Either way the
# entry, the record and the scope's cgroup are gone.
setup_world

session_ends() { # ID CGROUP
    wait_for 10 bash -c "! authctl sessions --json | jq -e '.sessions[] | select(.id == $1)'" ||
        die "session $1 is still in the map"
    wait_for 5 bash -c '[ -z "$(jq -c "select(.user == \"awvm\")" /run/authwall/sessions/*.json 2>/dev/null)" ]' ||
        die "the record of session $1 is still there"
    [ ! -d "/sys/fs/cgroup$2" ] || die "the cgroup $2 is still there"
}

ssh_login stop
cg=$(session_value stop cgroup)
id=$(cgroup_id_of "/sys/fs/cgroup$cg")
in_sessions_map "$id" || die "no entry for $id"
systemctl stop "${cg##*/}"
wait "$SSH_PID" || true # the connection drops with its session
session_ends "$id" "$cg"
wait_for 5 bash -c "has_event $id close || has_event $id reaped" || die "no close/reaped event for $id"
journalctl --no-pager -o cat AUTHWALL_SESSION="$id"

ssh_login kill
cg=$(session_value kill cgroup)
id=$(cgroup_id_of "/sys/fs/cgroup$cg")
in_sessions_map "$id" || die "no entry for $id"
systemctl kill -s KILL "${cg##*/}"
wait "$SSH_PID" || true
session_ends "$id" "$cg"
wait_for 5 has_event "$id" reaped || die "no reaped event for session $id in the journal"
has_event "$id" close && die "session $id has a close event: nothing should have closed it"
journalctl --no-pager -o cat AUTHWALL_SESSION="$id"
log "scope-stop: ok"
