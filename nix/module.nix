# SPDX-License-Identifier: Apache-2.0
# NixOS module for authwall (README, "NixOS"). Needs NixOS 24.05 or later
# (security.pam.services.<name>.rules, which orders a service's PAM lines).
#
#   imports = [ /path/to/authwall/nix/module.nix ];
#   services.authwall = {
#     enable = true;
#     package = authwall;                     # built from this repository
#     settings.unmatched = "default";         # authwall.toml as Nix attrs
#     policies.default = builtins.fromTOML (builtins.readFile ./default.toml);
#   };
#   security.pam.services.sshd.authwall = { enable = true; rhost = "kernel"; };
#
# Policy and configuration files are *copied* into /etc, root-owned 0600
# (environment.etc's mode), not symlinked into the store: authwall refuses a
# symbolic link for them, and a file being root-owned in /nix/store says
# nothing about who wrote it (every user of a multi-user Nix can add paths
# through the daemon). The trusted-path check stays as it is everywhere.
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkOption mkEnableOption mkIf mkMerge types;

  cfg = config.services.authwall;
  helpers = import ./lib.nix;
  toml = pkgs.formats.toml { };

  configFile = toml.generate "authwall.toml" cfg.settings;
  policyFile = name: policy: toml.generate "authwall-policy-${name}.toml" policy;
  policyEtc = lib.mapAttrs' (name: policy: lib.nameValuePair "authwall/policies.d/${name}.toml" {
    source = policyFile name policy;
    mode = "0600";
  }) cfg.policies;

  pamServices = lib.filterAttrs (_: service: service.authwall.enable) config.security.pam.services;
  kill = "${pkgs.coreutils}/bin/kill";

  # What security.pam.services.<name>.authwall adds to each PAM service.
  pamServiceModule = { config, ... }: {
    options.authwall = {
      enable = mkEnableOption "authwall's session line (pam_authwall.so) for this PAM service";
      fail = mkOption {
        type = types.nullOr (types.enum [ "closed" "open" ]);
        default = null;
        description = "fail= of the module line; null leaves it to [pam] fail of authwall.toml (closed by default).";
      };
      rhost = mkOption {
        type = types.enum [ "lax" "strict" "kernel" ];
        default = "lax";
        description = ''
          Where the login's remote address comes from: PAM_RHOST (lax: a name
          means none; strict: a name is refused) or the kernel, the peer of the
          login process's TCP connection (kernel: for sshd).
        '';
      };
      userOnly = mkOption {
        type = types.bool;
        default = false;
        description = "Arm the user layer only and make no login session (non-interactive stacks).";
      };
      debug = mkOption {
        type = types.bool;
        default = false;
        description = "Log each open and close.";
      };
    };
    # Right after pam_systemd, whose session scope authwall then keys the
    # login on (nothing is moved; loginctl keeps working). The systemd rule
    # exists for every service, enabled or not, so its order is always there.
    config = mkIf config.authwall.enable {
      rules.session.authwall = {
        control = "required";
        modulePath = "${cfg.package}/lib/security/pam_authwall.so";
        order = config.rules.session.systemd.order + 10;
        settings = helpers.pamSettings config.authwall;
      };
    };
  };
in
{
  options.services.authwall = {
    enable = mkEnableOption "authwall, network policy bound to login sessions (eBPF)";

    package = mkOption {
      type = types.nullOr types.package;
      default = pkgs.authwall or null;
      defaultText = lib.literalExpression "pkgs.authwall or null";
      description = ''
        The authwall package: built from this repository with
        -DAUTHWALL_PAM_MODULE_DIR=$out/lib/security, so the PAM module and its
        helpers (pam_authwall/) are in the package.
      '';
    };

    settings = mkOption {
      type = toml.type;
      default = { };
      example = lib.literalExpression ''{ unmatched = "default"; event_log = "/var/log/authwall/events.jsonl"; pam.fail = "closed"; }'';
      description = "authwall.toml (authwall.toml(5)) as Nix attributes; /etc/authwall/authwall.toml, root-owned 0600.";
    };

    policies = mkOption {
      type = types.attrsOf toml.type;
      default = { };
      example = lib.literalExpression ''
        {
          ops.policy.ops = {
            priority = 100;
            match.groups = [ "ops" ];
            egress = { default = "deny"; allow = [ "10.0.0.0/8 tcp 22" "any udp 53" ]; };
          };
        }
      '';
      description = ''
        Policy files (authwall.policy(5)): each attribute is one file,
        /etc/authwall/policies.d/NAME.toml, root-owned 0600, holding the TOML
        the value renders to. A change reloads authwall-loader.
      '';
    };
  };

  options.security.pam.services = mkOption {
    type = types.attrsOf (types.submodule pamServiceModule);
  };

  config = mkMerge [
    {
      assertions = [
        {
          assertion = pamServices == { } || cfg.enable;
          message = "security.pam.services.<name>.authwall.enable needs services.authwall.enable (the data plane and its configuration)";
        }
        {
          assertion = !cfg.enable || cfg.package != null;
          message = "services.authwall.package must be set: authwall is not in nixpkgs; build it from its repository";
        }
        {
          assertion = lib.all helpers.validPolicyName (lib.attrNames cfg.policies);
          message = "services.authwall.policies: a name is a file name, [A-Za-z0-9][A-Za-z0-9_.-]* up to 64 characters";
        }
      ];
    }
    (mkIf cfg.enable {
      environment.systemPackages = [ cfg.package ];

      environment.etc = policyEtc // {
        "authwall/authwall.toml" = {
          source = configFile;
          mode = "0600";
        };
      };

      systemd.tmpfiles.rules = helpers.tmpfilesRules;

      systemd.slices.authwall = {
        description = "authwall login sessions";
        documentation = [ "man:pam_authwall(8)" ];
        before = [ "slices.target" ];
      };

      # Before logins, so the first session is already enforced. Stopping it
      # leaves enforcement in place (pinned in bpffs). A change of the
      # configuration or a policy reloads it (SIGHUP), never a restart.
      systemd.services.authwall-loader = {
        description = "authwall data plane: BPF session enforcement and policies";
        documentation = [ "man:authwall-loader(8)" ];
        wantedBy = [ "multi-user.target" ];
        before = [ "sshd.service" "systemd-user-sessions.service" ];
        after = [ "local-fs.target" "sys-fs-bpf.mount" ];
        wants = [ "sys-fs-bpf.mount" ];
        reloadTriggers = [ configFile ] ++ lib.mapAttrsToList policyFile cfg.policies;
        serviceConfig = helpers.loaderServiceConfig { package = cfg.package; inherit kill; };
      };

      systemd.services.authwall-cgroupd = {
        description = "authwall cgroup reconciler: reap, expire, enroll containers";
        documentation = [ "man:authwall-cgroupd(8)" ];
        wantedBy = [ "multi-user.target" ];
        after = [ "authwall-loader.service" ];
        wants = [ "authwall-loader.service" ];
        reloadTriggers = [ configFile ];
        serviceConfig = helpers.cgroupdServiceConfig { package = cfg.package; inherit kill; };
      };
    })
  ];
}
