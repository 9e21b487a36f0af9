// SPDX-License-Identifier: Apache-2.0
#include "loader/decision_log.h"

#include "core/base/event_log.h"
#include "core/base/journal.h"
#include "core/base/time.h"
#include "core/dataplane/maps.h"
#include "core/policy/rule.h"
#include "core/session/events.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <cctype>
#include <deque>

namespace authwall {

namespace {
constexpr size_t kSessionCache = 4096;
} // namespace

void DecisionLog::policies_changed(std::map<uint32_t, std::string> names, RuleCatalog catalog)
{
    names_ = std::move(names);
    catalog_ = std::move(catalog);
}

// The user and correlation id of a session, from its record (the loader
// makes no NSS lookups: it runs under seccomp and NSS may open sockets).
// Records of sessions that ended are forgotten when the cache fills.
const DecisionLog::SessionFacts& DecisionLog::session(uint64_t id)
{
    auto it = sessions_.find(id);
    if (it != sessions_.end())
        return it->second;
    if (sessions_.size() >= kSessionCache)
        sessions_.clear();
    SessionFacts facts;
    if (id != 0) {
        if (auto r = read_record(run_dir_, id)) {
            facts.user = r->user;
            facts.correlation = r->correlation;
        }
    }
    return sessions_.emplace(id, std::move(facts)).first->second;
}

nlohmann::json DecisionLog::fields(const DecisionEvent& e)
{
    const auto& s = session(e.session_id);
    auto name = names_.find(e.policy_id);
    nlohmann::json j{{"event", e.verdict_name()},
                     {"verdict", e.verdict_name()},
                     {"layer", layer_name(e.layer)},
                     {"uid", e.uid},
                     {"session", e.session_id},
                     {"cgroup_id", e.cgroup_id},
                     {"pid", e.pid},
                     {"hook", hook_name(e.hook)},
                     {"direction", hook_direction(e.hook)},
                     {"policy_id", e.policy_id},
                     {"rule", e.rule},
                     {"address", e.address.str()},
                     {"port", e.port},
                     {"proto", e.proto},
                     {"family", e.family},
                     {"time", rfc3339_utc(realtime_ns())}};
    if (e.verdict != AW_EVENT_LOG)
        j["reason"] = reason_name(e.reason);
    if (e.hook != AW_HOOK_SOCK_CREATE)
        j["protocol"] = protocol_name(static_cast<uint8_t>(e.proto));
    if (auto type = e.icmp_type()) {
        j["icmp_type"] = *type;
        j["port"] = 0; // ICMP has no port: the type rides in it (type + 1)
    }
    if (name != names_.end())
        j["policy"] = name->second;
    if (!s.user.empty())
        j["user"] = s.user;
    if (!s.correlation.empty())
        j["correlation"] = s.correlation;
    if (!e.comm.empty())
        j["process"] = e.comm;
    if (const RuleSource* r = catalog_.find(e.policy_id, e.rule)) {
        j["rule_source"] = r->where();
        j["rule_text"] = r->text;
    }
    return j;
}

void DecisionLog::write(const DecisionEvent& e)
{
    static const bool stderr_journal = stderr_is_journal();
    nlohmann::json j = fields(e);
    if (!event_log_.empty())
        append_event_line(event_log_, j.dump()).ok(); // the journal has it too, or stderr below
    bool journaled = false;
    if (journal_) {
        JournalFields fields{{"MESSAGE", "authwall: " + e.str()},
                             {"PRIORITY", e.verdict == AW_EVENT_DENY ? "5" : "6"},
                             {"SYSLOG_IDENTIFIER", "authwall-loader"}};
        // Every JSON field as AUTHWALL_<NAME>, in upper case (a deque: the
        // fields hold views of these names).
        std::deque<std::string> names;
        for (const auto& [key, value] : j.items()) {
            if (key == "time")
                continue;
            std::string upper;
            for (char c : key)
                upper.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
            names.push_back("AUTHWALL_" + upper);
            fields.emplace_back(names.back(), value.is_string() ? value.get<std::string>() : value.dump());
        }
        journaled = journal_send(fields).ok();
    }
    if (!(journaled && stderr_journal))
        spdlog::info("event: {}", e.str());
}

} // namespace authwall
