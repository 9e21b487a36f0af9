// authctl watch: live session events (open, close, deny, revoke, reaped,
// expired) from the event log of authwall.toml. The denial ring buffer has
// one reader (the loader), which copies denials there.
#include "authctl/context.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <iostream>

namespace authctl {

using namespace authwall;

namespace {
std::string describe(const nlohmann::json& e)
{
    std::string event = e.value("event", "?");
    if (event == "deny")
        return fmt::format("{} deny    layer={} session={} uid={} hook={} reason={} {} port {} pid={}",
                           e.value("time", ""), e.value("layer", "login"), e.value("session", uint64_t{0}),
                           e.value("uid", 0u), e.value("hook", ""), e.value("reason", ""), e.value("address", ""),
                           e.value("port", 0), e.value("pid", 0));
    std::string rhost = e.contains("rhost") && e["rhost"].is_string() ? e["rhost"].get<std::string>() : "-";
    std::string detail = e.value("detail", "");
    return fmt::format("{} {:7} session={} {} user={} rhost={} policy={}{}{}", e.value("time", ""), event,
                       e.value("session", uint64_t{0}), e.value("kind", ""), e.value("user", ""), rhost,
                       e.value("policy", ""), detail.empty() ? "" : " — ", detail);
}
} // namespace

int cmd_watch(const Context& ctx, bool from_start, long count)
{
    const auto& path = ctx.config.event_log;
    if (path.empty())
        return fail(Error::msg("watch", "events", "needs event_log in authwall.toml; without it, use "
                                                  "journalctl -f -o verbose AUTHWALL_EVENT=deny (or open, close, ...)"));
    Fd inotify(inotify_init1(IN_CLOEXEC));
    // Watch the directory: the log may not exist yet, or be rotated.
    if (!inotify || inotify_add_watch(inotify.get(), path.parent_path().c_str(), IN_MODIFY | IN_CREATE) < 0)
        return fail(Error::sys("watch", path.parent_path().string(), errno));

    Fd log;
    off_t offset = 0;
    std::string pending;
    long shown = 0;
    // What is in the log when we start is history: skipped unless asked for.
    // A log created later is read from its first byte.
    log.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (log && !from_start)
        offset = ::lseek(log.get(), 0, SEEK_END);
    for (;;) {
        if (!log)
            log.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (log) {
            struct stat st {};
            if (::fstat(log.get(), &st) == 0 && st.st_size < offset) // truncated or replaced
                offset = 0;
            char buf[8192];
            ssize_t n;
            while ((n = ::pread(log.get(), buf, sizeof(buf), offset)) > 0) {
                offset += n;
                pending.append(buf, static_cast<size_t>(n));
            }
            size_t nl;
            while ((nl = pending.find('\n')) != std::string::npos) {
                std::string line = pending.substr(0, nl);
                pending.erase(0, nl + 1);
                auto e = nlohmann::json::parse(line, nullptr, false);
                if (e.is_discarded())
                    continue;
                std::cout << (ctx.json ? e.dump() : describe(e)) << std::endl;
                if (count > 0 && ++shown >= count)
                    return 0;
            }
        }
        pollfd p{inotify.get(), POLLIN, 0};
        if (poll(&p, 1, -1) < 0 && errno != EINTR)
            return fail(Error::sys("watch", path.string(), errno));
        char events[4096];
        (void)!::read(inotify.get(), events, sizeof(events));
    }
}

} // namespace authctl
