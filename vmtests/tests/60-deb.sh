# SPDX-License-Identifier: Apache-2.0
# vmtests-needs: deb
# The Debian package (debian/, built by scripts/check-deb; VMTESTS_DEB).
# `dpkg -i` over what the runner's `cmake --install` put in place (files no
# package owns): postinst enables and starts the packaged units, creates the
# tmpfiles and registers the PAM profile without enabling it; a login is
# enforced by the packaged binaries; `apt-get remove` takes pam_authwall out
# of common-session, stops the daemons and uninstalls the data plane (prerm),
# while a login open across it keeps running, unenforced; `dpkg -P` leaves no
# configuration, units or module behind.
# It removes authwall from the guest: it runs last.
deb=$(cat /vmresults/deb 2>/dev/null || true)
[ -n "$deb" ] || die "no package given: VMTESTS_DEB=path/to/authwall.deb vmtests/run 60-deb (scripts/check-deb builds it)"
[ -r "$deb" ] || die "cannot read the package $deb"
export DEBIAN_FRONTEND=noninteractive
# The host's root is a container image whose policy-rc.d (exit 101) forbids
# maintainer scripts to start services; a real system has none, and the
# guest is throwaway.
rm -f /usr/sbin/policy-rc.d
# Not what is tested, and slow under TCG: man-db's index update on each
# dpkg run.
rm -f /var/lib/man-db/auto-update
units=(authwall-loader.service authwall-cgroupd.service)
key_files=(/usr/sbin/authwall-loader /usr/sbin/authwall-cgroupd /usr/bin/authctl
    /lib/systemd/system/authwall-loader.service /lib/systemd/system/authwall-cgroupd.service
    /lib/systemd/system/authwall.slice /usr/lib/tmpfiles.d/authwall.conf /usr/share/pam-configs/authwall
    /etc/authwall/authwall.toml /etc/authwall/policies.d/default.toml)
aw_progs() { bpftool prog show -j | jq '[.[] | select((.name // "") | startswith("aw_"))] | length'; }
export -f aw_progs

# --- From the runner's state: the build tree installed by cmake, no package;
# earlier tests may have left the daemons running and the profile enabled.
if [ "$(dpkg-query -W -f='${Status}' authwall 2>/dev/null)" = "install ok installed" ]; then
    die "authwall is already a package"
fi
for f in "${key_files[@]}"; do [ -e "$f" ] || die "$f missing: the runner's cmake --install did not run"; done
systemctl stop "${units[@]}"
authwall-loader --uninstall
pam-auth-update --disable authwall
grep -q pam_authwall /etc/pam.d/common-session && die "pam-auth-update --disable left pam_authwall in common-session"

# --- Install.
slice_before=$(systemctl show -P ActiveState authwall.slice)
log "dpkg -i $deb"
dpkg -i "$deb" </dev/null
[ "$(dpkg-query -W -f='${Status} ${Version}' authwall)" = "install ok installed 0.1.0" ] ||
    die "dpkg-query: $(dpkg-query -W -f='${Status} ${Version}' authwall)"
# Every file the package lists is in place, with the package's content (the
# files cmake installed, and the loader 50-upgrade modified, were replaced).
n=0
while read -r f; do
    [ -e "$f" ] || die "dpkg -L lists $f, which is missing"
    n=$((n + 1))
done < <(dpkg -L authwall)
log "dpkg -L authwall: $n paths, all present"
verify=$(dpkg --verify authwall) || true
[ -z "$verify" ] || die "dpkg --verify authwall: $verify"
listed=$(dpkg -L authwall)
pam_module=$(grep '/security/pam_authwall\.so$' <<<"$listed")
# Its helpers (loaded on demand: the mirror, D-Bus scopes) are the package's too.
for helper in nft_mirror.so systemd_scope.so; do
    grep -qx "${pam_module%/*}/pam_authwall/$helper" <<<"$listed" || die "the package lacks pam_authwall/$helper"
done
for f in "${key_files[@]}"; do
    grep -qx "$f" <<<"$listed" || die "$f is not the package's"
done
dpkg-query -W -f='${Conffiles}\n' authwall

# postinst: the units are enabled and running (started by deb-systemd-invoke),
# from the packaged files; the tmpfiles exist.
for u in "${units[@]}"; do
    [ "$(systemctl is-enabled "$u")" = enabled ] || die "$u is not enabled after dpkg -i"
    systemctl is-active --quiet "$u" || die "$u was not started by postinst"
    [ "$(systemctl show -P FragmentPath "$u")" = "/lib/systemd/system/$u" ] ||
        die "$u runs from $(systemctl show -P FragmentPath "$u")"
    exe=$(readlink "/proc/$(systemctl show -P MainPID "$u")/exe")
    [ "$exe" = "/usr/sbin/${u%.service}" ] || die "$u runs $exe"
done
[ "$(systemctl show -P ActiveState authwall.slice)" = "$slice_before" ] ||
    die "dpkg -i changed authwall.slice: $slice_before -> $(systemctl show -P ActiveState authwall.slice)"
for d in /run/authwall /run/authwall/sessions /var/log/authwall; do [ -d "$d" ] || die "$d missing after dpkg -i"; done
# The PAM profile is registered (seen) but not enabled (Default: no).
grep -qx authwall /var/lib/pam/seen || die "pam-auth-update did not register the authwall profile"
grep -q pam_authwall /etc/pam.d/common-session && die "dpkg -i enabled pam_authwall"

# The packaged units stop and start.
systemctl stop "${units[@]}"
start_authwall
authctl status
[ "$(aw_progs)" -ge 9 ] || die "the packaged loader did not attach its programs"

# --- A login under the packaged module and binaries; it stays open across
# the removal. While enforced, its probes of the denied port are refused.
setup_world
ssh_login deb probe
cg=$(session_value deb cgroup)
[[ $cg == /user.slice/user-$(id -u awvm).slice/session-*.scope ]] || die "the login is in $cg"
id=$(cgroup_id_of "/sys/fs/cgroup$cg")
in_sessions_map "$id" || die "session $id is not in the map"
[ "$(session_value deb allowed)" = ok ] || die "allowed connect failed: $(session_value deb allowed)"
[[ $(session_value deb denied) == refused:*"Operation not permitted"* ]] ||
    die "denied connect was not refused with EPERM: $(session_value deb denied)"
grep -q '^probe ' "/tmp/vmtest-out-deb" || die "no probes from the session"
if grep '^probe .* ok$' /tmp/vmtest-out-deb; then die "a probe of the denied port got through before the removal"; fi

# --- Remove (the profile is enabled: pam_authwall is in common-session).
grep -q pam_authwall /etc/pam.d/common-session || die "pam_authwall not enabled before the removal"
log "apt-get remove authwall (session $id open)"
apt-get remove -y authwall </dev/null
[ "$(dpkg-query -W -f='${Status}' authwall)" = "deinstall ok config-files" ] ||
    die "after remove: $(dpkg-query -W -f='${Status}' authwall)"
if grep -rn pam_authwall /etc/pam.d/; then die "pam_authwall is still in the PAM configuration"; fi
for u in "${units[@]}"; do
    if systemctl is-active --quiet "$u"; then die "$u still running after remove"; fi
    if systemctl is-enabled --quiet "$u" 2>/dev/null; then die "$u still enabled after remove"; fi
done
# prerm uninstalled the data plane: no pins, no programs, no table.
[ ! -e /sys/fs/bpf/authwall ] || die "pins left after remove: $(find /sys/fs/bpf/authwall)"
wait_for 10 bash -c '[ "$(aw_progs)" = 0 ]' ||
    die "$(aw_progs) authwall program(s) still loaded after remove"
if nft list table inet authwall >/dev/null 2>&1; then die "table inet authwall left after remove"; fi
for f in /usr/sbin/authwall-loader /usr/sbin/authwall-cgroupd /usr/bin/authctl "$pam_module" \
    /lib/systemd/system/authwall-loader.service /usr/share/pam-configs/authwall; do
    [ ! -e "$f" ] || die "$f left after remove"
done
[ -f /etc/authwall/authwall.toml ] || die "remove deleted the conffiles (only purge should)"
# The open session was not ended (its scope, logind's session-N.scope, was
# not stopped) and is no longer enforced: the data plane is gone (prerm's
# comment). (authwall.slice holds no login here: logins are keyed on
# logind's scopes; it only holds those of stacks without pam_systemd.)
systemctl is-active --quiet "${cg##*/}" || die "the removal stopped the session's scope ${cg##*/}"
kill -0 "$SSH_PID" || die "the SSH session ended with the removal"
wait_for 10 grep -q '^probe .* ok$' /tmp/vmtest-out-deb || die "the open session is still enforced after the removal"
log "the open session survived the removal, unenforced"
ssh_logout deb
wait_for 10 bash -c "! systemctl is-active --quiet ${cg##*/}" || die "${cg##*/} still active after logout"
# What dpkg does not own (the test policy) is there for purge to remove.
[ -f /etc/authwall/policies.d/vmtest.toml ] || die "the test policy is missing"

# --- Purge.
log "dpkg -P authwall"
dpkg -P authwall </dev/null
if status=$(dpkg -s authwall 2>&1); then die "dpkg -s still knows authwall: $(grep Status <<<"$status")"; fi
grep -q 'not installed' <<<"$status" || die "dpkg -s authwall: $status"
for f in /etc/authwall /var/log/authwall /run/authwall /usr/share/authwall /usr/share/pam-configs/authwall \
    /lib/systemd/system/authwall-loader.service /lib/systemd/system/authwall-cgroupd.service \
    /lib/systemd/system/authwall.slice /usr/lib/tmpfiles.d/authwall.conf "$pam_module" "${pam_module%/*}/pam_authwall" \
    "/lib/${pam_module#/usr/lib/}" \
    /etc/systemd/system/multi-user.target.wants/authwall-loader.service \
    /etc/systemd/system/multi-user.target.wants/authwall-cgroupd.service; do
    [ ! -e "$f" ] || die "$f left after purge"
done
if systemctl cat authwall-loader.service >/dev/null 2>&1; then die "systemd still has authwall-loader.service"; fi
if grep -rn pam_authwall /etc/pam.d/; then die "pam_authwall is in the PAM configuration after purge"; fi
pam-auth-update --package
log "deb: ok"
