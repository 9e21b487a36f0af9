# SPDX-License-Identifier: Apache-2.0
# A password login over sshd, whose PAM stack has pam_authwall after
# pam_systemd, is keyed on logind's own session-N.scope (nothing is moved);
# the scope's cgroup id is in the sessions map; the policy holds; logind
# tracks the session and its processes; logout removes the scope, the
# entry and the record, and pam_systemd's ReleaseSession succeeds.
setup_world
ssh_login login
cg=$(session_value login cgroup)
log "the login's cgroup: $cg"
[[ $cg == /user.slice/user-$(id -u awvm).slice/session-*.scope ]] || die "the login is in $cg, not logind's session scope"
unit=${cg##*/}
systemctl is-active --quiet "$unit" || die "$unit is not active"
systemctl status --no-pager "$unit" | head -12
rec=$(awvm_record)
echo "record: $rec"
[ "$(jq -r .unit <<<"$rec")" = "$unit" ] || die "the record does not name $unit"
id=$(cgroup_id_of "/sys/fs/cgroup$cg")
[ "$(jq -r .id <<<"$rec")" = "$id" ] || die "the record's id is not the scope's cgroup id $id"
in_sessions_map "$id" || die "cgroup id $id is not in the sessions map"
authctl sessions
authctl sessions --json | jq -e --argjson id "$id" '.sessions[] | select(.id == $id) | .enforced' >/dev/null ||
    die "session $id is not enforced"
[ "$(session_value login allowed)" = ok ] || die "allowed connect failed: $(session_value login allowed)"
denied=$(session_value login denied)
[[ $denied == refused:*"Operation not permitted"* ]] || die "denied connect was not refused with EPERM: $denied"

# logind still tracks it.
loginctl list-sessions --no-legend
sess=$(loginctl list-sessions --no-legend | awk '$3 == "awvm" {print $1}' | head -1)
[ -n "$sess" ] || die "logind does not list awvm's session"
loginctl show-session "$sess" -p State -p Scope -p Service -p Remote -p Leader
[ "$(loginctl show-session "$sess" -P Service)" = sshd ] || die "logind's session is not the sshd one"
state=$(loginctl show-session "$sess" -P State)
[ "$state" = active ] || [ "$state" = online ] || die "logind's session is $state"
# The leader (sshd's session process) is in logind's scope, which is the
# one the map holds.
leader=$(loginctl show-session "$sess" -P Leader)
grep -q "$cg\$" "/proc/$leader/cgroup" || die "the session leader $leader is in $(cat /proc/$leader/cgroup)"
[ "$(loginctl show-session "$sess" -P Scope)" = "$unit" ] || die "logind's scope is not $unit"

# authctl watch, with no event_log configured, follows the journal.
authctl watch --json --user awvm --event close --count 1 >/tmp/watch-live.json &
watch_pid=$!
# Ready once it waits on the journal (sd_journal_wait makes its inotify fd
# only then): a close logged before the watch reached the tail is history,
# not news, and a live watch rightly does not print it.
wait_for 30 bash -c "ls -l /proc/$watch_pid/fd 2>/dev/null | grep -q inotify" ||
    die "authctl watch did not start following the journal"
ssh_logout login
wait_for 10 bash -c "! systemctl is-active --quiet $unit" || die "$unit still active after logout"
wait_for 10 bash -c "[ ! -d /sys/fs/cgroup$cg ]" || die "the scope's cgroup is still there"
wait_for 10 bash -c "! authctl sessions --json | jq -e '.sessions[] | select(.id == $id)'" ||
    die "the entry $id is still in the map after logout"
[ -z "$(awvm_record)" ] || die "the record is still there after logout"
wait_for 10 bash -c "! loginctl list-sessions --no-legend | awk '\$3 == \"awvm\"' | grep -q ." ||
    die "logind still lists the session after logout"
# The open and close events are in the journal, with their fields.
journalctl --no-pager -o cat AUTHWALL_SESSION="$id" AUTHWALL_EVENT=open + AUTHWALL_SESSION="$id" AUTHWALL_EVENT=close
wait_for 5 has_event "$id" open || die "no open event for session $id in the journal"
wait_for 5 has_event "$id" close || die "no close event for session $id in the journal"
# The live watch saw the close, with the session's tally; the journal's
# history has the open, the denial (who and why) and the close.
wait_for 10 bash -c "! kill -0 $watch_pid" || die "authctl watch did not see the close"
cat /tmp/watch-live.json
jq -e --argjson id "$id" 'select(.event == "close" and .session == $id and .user == "awvm" and .policy == "vmtest"
    and .duration_s >= 0 and .denied >= 1)' /tmp/watch-live.json >/dev/null || die "authctl watch: no close of $id with its tally"
# awvm's only login so far: its open, its one denial and its close.
timeout 60 authctl watch --json --from-start --user awvm --count 3 >/tmp/watch-all.json ||
    log "authctl watch --from-start --count 3 exited with $?"
cat /tmp/watch-all.json
for ev in open deny close; do
    # (-s and any: jq 1.6's -e looks at the last input only)
    jq -s -e --argjson id "$id" --arg ev "$ev" 'any(.[]; .event == $ev and .session == $id)' /tmp/watch-all.json >/dev/null ||
        die "authctl watch --from-start: no $ev event of session $id"
done
jq -s -e --argjson id "$id" 'any(.[]; .event == "deny" and .session == $id and .uid == '"$(id -u awvm)"' and .port == 7789
    and .policy == "vmtest" and .direction == "egress" and .reason == "default" and (.process | length) > 0)' \
    /tmp/watch-all.json >/dev/null || die "the denial of session $id does not say who and why"
authctl watch --from-start --user awvm --event deny --count 1 | grep -q "deny .*awvm policy=vmtest" ||
    die "authctl watch's text does not name the user and the policy"
# pam_systemd's ReleaseSession worked: sshd logged no failure at logout.
if journalctl --no-pager -q -u vmtest-sshd | grep -i "release session\|does not belong to any known session"; then
    die "pam_systemd could not release the session"
fi
log "ssh-login: ok"
