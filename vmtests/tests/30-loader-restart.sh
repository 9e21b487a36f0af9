# SPDX-License-Identifier: Apache-2.0
# systemctl restart and kill -s KILL of the loader during a session:
# enforcement never lapses (a probe inside the session tries the denied
# port every 50 ms throughout), the entry survives, the programs are
# replaced in place on the same links.
setup_world
ssh_login restart probe
id=$(awvm_session_id)
[ -n "$id" ] || die "no session for awvm"
links_before=$(bpftool link show -j | jq -c '[.[] | select(.type == "cgroup") | {id, prog_id}] | sort_by(.id)')
echo "links before: $links_before"

systemctl restart authwall-loader.service
systemctl is-active --quiet authwall-loader.service || die "loader not active after restart"
in_sessions_map "$id" || die "the entry is gone after systemctl restart"

main=$(systemctl show -P MainPID authwall-loader.service)
systemctl kill -s KILL authwall-loader.service
# Restart=on-failure brings it back; wait for a new main process.
wait_for 30 bash -c "[ \"\$(systemctl show -P MainPID authwall-loader.service)\" != $main ] &&
    [ \"\$(systemctl show -P MainPID authwall-loader.service)\" != 0 ] &&
    systemctl is-active --quiet authwall-loader.service" || die "loader did not come back after SIGKILL"
systemctl show -p NRestarts authwall-loader.service
in_sessions_map "$id" || die "the entry is gone after SIGKILL and restart"

links_after=$(bpftool link show -j | jq -c '[.[] | select(.type == "cgroup") | {id, prog_id}] | sort_by(.id)')
echo "links after:  $links_after"
[ "$(jq -c 'map(.id)' <<<"$links_before")" = "$(jq -c 'map(.id)' <<<"$links_after")" ] ||
    die "the links changed: programs were attached anew, not replaced in place"
[ "$links_before" != "$links_after" ] || die "the programs were not replaced (same prog ids)"

sleep 0.5 # a few more probes after the last restart
ssh_logout restart
probes=$(grep -c '^probe ' /tmp/vmtest-out-restart)
passed=$(grep -c '^probe .* ok$' /tmp/vmtest-out-restart || true)
log "$probes probes of the denied port during the restarts, $passed got through"
[ "$probes" -ge 10 ] || die "too few probes ($probes) to say anything"
[ "$passed" = 0 ] || die "enforcement lapsed: $passed probe(s) of the denied port got through"
grep -v 'Operation not permitted' /tmp/vmtest-out-restart | grep '^probe ' | head -3 && die "a probe failed otherwise than EPERM"
log "loader-restart: ok"
