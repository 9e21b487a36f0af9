# SPDX-License-Identifier: Apache-2.0
# nix/module.nix evaluated without nixpkgs (scripts/check-nix): the module
# function is called with a stub of the few lib functions it uses (options
# and mkIf/mkMerge kept as plain data) and a stub pkgs, and what it defines
# is checked: the files it copies into /etc and how, the units, the
# assertions, and the PAM rule a service gets (order after pam_systemd,
# arguments as nixpkgs renders a rule's settings). It does not check the
# option types against the real module system: that needs nixpkgs.
#   nix-instantiate --eval --strict nix/tests/eval.nix   → true, or an error naming what failed
let
  lib = rec {
    mkOption = o: o // { _type = "option"; };
    mkEnableOption = what: { _type = "option"; type = types.bool; default = false; description = what; };
    mkIf = condition: content: { _type = "if"; inherit condition content; };
    mkMerge = contents: { _type = "merge"; inherit contents; };
    types = {
      bool = { name = "bool"; };
      package = { name = "package"; };
      nullOr = elem: { name = "nullOr"; inherit elem; };
      enum = values: { name = "enum"; inherit values; };
      attrsOf = elem: { name = "attrsOf"; inherit elem; };
      submodule = module: { name = "submodule"; inherit module; };
    };
    literalExpression = text: { _type = "literalExpression"; inherit text; };
    nameValuePair = name: value: { inherit name value; };
    mapAttrs' = f: set: builtins.listToAttrs (map (n: f n set.${n}) (builtins.attrNames set));
    mapAttrsToList = f: set: map (n: f n set.${n}) (builtins.attrNames set);
    filterAttrs = pred: set:
      builtins.listToAttrs (builtins.concatMap (n: if pred n set.${n} then [ { name = n; value = set.${n}; } ] else [ ])
        (builtins.attrNames set));
    all = builtins.all;
    attrNames = builtins.attrNames;
  };

  pkgs = {
    coreutils = "/nix/store/stub-coreutils";
    formats.toml = _: {
      type = { name = "toml"; };
      generate = name: _value: "/nix/store/stub-${name}";
    };
  };

  package = "/nix/store/stub-authwall";

  pamService = authwall: {
    authwall = { enable = false; fail = null; rhost = "lax"; userOnly = false; debug = false; } // authwall;
  };

  evaluate = authwall: pam:
    import ../module.nix {
      inherit lib pkgs;
      config = {
        services.authwall = { enable = false; package = null; settings = { }; policies = { }; } // authwall;
        security.pam.services = pam;
      };
    };

  on = evaluate
    {
      enable = true;
      inherit package;
      settings = { unmatched = "default"; };
      policies = { ops.policy.ops.priority = 100; default.policy.default.priority = 0; };
    }
    { sshd = pamService { enable = true; rhost = "kernel"; }; login = pamService { }; };
  assertionsOf = m: builtins.elemAt m.config.contents 0;
  enabled = (builtins.elemAt on.config.contents 1);
  c = enabled.content;

  # A service's PAM rules, as the submodule defines them over a stub of the
  # service's own configuration (pam_systemd's rule at nixpkgs' order).
  serviceRules = authwall:
    (on.options.security.pam.services.type.elem.module {
      config = pamService authwall // { rules.session.systemd.order = 12300; };
    }).config;
  sshd = serviceRules { enable = true; rhost = "kernel"; };
  rule = sshd.content.rules.session.authwall;
  # nixpkgs' rendering of a rule's settings (security/pam.nix): true → the
  # name, false and null → nothing, else name=value.
  render = settings:
    builtins.concatMap
      (n: let v = settings.${n}; in
        if builtins.isBool v then (if v then [ n ] else [ ]) else if v == null then [ ] else [ "${n}=${toString v}" ])
      (builtins.attrNames settings);

  checks = {
    "assertions hold for a good configuration" = builtins.all (a: a.assertion) (assertionsOf on).assertions;
    "enabled" = enabled.condition;
    "the configuration is copied, root 0600" = c.environment.etc."authwall/authwall.toml" == {
      source = "/nix/store/stub-authwall.toml";
      mode = "0600";
    };
    "each policy is its own file, copied, 0600" = c.environment.etc."authwall/policies.d/ops.toml" == {
      source = "/nix/store/stub-authwall-policy-ops.toml";
      mode = "0600";
    } && c.environment.etc ? "authwall/policies.d/default.toml";
    "the loader runs from the package" =
      c.systemd.services.authwall-loader.serviceConfig.ExecStart == "${package}/sbin/authwall-loader";
    "reload with coreutils' kill" =
      c.systemd.services.authwall-cgroupd.serviceConfig.ExecReload == "/nix/store/stub-coreutils/bin/kill -HUP $MAINPID";
    "a policy change reloads the loader" =
      builtins.elem "/nix/store/stub-authwall-policy-ops.toml" c.systemd.services.authwall-loader.reloadTriggers;
    "the loader comes before sshd" = builtins.elem "sshd.service" c.systemd.services.authwall-loader.before;
    "cgroupd is hardened" = c.systemd.services.authwall-cgroupd.serviceConfig.ProtectSystem == "strict"
      && c.systemd.services.authwall-cgroupd.serviceConfig.NoNewPrivileges;
    "the runtime directories" = builtins.elem "d /run/authwall/sessions 0755 root root -" c.systemd.tmpfiles.rules;
    "the PAM rule is on" = sshd.condition;
    "right after pam_systemd" = rule.order == 12310;
    "required" = rule.control == "required";
    "the package's module" = rule.modulePath == "${package}/lib/security/pam_authwall.so";
    "its arguments" = render rule.settings == [ "rhost=kernel" ];
    "all arguments" = render (serviceRules { enable = true; fail = "open"; userOnly = true; debug = true; }).content.rules.session.authwall.settings
      == [ "debug" "fail=open" "rhost=lax" "user_only" ];
    "no rule where not enabled" = !(serviceRules { }).condition;
    "nothing when disabled" = !(builtins.elemAt (evaluate { } { }).config.contents 1).condition;
    "PAM without the service is refused" =
      !builtins.all (a: a.assertion) (assertionsOf (evaluate { } { sshd = pamService { enable = true; }; })).assertions;
    "a package is required" = !builtins.all (a: a.assertion) (assertionsOf (evaluate { enable = true; } { })).assertions;
    "a policy name is a file name" = !builtins.all (a: a.assertion)
      (assertionsOf (evaluate { enable = true; inherit package; policies."../x" = { }; } { })).assertions;
  };
  failed = builtins.filter (name: !checks.${name}) (builtins.attrNames checks);
in
if failed == [ ] then true else throw "nix/module.nix: failed: ${builtins.concatStringsSep "; " failed}"
