// SPDX-License-Identifier: Apache-2.0
// authctl watch: live events (open, close, revoke, reaped, expired; deny,
// audit, log from the loader) from the event log of authwall.toml, or from
// the journal when there is none. The denial ring buffer has one reader
// (the loader), which copies denials to both.
#include "authctl/context.h"
#include "authctl/journal_events.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <fcntl.h>
#include <sys/stat.h>
#include <iostream>

namespace authctl {

using namespace authwall;

namespace {
// A decision event (deny, audit, log): who, what, why.
std::string describe_decision(const nlohmann::json& e, const std::string& event)
{
    std::string who = e.value("user", "");
    if (who.empty())
        who = "uid " + std::to_string(e.value("uid", 0u));
    std::string process = e.value("process", "");
    std::string rule = e.value("rule_source", "");
    if (!rule.empty())
        rule = " rule #" + std::to_string(e.value("rule", 0)) + " \"" + e.value("rule_text", "") + "\" (" + rule + ")";
    return fmt::format("{} {:7} {} policy={} layer={} {} {} {} port {} hook={}{}{}{}", e.value("time", ""), event, who,
                       e.value("policy", std::to_string(e.value("policy_id", 0u))), e.value("layer", "login"),
                       e.value("direction", ""), e.value("protocol", ""), e.value("address", ""), e.value("port", 0),
                       e.value("hook", ""), event == "log" ? "" : " reason=" + e.value("reason", ""),
                       process.empty() ? "" : fmt::format(" process={}[{}]", process, e.value("pid", 0)), rule);
}

std::string describe(const nlohmann::json& e)
{
    std::string event = e.value("event", "?");
    if (event == "deny" || event == "audit" || event == "log")
        return describe_decision(e, event);
    std::string rhost = e.contains("rhost") && e["rhost"].is_string() ? e["rhost"].get<std::string>() : "-";
    std::string detail = e.value("detail", "");
    return fmt::format("{} {:7} session={} {} user={} rhost={} policy={}{}{}", e.value("time", ""), event,
                       e.value("session", uint64_t{0}), e.value("kind", ""), e.value("user", ""), rhost,
                       e.value("policy", ""), detail.empty() ? "" : " — ", detail);
}
// --user (a name, or a uid), --policy, --event: every one given must hold.
bool wanted(const nlohmann::json& e, const WatchFilter& f)
{
    if (!f.user.empty() && e.value("user", "") != f.user && std::to_string(e.value("uid", ~0u)) != f.user)
        return false;
    if (!f.policy.empty() && e.value("policy", "") != f.policy)
        return false;
    if (!f.events.empty() && std::find(f.events.begin(), f.events.end(), e.value("event", "")) == f.events.end())
        return false;
    return true;
}

// Whether the log `path` names is now another file than the one `log` reads:
// logrotate renamed it and a writer created a new one (writers open, append
// and close for each line, so the renamed file gets no more lines).
bool replaced(const Fd& log, const std::filesystem::path& path)
{
    struct stat reading = {};
    struct stat named = {};
    if (::stat(path.c_str(), &named) != 0 || ::fstat(log.get(), &reading) != 0)
        return false; // not created again yet
    return reading.st_ino != named.st_ino || reading.st_dev != named.st_dev;
}

// The journal's events, printed and filtered as the event log's are.
int watch_journal(const Context& ctx, bool from_start, long count, const WatchFilter& filter)
{
    long shown = 0;
    auto status = follow_journal(filter.events, from_start, [&](const nlohmann::json& e) {
        if (!wanted(e, filter))
            return true;
        std::cout << (ctx.json ? e.dump() : describe(e)) << std::endl;
        return !(count > 0 && ++shown >= count);
    });
    return status ? 0 : fail(status.error());
}
} // namespace

int cmd_watch(const Context& ctx, bool from_start, long count, const WatchFilter& filter)
{
    const auto& path = ctx.config.event_log;
    if (path.empty())
        return watch_journal(ctx, from_start, count, filter);
    Fd inotify(inotify_init1(IN_CLOEXEC));
    // Watch the directory: the log may not exist yet, or be rotated
    // (renamed, then created again by the next writer).
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
                if (e.is_discarded() || !e.is_object() || !wanted(e, filter))
                    continue;
                std::cout << (ctx.json ? e.dump() : describe(e)) << std::endl;
                if (count > 0 && ++shown >= count)
                    return 0;
            }
            if (replaced(log, path)) { // rotated: the new log from its first byte
                log.reset();
                offset = 0;
                pending.clear();
                continue;
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
