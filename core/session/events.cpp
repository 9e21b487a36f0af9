// SPDX-License-Identifier: Apache-2.0
#include "core/session/events.h"

#include "core/base/event_log.h"
#include "core/base/journal.h"
#include "core/base/time.h"

#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <fcntl.h>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

namespace authwall {

namespace {

// The tally as named numbers: the JSON event log's key, the journal's field.
struct TallyField {
    const char* key;
    const char* field;
    uint64_t value;
};

std::vector<TallyField> tally_fields(const SessionTally* t)
{
    if (!t)
        return {};
    return {{"duration_s", "AUTHWALL_DURATION_S", t->duration_s},
            {"bytes_in", "AUTHWALL_BYTES_IN", t->counters.bytes_in},
            {"bytes_out", "AUTHWALL_BYTES_OUT", t->counters.bytes_out},
            {"packets_in", "AUTHWALL_PACKETS_IN", t->counters.packets_in},
            {"packets_out", "AUTHWALL_PACKETS_OUT", t->counters.packets_out},
            {"denied", "AUTHWALL_DENIED", t->counters.denied_total()},
            {"audited", "AUTHWALL_AUDITED", t->counters.audited}};
}

std::string tally_text(const SessionTally* t)
{
    if (!t)
        return "";
    const auto& c = t->counters;
    return " duration=" + std::to_string(t->duration_s) + "s in=" + std::to_string(c.bytes_in) + "B/" +
           std::to_string(c.packets_in) + "p out=" + std::to_string(c.bytes_out) + "B/" +
           std::to_string(c.packets_out) + "p denied=" + std::to_string(c.denied_total()) +
           (c.audited ? " audited=" + std::to_string(c.audited) : "");
}

// What an earlier PAM module handed the login, in the message too: a
// syslog reader without the journal's fields still joins on it. The values
// were sanitised at open (no spaces, quotes or control characters).
std::string auth_text(const SessionRecord& r)
{
    return (r.auth_correlation.empty() ? "" : " auth_correlation=" + r.auth_correlation) +
           (r.auth_claims.empty() ? "" : " auth_claims=" + r.auth_claims);
}

// The event as one line of the JSON event log.
std::string event_json(const std::string& event, const SessionRecord& r, const std::string& detail,
                       const std::vector<TallyField>& counts)
{
    nlohmann::json j{{"event", event},
                     {"session", r.id},
                     {"correlation", r.correlation},
                     {"user", r.user},
                     {"uid", r.uid},
                     {"service", r.service},
                     {"rhost", r.rhost ? nlohmann::json(*r.rhost) : nlohmann::json(nullptr)},
                     {"policy", r.policy},
                     {"cgroup", r.cgroup},
                     {"kind", kind_name(r.kind)},
                     {"detail", detail},
                     {"time", rfc3339_utc(realtime_ns())}};
    for (const auto& c : counts)
        j[c.key] = c.value;
    if (!r.auth_correlation.empty())
        j["auth_correlation"] = r.auth_correlation;
    if (!r.auth_claims.empty())
        j["auth_claims"] = r.auth_claims;
    return j.dump();
}

// The event as the journal's fields (LOG_AUTHPRIV is facility 10).
JournalFields event_fields(const std::string& identifier, const std::string& event, const SessionRecord& r,
                           const std::string& detail, const std::string& message, const std::vector<TallyField>& counts)
{
    JournalFields fields{{"MESSAGE", message},
                         {"PRIORITY", std::to_string(LOG_NOTICE)},
                         {"SYSLOG_FACILITY", "10"},
                         {"SYSLOG_IDENTIFIER", identifier},
                         {"AUTHWALL_EVENT", event},
                         {"AUTHWALL_SESSION", std::to_string(r.id)},
                         {"AUTHWALL_CORRELATION", r.correlation},
                         {"AUTHWALL_USER", r.user},
                         {"AUTHWALL_UID", std::to_string(r.uid)},
                         {"AUTHWALL_SERVICE", r.service},
                         {"AUTHWALL_RHOST", r.rhost.value_or("")},
                         {"AUTHWALL_POLICY", r.policy},
                         {"AUTHWALL_CGROUP", r.cgroup},
                         {"AUTHWALL_KIND", kind_name(r.kind)},
                         {"AUTHWALL_DETAIL", detail}};
    for (const auto& c : counts)
        fields.emplace_back(c.field, std::to_string(c.value));
    if (!r.auth_correlation.empty())
        fields.emplace_back("AUTHWALL_AUTH_CORRELATION", r.auth_correlation);
    if (!r.auth_claims.empty())
        fields.emplace_back("AUTHWALL_AUTH_CLAIMS", r.auth_claims);
    return fields;
}

} // namespace

void JournalSink::session_event(const std::string& event, const SessionRecord& r, const std::string& detail,
                                const SessionTally* tally)
{
    auto counts = tally_fields(tally);
    if (!event_log_.empty())
        append_event_line(event_log_, event_json(event, r, detail, counts)).ok(); // the journal below has it too
    std::string message = "authwall: " + event + " session " + std::to_string(r.id) + " user=" + r.user +
                          " uid=" + std::to_string(r.uid) + " service=" + r.service +
                          " rhost=" + r.rhost.value_or("-") + " policy=" + r.policy + " cgroup=" + r.cgroup +
                          tally_text(tally) + auth_text(r) + (detail.empty() ? "" : ": ") + detail;
    // The journal's native protocol, as sd_journal_send() speaks it; syslog
    // when there is no journal or it refuses.
    if (::access(journal_socket_.c_str(), W_OK) == 0 &&
        journal_send(event_fields(identifier_, event, r, detail, message, counts), journal_socket_).ok())
        return;
    openlog(identifier_.c_str(), LOG_PID, LOG_AUTHPRIV);
    syslog(LOG_NOTICE, "%s correlation=%s", message.c_str(), r.correlation.c_str());
    closelog();
}

bool stderr_is_journal()
{
    const char* stream = std::getenv("JOURNAL_STREAM");
    if (!stream)
        return false;
    unsigned long long dev = 0, ino = 0;
    if (std::sscanf(stream, "%llu:%llu", &dev, &ino) != 2)
        return false;
    struct stat st {};
    return ::fstat(STDERR_FILENO, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

} // namespace authwall
