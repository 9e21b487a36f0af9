// SPDX-License-Identifier: Apache-2.0
// The global configuration, /etc/authwall/authwall.toml. Every path in it has
// a flag or environment override in the binaries, so tests never read the
// host's own file. Unknown keys are errors, like in policy files.
#pragma once

#include "core/policy/policy.h"
#include "core/policy/policy_file.h"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace authwall {

inline constexpr const char* kDefaultConfigPath = "/etc/authwall/authwall.toml";
inline constexpr const char* kDefaultPolicyDir = "/etc/authwall/policies.d";

enum class PamFailMode { Closed, Open };
// The text of the metrics: OpenMetrics (https://openmetrics.io), or the
// Prometheus text format that node_exporter's textfile collector parses
// (in it an OpenMetrics counter's samples lose their type).
enum class MetricsFormat { OpenMetrics, Prometheus };

// [dns]: how the loader resolves the DNS names in rules (docs/POLICY.md,
// "DNS names").
struct DnsServer {
    IpAddress address;
    uint16_t port = 53;
    std::string str() const; // "10.0.0.53:53", "[::1]:5353": c-ares' server syntax
    bool operator==(const DnsServer&) const = default;
};
struct DnsSettings {
    std::vector<DnsServer> servers; // empty: those of /etc/resolv.conf
    uint32_t min_ttl_sec = 5;       // an answer is trusted this long at least (floor)...
    uint32_t max_ttl_sec = 3600;    // ...and at most (ceiling), whatever its TTL
    uint32_t grace_sec = 300;       // an address the name stopped returning stays allowed this long
    uint32_t stale_sec = 3600;      // a name that fails to resolve keeps its last addresses this long
    uint32_t timeout_ms = 2000;     // one query's time, across its tries
    uint32_t max_addresses = 64;    // per name: what more an answer holds is left out, and logged
    // The servers whose answers to a session's own queries may give that
    // session addresses (docs/POLICY.md, "DNS names"): loopback by default,
    // a stub resolver on this host, which nothing off-host can forge.
    std::vector<Prefix> observe_from{*Prefix::parse("127.0.0.0/8"), *Prefix::parse("::1")};
};
// "ADDR", "ADDR:PORT", "[IPV6]:PORT".
std::optional<DnsServer> parse_dns_server(std::string_view text);

struct Config {
    std::filesystem::path pin_dir = "/sys/fs/bpf/authwall";
    std::vector<std::filesystem::path> enforcement_roots; // empty = the cgroup2 root
    std::filesystem::path policy_dir = kDefaultPolicyDir;
    std::filesystem::path run_dir = "/run/authwall"; // session records, the published policy index
    std::filesystem::path event_log;                 // optional: session events appended as JSON lines
    Fallback unmatched;                              // pass
    std::vector<std::string> exempt_users{"root"};
    std::vector<std::string> exempt_groups;
    bool nft_mirror = false;
    uint32_t max_sessions = 65536;
    uint32_t policy_entries = 1'000'000;
    uint32_t events_per_sec = 200;
    bool deny_unknown_cgroups = false;
    // mode = "audit" / "enforce": every policy (and the unmatched fallback)
    // in that mode, whatever its own `mode` says; unset: each its own.
    std::optional<bool> audit_override;
    PamFailMode pam_fail = PamFailMode::Closed;
    // The user layer (docs/SECURITY.md, "The user is the boundary"): every
    // process of a confined user, wherever it runs, is held to the user's
    // policy. Users with a uid outside [users_min_uid, users_max_uid]
    // (system accounts, nobody) are confined by their logins only.
    bool user_layer = true;
    uint32_t users_min_uid = 1000;
    uint32_t users_max_uid = 60000;
    // PAM services whose sessions arm the user layer but make no login
    // session (no cgroup, nothing killed at their close): the user manager
    // (which must stay in user@UID.service), cron and at jobs.
    std::vector<std::string> user_only_services{"systemd-user", "cron", "atd"};
    // [metrics]: authwall-cgroupd writes the metrics (authctl metrics) to
    // `textfile` every `interval_sec`, atomically, for node_exporter's
    // textfile collector, in its Prometheus text format unless `format`
    // says "openmetrics". Empty: not written.
    std::filesystem::path metrics_textfile;
    uint32_t metrics_interval_sec = 15;
    MetricsFormat metrics_format = MetricsFormat::Prometheus;
    DnsSettings dns;
    std::string source; // file it came from, or "(defaults)"
};

struct ConfigLoad {
    Config config;
    std::vector<PolicyDiagnostic> errors;
    bool ok() const { return errors.empty(); }
};

ConfigLoad parse_config_text(std::string_view text, const std::string& file);

// Reads the file after check_trusted_path. A missing file at the default
// path yields the defaults; a missing file named explicitly is an error.
ConfigLoad load_config(const std::filesystem::path& path, bool must_exist, uid_t owner = 0);

// What a program's flags say about the settings every binary shares.
struct ConfigOverrides {
    std::string config_path;        // --config
    std::string pin_dir;            // --pin-dir
    std::string run_dir;            // --run-dir
    std::vector<std::string> roots; // --cgroup-root
};

// The settings of a daemon or the CLI: the configuration file (--config,
// else AUTHWALL_CONFIG, else the default path, which may be absent), then
// the environment (AUTHWALL_PIN_DIR, AUTHWALL_RUN_DIR, AUTHWALL_CGROUP_ROOTS
// ':'-separated), then the flags. `config_path` and `config_explicit` tell
// where the file came from, for reloads.
struct ResolvedConfig {
    ConfigLoad load;
    std::filesystem::path config_path;
    bool config_explicit = false;
};
ResolvedConfig resolve_config(const ConfigOverrides& flags);

} // namespace authwall
