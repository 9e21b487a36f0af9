// SPDX-License-Identifier: Apache-2.0
#include <boost/test/unit_test.hpp>

#include "core/policy/config.h"

using namespace authwall;

namespace {
std::vector<std::string> errors_of(const std::string& text)
{
    std::vector<std::string> out;
    for (const auto& e : parse_config_text(text, "a.toml").errors)
        out.push_back(e.str());
    return out;
}
} // namespace

BOOST_AUTO_TEST_SUITE(config)

BOOST_AUTO_TEST_CASE(defaults)
{
    auto load = parse_config_text("", "a.toml");
    BOOST_REQUIRE(load.ok());
    const Config& c = load.config;
    BOOST_TEST(c.pin_dir == "/sys/fs/bpf/authwall");
    BOOST_TEST(c.enforcement_roots.empty());
    BOOST_TEST(c.policy_dir == "/etc/authwall/policies.d");
    BOOST_TEST((c.unmatched.kind == Fallback::Kind::Pass));
    BOOST_TEST(c.exempt_users == std::vector<std::string>{"root"});
    BOOST_TEST(!c.nft_mirror);
    BOOST_TEST((c.pam_fail == PamFailMode::Closed));
}

BOOST_AUTO_TEST_CASE(every_setting)
{
    auto load = parse_config_text(R"(
pin_dir = "/sys/fs/bpf/aw2"
enforcement_roots = ["/sys/fs/cgroup/user.slice", "/sys/fs/cgroup/machine.slice"]
policy_dir = "/etc/aw/p.d"
unmatched = "lockdown"
exempt_users = ["root", "backup"]
exempt_groups = ["wheel"]
nft_mirror = true
deny_unknown_cgroups = true
[pam]
fail = "open"
[limits]
max_sessions = 1000
policy_entries = 5000
events_per_sec = 10
)",
                                  "a.toml");
    for (const auto& e : load.errors)
        BOOST_TEST_MESSAGE(e.str());
    BOOST_REQUIRE(load.ok());
    const Config& c = load.config;
    BOOST_TEST(c.pin_dir == "/sys/fs/bpf/aw2");
    BOOST_TEST(c.enforcement_roots.size() == 2u);
    BOOST_TEST((c.unmatched.kind == Fallback::Kind::Policy));
    BOOST_TEST(c.unmatched.policy == "lockdown");
    BOOST_TEST(c.exempt_groups == std::vector<std::string>{"wheel"});
    BOOST_TEST(c.nft_mirror);
    BOOST_TEST(c.deny_unknown_cgroups);
    BOOST_TEST((c.pam_fail == PamFailMode::Open));
    BOOST_TEST(c.max_sessions == 1000u);
    BOOST_TEST(c.policy_entries == 5000u);
    BOOST_TEST(c.events_per_sec == 10u);
}

BOOST_AUTO_TEST_CASE(the_user_layer_settings)
{
    auto load = parse_config_text("", "a.toml");
    BOOST_TEST(load.config.user_layer);
    BOOST_TEST(load.config.users_min_uid == 1000u);
    BOOST_TEST(load.config.users_max_uid == 60000u);
    BOOST_TEST(load.config.user_only_services == (std::vector<std::string>{"systemd-user", "cron", "atd"}));
    load = parse_config_text("[users]\nlayer = false\nmin_uid = 500\nmax_uid = 70000\nuser_only_services = "
                             "[\"cron\"]\n",
                             "a.toml");
    BOOST_REQUIRE(load.ok());
    BOOST_TEST(!load.config.user_layer);
    BOOST_TEST(load.config.users_min_uid == 500u);
    BOOST_TEST(load.config.users_max_uid == 70000u);
    // The user manager is never given a login cgroup, whatever the list says.
    BOOST_TEST(load.config.user_only_services == (std::vector<std::string>{"cron", "systemd-user"}));
    BOOST_TEST(errors_of("[users]\nmin_uid = 2000\nmax_uid = 1000\n") ==
               std::vector<std::string>{"a.toml:1:1: users.min_uid must not be above users.max_uid"});
    BOOST_TEST(errors_of("[users]\nshell = 1\n").size() == 1u);
}

// toml++'s value<int64_t>() casts a float: 57e30 was undefined behaviour
// inside sshd. Numbers must be integers.
BOOST_AUTO_TEST_CASE(numbers_are_integers_never_cast_floats)
{
    BOOST_TEST(errors_of("[limits]\nevents_per_sec = 57e30\n") ==
               std::vector<std::string>{"a.toml:2:18: events_per_sec must be an integer between 0 and 1000000"});
    BOOST_TEST(errors_of("[limits]\nmax_sessions = 10.0\n").size() == 1u);
    BOOST_TEST(errors_of("[limits]\nmax_sessions = 10\n").empty());
    // Every integer key, with a float out of any integer's range, in range,
    // infinite and not a number: each is refused at its own line and column.
    const std::pair<const char*, const char*> keys[] = {{"users", "min_uid"},
                                                        {"users", "max_uid"},
                                                        {"limits", "max_sessions"},
                                                        {"limits", "policy_entries"},
                                                        {"limits", "events_per_sec"}};
    for (auto [table, key] : keys)
        for (const char* value : {"57e30", "-1e300", "1000.0", "inf", "nan"}) {
            std::string text = std::string("[") + table + "]\n" + key + " = " + value + "\n";
            auto errors = errors_of(text);
            BOOST_TEST_CONTEXT(text)
            {
                BOOST_REQUIRE_EQUAL(errors.size(), 1u);
                std::string where = "a.toml:2:" + std::to_string(std::string(key).size() + 4) + ": ";
                BOOST_TEST(errors[0].rfind(where + key + " must be an integer between ", 0) == 0u);
            }
        }
}

BOOST_AUTO_TEST_CASE(errors_name_file_line_column)
{
    BOOST_TEST(errors_of("pin_dri = \"/x\"\n") ==
               std::vector<std::string>{
                   "a.toml:1:1: unknown key 'pin_dri' in the configuration (expected one of: "
                   "pin_dir, enforcement_roots, policy_dir, run_dir, event_log, unmatched, exempt_users, "
                   "exempt_groups, nft_mirror, deny_unknown_cgroups, mode, pam, limits, users, metrics, dns)"});
    BOOST_TEST(errors_of("pin_dir = \"relative\"\n") ==
               std::vector<std::string>{"a.toml:1:11: pin_dir must be an absolute path"});
    BOOST_TEST(errors_of("unmatched = \"maybe later\"\n") ==
               std::vector<std::string>{"a.toml:1:13: unmatched must be \"pass\", \"deny\" or a policy name"});
    BOOST_TEST(errors_of("[pam]\nfail = \"sometimes\"\n") ==
               std::vector<std::string>{"a.toml:2:8: pam.fail must be \"closed\" or \"open\""});
    BOOST_TEST(errors_of("[limits]\nmax_sessions = 0\n") ==
               std::vector<std::string>{"a.toml:2:16: max_sessions must be an integer between 1 and 4194304"});
    BOOST_TEST(errors_of("nft_mirror = \"yes\"\n") ==
               std::vector<std::string>{"a.toml:1:14: nft_mirror must be true or false"});
    BOOST_TEST(errors_of("[limits]\nmax_session = 5\n") ==
               std::vector<std::string>{"a.toml:2:1: unknown key 'max_session' in [limits] (expected one of: "
                                        "max_sessions, policy_entries, events_per_sec)"});
}

// [metrics]: cgroupd's OpenMetrics file and how often it is written.
BOOST_AUTO_TEST_CASE(the_metrics_file_settings)
{
    auto defaults = parse_config_text("", "a.toml");
    BOOST_TEST(defaults.config.metrics_textfile.empty());
    BOOST_TEST(defaults.config.metrics_interval_sec == 15u);
    BOOST_TEST((defaults.config.metrics_format == MetricsFormat::Prometheus));
    auto load = parse_config_text(
        "[metrics]\ntextfile = \"/var/lib/prometheus/node-exporter/authwall.prom\"\ninterval_sec = 30\n"
        "format = \"openmetrics\"\n",
        "a.toml");
    BOOST_REQUIRE(load.ok());
    BOOST_TEST(load.config.metrics_textfile == "/var/lib/prometheus/node-exporter/authwall.prom");
    BOOST_TEST(load.config.metrics_interval_sec == 30u);
    BOOST_TEST((load.config.metrics_format == MetricsFormat::OpenMetrics));
    BOOST_TEST(errors_of("[metrics]\nformat = \"json\"\n") ==
               std::vector<std::string>{"a.toml:2:10: metrics.format must be \"prometheus\" or \"openmetrics\""});
    BOOST_TEST(errors_of("[metrics]\ntextfile = \"authwall.prom\"\n") ==
               std::vector<std::string>{"a.toml:2:12: textfile must be an absolute path"});
    BOOST_TEST(errors_of("[metrics]\ntextfile = \"/var/lib/authwall.txt\"\n") ==
               std::vector<std::string>{"a.toml:2:12: metrics.textfile must end in .prom (node_exporter's textfile "
                                        "collector reads only *.prom files)"});
    BOOST_TEST(errors_of("[metrics]\ninterval_sec = 0\n") ==
               std::vector<std::string>{"a.toml:2:16: interval_sec must be an integer between 1 and 86400"});
    BOOST_TEST(errors_of("[metrics]\ninterval_sec = 1.5\n") ==
               std::vector<std::string>{"a.toml:2:16: interval_sec must be an integer between 1 and 86400"});
    BOOST_TEST(errors_of("[metrics]\nintervall_sec = 5\n") ==
               std::vector<std::string>{"a.toml:2:1: unknown key 'intervall_sec' in [metrics] (expected one of: "
                                        "textfile, interval_sec, format)"});
    BOOST_TEST(errors_of("metrics = 5\n") ==
               std::vector<std::string>{"a.toml:1:11: metrics must be a table ([metrics])"});
}

BOOST_AUTO_TEST_CASE(missing_default_file_means_defaults_but_named_file_must_exist)
{
    BOOST_TEST(load_config("/nonexistent/authwall.toml", false).ok());
    auto named = load_config("/nonexistent/authwall.toml", true);
    BOOST_REQUIRE_EQUAL(named.errors.size(), 1u);
    BOOST_TEST(named.errors[0].message == "read /nonexistent/authwall.toml: No such file or directory (ENOENT)");
}

BOOST_AUTO_TEST_SUITE_END()
