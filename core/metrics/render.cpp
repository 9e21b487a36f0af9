// SPDX-License-Identifier: Apache-2.0
// The OpenMetrics text format: per family "# TYPE", "# UNIT" (when the
// name ends with its unit), "# HELP", then its samples; a counter's
// samples end in _total; the exposition ends with "# EOF". The Prometheus
// text format (node_exporter's textfile collector, which takes "# UNIT" and
// "# EOF" for comments) names a family by its samples: a counter's TYPE and
// HELP lines name X_total, else the collector would take X_total for
// another metric, of no type.
#include "core/metrics/metrics.h"

#include <algorithm>
#include <string_view>
#include <utility>
#include <vector>

namespace authwall {

namespace {

using Labels = std::vector<std::pair<std::string_view, std::string>>;

std::string escaped(std::string_view value)
{
    std::string out;
    for (char c : value) {
        if (c == '\\' || c == '"')
            out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out;
}

class OpenMetricsText {
  public:
    explicit OpenMetricsText(MetricsFormat format) : format_(format) {}

    // Starts a family; counters' samples get the _total suffix.
    void family(std::string_view name, std::string_view type, std::string_view help, std::string_view unit = {})
    {
        name_ = name;
        counter_ = type == "counter";
        const bool open = format_ == MetricsFormat::OpenMetrics;
        std::string described = name_ + (counter_ && !open ? "_total" : "");
        text_ += "# TYPE " + described + " " + std::string(type) + "\n";
        if (!unit.empty() && open)
            text_ += "# UNIT " + described + " " + std::string(unit) + "\n";
        text_ += "# HELP " + described + " " + std::string(help) + "\n";
    }
    void sample(const Labels& labels, const std::string& value)
    {
        text_ += name_ + (counter_ ? "_total" : "");
        if (!labels.empty()) {
            text_ += "{";
            for (size_t i = 0; i < labels.size(); ++i)
                text_ += (i ? "," : "") + std::string(labels[i].first) + "=\"" + escaped(labels[i].second) + "\"";
            text_ += "}";
        }
        text_ += " " + value + "\n";
    }
    void sample(const Labels& labels, uint64_t value) { sample(labels, std::to_string(value)); }
    std::string finish() { return std::move(text_) + (format_ == MetricsFormat::OpenMetrics ? "# EOF\n" : ""); }

  private:
    MetricsFormat format_;
    std::string text_, name_;
    bool counter_ = false;
};

// Seconds with nine decimals: exact for a CLOCK_REALTIME in nanoseconds.
std::string seconds_text(uint64_t ns)
{
    std::string frac = std::to_string(ns % 1'000'000'000ULL);
    return std::to_string(ns / 1'000'000'000ULL) + "." + std::string(9 - frac.size(), '0') + frac;
}

void render_sessions(OpenMetricsText& out, const MetricsSnapshot& s)
{
    out.family("authwall_sessions", "gauge", "Open sessions by policy and kind (login or container).");
    for (const auto& [id, p] : s.policies) {
        out.sample({{"policy", p.name}, {"kind", "login"}}, p.logins);
        out.sample({{"policy", p.name}, {"kind", "container"}}, p.containers);
    }
    out.family("authwall_traffic_bytes", "counter",
               "Bytes of sessions' traffic by policy and direction, ended sessions included.", "bytes");
    for (const auto& [id, p] : s.policies) {
        out.sample({{"policy", p.name}, {"direction", "in"}}, p.counters.bytes_in);
        out.sample({{"policy", p.name}, {"direction", "out"}}, p.counters.bytes_out);
    }
    out.family("authwall_traffic_packets", "counter",
               "Packets of sessions' traffic by policy and direction, ended sessions included.", "packets");
    for (const auto& [id, p] : s.policies) {
        out.sample({{"policy", p.name}, {"direction", "in"}}, p.counters.packets_in);
        out.sample({{"policy", p.name}, {"direction", "out"}}, p.counters.packets_out);
    }
    out.family("authwall_denials", "counter",
               "Operations refused in sessions by policy, direction and hook, ended sessions included.");
    for (const auto& [id, p] : s.policies)
        for (unsigned h = 0; h < AW_HOOK_COUNT; ++h)
            out.sample({{"policy", p.name}, {"direction", hook_direction(h)}, {"hook", hook_name(h)}},
                       p.counters.denied[h]);
    out.family("authwall_audited", "counter",
               "Would-be refusals passed in audit mode (mode = \"audit\") by policy, ended sessions included.");
    for (const auto& [id, p] : s.policies)
        out.sample({{"policy", p.name}}, p.counters.audited);
}

// Why, for the whole host: a series per hook and reason that has counted
// (a series appears with its first refusal; 63 zero series per verdict
// would bury the ones that matter).
void render_reasons(OpenMetricsText& out, const MetricsSnapshot& s)
{
    out.family("authwall_refusals", "counter",
               "Refusals (verdict deny) and would-be refusals passed in audit mode (verdict audit) by hook and "
               "reason, every session and user layer of the host, since the data plane was installed.");
    for (unsigned h = 0; h < AW_HOOK_COUNT; ++h)
        for (unsigned r = 1; r < AW_REASON_COUNT; ++r)
            for (auto [verdict, count] :
                 {std::pair{"deny", s.refusals.denied[h][r]}, std::pair{"audit", s.refusals.audited[h][r]}})
                if (count)
                    out.sample({{"direction", hook_direction(h)},
                                {"hook", hook_name(h)},
                                {"reason", reason_name(r)},
                                {"verdict", verdict}},
                               count);
}

void render_maps(OpenMetricsText& out, const MetricsSnapshot& s)
{
    out.family("authwall_map_entries", "gauge", "Entries in the sessions and users maps.");
    out.sample({{"map", "sessions"}}, s.sessions_fill.entries);
    out.sample({{"map", "users"}}, s.users_fill.entries);
    out.family("authwall_map_capacity", "gauge", "Capacity of the sessions and users maps (limits.max_sessions).");
    out.sample({{"map", "sessions"}}, s.sessions_fill.max_entries);
    out.sample({{"map", "users"}}, s.users_fill.max_entries);
    out.family("authwall_events_suppressed", "counter",
               "Denial events not sent because of the rate limit (limits.events_per_sec), all CPUs.");
    out.sample({}, s.events_suppressed);
}

void render_reloads(OpenMetricsText& out, const MetricsSnapshot& s)
{
    ReloadRecord r = s.reloads.value_or(ReloadRecord{});
    out.family("authwall_policy_reloads", "counter", "Policy loads by authwall-loader by result, since boot.");
    out.sample({{"result", "success"}}, r.succeeded);
    out.sample({{"result", "failure"}}, r.failed);
    if (r.last_success_ns == 0)
        return;
    out.family("authwall_policy_last_reload_success_timestamp_seconds", "gauge",
               "When the policies in force were loaded (Unix time).", "seconds");
    out.sample({}, seconds_text(r.last_success_ns));
}

void render_nft(OpenMetricsText& out, const MetricsSnapshot::NftDrift& d)
{
    out.family("authwall_nft_mirror_table_present", "gauge", "Whether table inet authwall exists (nft_mirror).");
    out.sample({}, d.table_present ? 1 : 0);
    out.family("authwall_nft_mirror_drift_elements", "gauge",
               "Elements of the nft mirror missing or stray against the sessions map (cgroupd repairs them).");
    out.sample({{"kind", "missing"}}, d.missing);
    out.sample({{"kind", "stray"}}, d.stray);
}

void render_dns(OpenMetricsText& out, const MetricsSnapshot::DnsNames& d)
{
    out.family("authwall_dns_names", "gauge",
               "DNS names of the rules in force by state: resolved, failing (its server fails; its last good "
               "addresses stay until dns.stale_sec) or no_address.");
    out.sample({{"state", "resolved"}}, d.resolved);
    out.sample({{"state", "failing"}}, d.failing);
    out.sample({{"state", "no_address"}}, d.no_address);
    out.family("authwall_dns_addresses", "gauge",
               "Addresses the DNS names of the rules stand for now, grace periods included.");
    out.sample({}, d.addresses);
    if (!d.session_answers)
        return;
    const SessionAnswerCounts& a = *d.session_answers;
    out.family("authwall_dns_session_answers", "counter",
               "DNS answers sessions received to their own queries, by what the loader did with them: used, or "
               "ignored (a server outside dns.observe_from, a name no rule allows, malformed); since it started.");
    out.sample({{"result", "used"}}, a.answers - std::min(a.ignored, a.answers));
    out.sample({{"result", "ignored"}}, a.ignored);
    out.family("authwall_dns_session_grants", "counter",
               "Addresses sessions' own DNS answers opened for them, since the loader started.");
    out.sample({}, a.granted);
}

} // namespace

std::string render_metrics(const MetricsSnapshot& s, MetricsFormat format)
{
    OpenMetricsText out(format);
    out.family("authwall_up", "gauge",
               "Whether the authwall data plane is installed (maps pinned, programs attached).");
    out.sample({}, s.up ? 1 : 0);
    if (s.up) {
        render_sessions(out, s);
        render_reasons(out, s);
        render_maps(out, s);
        render_reloads(out, s);
        if (s.nft)
            render_nft(out, *s.nft);
        if (s.dns)
            render_dns(out, *s.dns);
    }
    return out.finish();
}

} // namespace authwall
