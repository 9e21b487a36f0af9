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

void JournalSink::session_event(const std::string& event, const SessionRecord& r, const std::string& detail)
{
    if (!event_log_.empty()) {
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
        append_event_line(event_log_, j.dump()).ok(); // the journal below has the event too
    }
    std::string message = "authwall: " + event + " session " + std::to_string(r.id) + " user=" + r.user +
                          " uid=" + std::to_string(r.uid) + " service=" + r.service +
                          " rhost=" + r.rhost.value_or("-") + " policy=" + r.policy + " cgroup=" + r.cgroup +
                          (detail.empty() ? "" : ": ") + detail;
    // The journal's native protocol, as sd_journal_send() speaks it (LOG_AUTHPRIV
    // is facility 10); syslog when there is no journal or it refuses.
    if (::access(kJournalSocket, W_OK) == 0) {
        JournalFields fields{{"MESSAGE", message},
                             {"PRIORITY", std::to_string(LOG_NOTICE)},
                             {"SYSLOG_FACILITY", "10"},
                             {"SYSLOG_IDENTIFIER", identifier_},
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
        if (journal_send(fields).ok())
            return;
    }
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
