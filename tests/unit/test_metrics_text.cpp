// SPDX-License-Identifier: Apache-2.0
// The OpenMetrics text of a metrics snapshot (core/metrics): the shape the
// format asks for, without root. The values against real traffic, parsed by
// prometheus_client's parser: privileged/test_metrics.cpp.
#include <boost/test/unit_test.hpp>

#include "core/metrics/metrics.h"

#include <sstream>

using namespace authwall;

namespace {
size_t count(const std::string& text, const std::string& what)
{
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
        ++n;
    return n;
}
} // namespace

BOOST_AUTO_TEST_SUITE(metrics_text)

BOOST_AUTO_TEST_CASE(no_data_plane_is_authwall_up_0_alone)
{
    BOOST_TEST(render_metrics(MetricsSnapshot{}) ==
               "# TYPE authwall_up gauge\n"
               "# HELP authwall_up Whether the authwall data plane is installed (maps pinned, programs attached).\n"
               "authwall_up 0\n"
               "# EOF\n");
}

BOOST_AUTO_TEST_CASE(counters_end_in_total_and_units_are_suffixes)
{
    MetricsSnapshot s;
    s.up = true;
    auto& web = s.policies[3];
    web.name = "web";
    web.logins = 2;
    web.counters.bytes_out = 1234;
    web.counters.denied[AW_HOOK_CONNECT6] = 5;
    s.reloads = ReloadRecord{4, 1, 1'700'000'000'000'000'042ULL, 0};
    std::string text = render_metrics(s);
    BOOST_TEST(text.ends_with("\n# EOF\n"));
    BOOST_TEST(count(text, "# EOF") == 1u);
    BOOST_TEST(text.find("authwall_sessions{policy=\"web\",kind=\"login\"} 2\n") != std::string::npos);
    BOOST_TEST(text.find("# UNIT authwall_traffic_bytes bytes\n") != std::string::npos);
    BOOST_TEST(text.find("authwall_traffic_bytes_total{policy=\"web\",direction=\"out\"} 1234\n") != std::string::npos);
    BOOST_TEST(text.find("authwall_denials_total{policy=\"web\",direction=\"egress\",hook=\"connect6\"} 5\n") !=
               std::string::npos);
    BOOST_TEST(text.find("authwall_policy_reloads_total{result=\"success\"} 4\n") != std::string::npos);
    BOOST_TEST(text.find("authwall_policy_last_reload_success_timestamp_seconds 1700000000.000000042\n") !=
               std::string::npos);
    // Every sample of a counter family ends in _total, none of a gauge.
    std::istringstream lines(text);
    std::string line, type;
    while (std::getline(lines, line)) {
        if (line.starts_with("# TYPE "))
            type = line.substr(line.rfind(' ') + 1);
        else if (!line.starts_with("#"))
            BOOST_TEST((line.substr(0, line.find_first_of("{ ")).ends_with("_total") == (type == "counter")), line);
    }
}

// node_exporter's textfile collector reads the Prometheus text format: a
// counter's TYPE names its _total samples (else they would have no type),
// and there is no UNIT or EOF line.
BOOST_AUTO_TEST_CASE(the_prometheus_text_format_names_counters_by_their_samples)
{
    MetricsSnapshot s;
    s.up = true;
    s.policies[0].name = "(unmatched)";
    std::string text = render_metrics(s, MetricsFormat::Prometheus);
    BOOST_TEST(text.find("# TYPE authwall_traffic_bytes_total counter\n") != std::string::npos);
    BOOST_TEST(text.find("# HELP authwall_traffic_bytes_total ") != std::string::npos);
    BOOST_TEST(text.find("# TYPE authwall_sessions gauge\n") != std::string::npos);
    BOOST_TEST(text.find("# UNIT") == std::string::npos);
    BOOST_TEST(text.find("# EOF") == std::string::npos);
    BOOST_TEST(text.find("authwall_traffic_bytes_total{policy=\"(unmatched)\",direction=\"in\"} 0\n") !=
               std::string::npos);
    BOOST_TEST(render_metrics(MetricsSnapshot{}, MetricsFormat::Prometheus) ==
               "# TYPE authwall_up gauge\n"
               "# HELP authwall_up Whether the authwall data plane is installed (maps pinned, programs attached).\n"
               "authwall_up 0\n");
}

// DNS names appear when the loader published names.json: each state a
// series of its own, so an alert on failing names sees 0, not nothing.
BOOST_AUTO_TEST_CASE(dns_names_by_state_when_the_loader_published_them)
{
    MetricsSnapshot s;
    s.up = true;
    BOOST_TEST(render_metrics(s).find("authwall_dns") == std::string::npos);
    s.dns = MetricsSnapshot::DnsNames{3, 1, 0, 7, std::nullopt};
    std::string text = render_metrics(s);
    BOOST_TEST(text.find("authwall_dns_session") == std::string::npos); // an older loader's names.json
    BOOST_TEST(text.find("# TYPE authwall_dns_names gauge\n") != std::string::npos);
    BOOST_TEST(text.find("authwall_dns_names{state=\"resolved\"} 3\n") != std::string::npos);
    BOOST_TEST(text.find("authwall_dns_names{state=\"failing\"} 1\n") != std::string::npos);
    BOOST_TEST(text.find("authwall_dns_names{state=\"no_address\"} 0\n") != std::string::npos);
    BOOST_TEST(text.find("authwall_dns_addresses 7\n") != std::string::npos);
    s.dns->session_answers = SessionAnswerCounts{12, 2, 15};
    text = render_metrics(s);
    BOOST_TEST(text.find("# TYPE authwall_dns_session_answers counter\n") != std::string::npos);
    BOOST_TEST(text.find("authwall_dns_session_answers_total{result=\"used\"} 10\n") != std::string::npos);
    BOOST_TEST(text.find("authwall_dns_session_answers_total{result=\"ignored\"} 2\n") != std::string::npos);
    BOOST_TEST(text.find("authwall_dns_session_grants_total 15\n") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(every_hook_has_a_direction)
{
    BOOST_TEST(hook_direction(AW_HOOK_CONNECT4) == std::string("egress"));
    BOOST_TEST(hook_direction(AW_HOOK_SENDMSG6) == std::string("egress"));
    BOOST_TEST(hook_direction(AW_HOOK_BIND6) == std::string("bind"));
    BOOST_TEST(hook_direction(AW_HOOK_INGRESS) == std::string("ingress"));
    BOOST_TEST(hook_direction(AW_HOOK_EGRESS) == std::string("egress"));
    BOOST_TEST(hook_direction(AW_HOOK_SOCK_CREATE) == std::string("socket"));
}

BOOST_AUTO_TEST_SUITE_END()
