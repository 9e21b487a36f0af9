# SPDX-License-Identifier: Apache-2.0
# What nix/module.nix computes, with builtins only: the PAM module's
# settings, the two daemons' units (their hardening as in dist/systemd, held
# to it by scripts/check-nix), the names policy files may have. Evaluable
# without nixpkgs, so CI checks it with Debian's nix-bin.
let
  # The hardening both daemons share, as dist/systemd/*.service has it.
  common = {
    Type = "notify";
    Restart = "on-failure";
    NoNewPrivileges = true;
    ProtectSystem = "strict";
    ProtectHome = true;
    PrivateTmp = true;
    LogsDirectory = "authwall";
    LogsDirectoryMode = "0750";
    ProtectKernelModules = true;
    ProtectKernelLogs = true;
    ProtectClock = true;
    ProtectHostname = true;
    RestrictAddressFamilies = [ "AF_UNIX" "AF_NETLINK" ];
    RestrictNamespaces = true;
    RestrictRealtime = true;
    RestrictSUIDSGID = true;
    LockPersonality = true;
    MemoryDenyWriteExecute = true;
    SystemCallArchitectures = "native";
  };
in
rec {
  # The arguments of pam_authwall.so for a service's `authwall` options
  # (docs/man/pam_authwall.8), as the settings of a nixpkgs PAM rule: true
  # renders the name alone, false and null nothing, a string name=value.
  # fail= only when set, so [pam] fail of authwall.toml decides otherwise.
  pamSettings = o: {
    fail = o.fail;
    rhost = o.rhost;
    user_only = o.userOnly;
    debug = o.debug;
  };

  # A policy file's name in /etc/authwall/policies.d: <name>.toml.
  validPolicyName = name: builtins.match "[A-Za-z0-9][A-Za-z0-9_.-]{0,63}" name != null;

  # The services' serviceConfig; `package` is authwall's store path and
  # `kill` a kill(1) (NixOS has no /bin/kill), any strings in tests.
  loaderServiceConfig = { package, kill }: common // {
    ExecStart = "${package}/sbin/authwall-loader";
    ExecReload = "${kill} -HUP $MAINPID";
    RuntimeDirectory = "authwall";
    RuntimeDirectoryPreserve = true;
    CapabilityBoundingSet = [ "CAP_BPF" "CAP_PERFMON" "CAP_NET_ADMIN" "CAP_SYS_ADMIN" "CAP_SYS_RESOURCE" "CAP_DAC_READ_SEARCH" ];
    PrivateNetwork = false;
    ReadWritePaths = [ "/sys/fs/bpf" "/run/authwall" ];
    # DNS queries for the names in rules (docs/POLICY.md, "DNS names").
    RestrictAddressFamilies = [ "AF_UNIX" "AF_NETLINK" "AF_INET" "AF_INET6" ];
  };

  cgroupdServiceConfig = { package, kill }: common // {
    ExecStart = "${package}/sbin/authwall-cgroupd";
    ExecReload = "${kill} -HUP $MAINPID";
    CapabilityBoundingSet = [ "CAP_BPF" "CAP_SYS_ADMIN" "CAP_DAC_READ_SEARCH" "CAP_KILL" "CAP_NET_ADMIN" ];
    ReadWritePaths = [ "/run/authwall" "/sys/fs/cgroup" "-/var/lib/prometheus/node-exporter" ];
  };

  # The runtime directories (dist/tmpfiles.d/authwall.conf; NixOS has no
  # adm group, the event log's directory is root's).
  tmpfilesRules = [
    "d /run/authwall 0755 root root -"
    "d /run/authwall/sessions 0755 root root -"
    "d /var/log/authwall 0750 root root -"
  ];
}
