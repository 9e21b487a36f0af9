# SPDX-License-Identifier: Apache-2.0
# A reboot-free upgrade: a new loader binary is put in place (as a package
# upgrade does, by rename) and the service restarted; the new programs
# replace the old ones on the same links, a session open across it keeps
# its entry and stays enforced.
setup_world
ssh_login upgrade probe
id=$(awvm_session_id)
progs_before=$(bpftool link show -j | jq -c '[.[] | select(.type == "cgroup") | .prog_id] | sort')
links_before=$(bpftool link show -j | jq -c '[.[] | select(.type == "cgroup") | .id] | sort')
bin=$(systemctl show -P ExecStart authwall-loader.service | sed -n 's/.*path=\([^ ;]*\).*/\1/p')
[ -x "$bin" ] || die "cannot find the loader binary ($bin)"
cp "$bin" "$bin.dpkg-new"
# The "new version": a different file (a note appended past the ELF image)
# with the same code, renamed over the old one while it runs.
printf 'authwall-vmtest-upgrade' >>"$bin.dpkg-new"
mv "$bin.dpkg-new" "$bin"
systemctl restart authwall-loader.service
progs_after=$(bpftool link show -j | jq -c '[.[] | select(.type == "cgroup") | .prog_id] | sort')
links_after=$(bpftool link show -j | jq -c '[.[] | select(.type == "cgroup") | .id] | sort')
echo "links $links_before -> $links_after; programs $progs_before -> $progs_after"
[ "$links_before" = "$links_after" ] || die "links changed across the upgrade"
[ "$progs_before" != "$progs_after" ] || die "programs not replaced"
in_sessions_map "$id" || die "the entry is gone after the upgrade"
# Still enforced by the new programs: a new connect from inside the session.
out=$(sshpass -p "$VM_PASSWORD" ssh -p $VM_SSH_PORT -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o LogLevel=ERROR -o PreferredAuthentications=password -o PubkeyAuthentication=no awvm@127.0.0.1 \
    "bash -c 'exec 3<>/dev/tcp/127.0.0.1/$VM_DENIED_PORT' 2>&1; echo rc=\$?") || true
echo "$out"
grep -q 'Operation not permitted' <<<"$out" || die "a fresh login after the upgrade was not held to the policy"
ssh_logout upgrade
passed=$(grep -c '^probe .* ok$' /tmp/vmtest-out-upgrade || true)
[ "$passed" = 0 ] || die "enforcement of the open session lapsed during the upgrade ($passed probes got through)"
log "upgrade: ok"
