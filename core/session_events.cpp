#include "core/session_events.h"

#include <sys/stat.h>
#include <syslog.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <fcntl.h>
#include <cstdio>
#include <cstdlib>
#include <fmt/format.h>
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
                         {"kind", r.kind},
                         {"detail", detail},
                         {"time", rfc3339_utc(realtime_ns())}};
        std::string line = j.dump() + "\n";
        // O_APPEND: concurrent sessions never interleave within a line.
        int fd = ::open(event_log_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
        if (fd >= 0) {
            (void)!::write(fd, line.data(), line.size());
            ::close(fd);
        }
    }
    std::string message = fmt::format(
        "authwall: {} session {} user={} uid={} service={} rhost={} policy={} cgroup={}{}{}", event, r.id, r.user,
        r.uid, r.service, r.rhost.value_or("-"), r.policy, r.cgroup, detail.empty() ? "" : ": ", detail);
    if (::access("/run/systemd/journal/socket", W_OK) == 0) {
        sd_journal_send("MESSAGE=%s", message.c_str(), "PRIORITY=%d", LOG_NOTICE, "SYSLOG_FACILITY=%d", 10,
                        "SYSLOG_IDENTIFIER=%s", identifier_.c_str(), "AUTHWALL_EVENT=%s", event.c_str(),
                        "AUTHWALL_SESSION=%llu", static_cast<unsigned long long>(r.id), "AUTHWALL_CORRELATION=%s",
                        r.correlation.c_str(), "AUTHWALL_USER=%s", r.user.c_str(), "AUTHWALL_UID=%u", r.uid,
                        "AUTHWALL_SERVICE=%s", r.service.c_str(), "AUTHWALL_RHOST=%s", r.rhost.value_or("").c_str(),
                        "AUTHWALL_POLICY=%s", r.policy.c_str(), "AUTHWALL_CGROUP=%s", r.cgroup.c_str(),
                        "AUTHWALL_KIND=%s", r.kind.c_str(), "AUTHWALL_DETAIL=%s", detail.c_str(), nullptr);
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
