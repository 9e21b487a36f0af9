// SPDX-License-Identifier: Apache-2.0
#include "authctl/journal_events.h"

#include "core/base/journal.h"
#include "core/base/time.h"

#include <systemd/sd-journal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <memory>
#include <string_view>

namespace authctl {

using namespace authwall;

namespace {

constexpr std::string_view kPrefix = "AUTHWALL_";

// The keys the event log writes as numbers (session events, their tally,
// and the loader's decision events).
bool numeric_key(std::string_view key)
{
    static constexpr std::string_view keys[] = {
        "session", "uid",    "pid",     "cgroup_id",  "policy_id", "rule",      "port",       "proto",
        "family",  "denied", "audited", "duration_s", "bytes_in",  "bytes_out", "packets_in", "packets_out"};
    return std::find(std::begin(keys), std::end(keys), key) != std::end(keys);
}

struct JournalCloser {
    void operator()(sd_journal* j) const { sd_journal_close(j); }
};
using Journal = std::unique_ptr<sd_journal, JournalCloser>;

// The AUTHWALL_ fields of the entry under the cursor.
std::vector<std::string> entry_fields(sd_journal* j)
{
    std::vector<std::string> fields;
    const void* data = nullptr;
    size_t length = 0;
    sd_journal_restart_data(j);
    while (sd_journal_enumerate_data(j, &data, &length) > 0) {
        std::string_view field(static_cast<const char*>(data), length);
        if (field.substr(0, kPrefix.size()) == kPrefix)
            fields.emplace_back(field);
    }
    return fields;
}

} // namespace

const std::vector<std::string>& journal_event_names()
{
    static const std::vector<std::string> names{"open", "close", "revoke", "reaped", "expired", "deny", "audit", "log"};
    return names;
}

nlohmann::json journal_event(const std::vector<std::string>& fields, uint64_t realtime_us)
{
    nlohmann::json e = nlohmann::json::object();
    for (std::string_view field : fields) {
        auto eq = field.find('=');
        if (field.substr(0, kPrefix.size()) != kPrefix || eq == std::string_view::npos || eq == kPrefix.size())
            continue;
        std::string key(field.substr(kPrefix.size(), eq - kPrefix.size()));
        std::transform(key.begin(), key.end(), key.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        std::string_view value = field.substr(eq + 1);
        if (numeric_key(key)) {
            uint64_t n = 0;
            auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
            if (ec == std::errc() && end == value.data() + value.size() && !value.empty())
                e[key] = n;
        } else if (key == "rhost" && value.empty()) {
            e[key] = nullptr; // the event log's "no remote host"
        } else {
            e[key] = std::string(value);
        }
    }
    e["time"] = rfc3339_utc(realtime_us * 1000);
    return e;
}

Status follow_journal(const std::vector<std::string>& events, bool from_start,
                      const std::function<bool(const nlohmann::json&)>& on_event)
{
    // Without journald there is nothing to follow: say so rather than wait
    // forever on no files.
    if (::access(kJournalSocket, F_OK) != 0)
        return Error::msg("watch", "events",
                          "no event_log in authwall.toml and no journal on this host (journald is not running)");
    sd_journal* raw = nullptr;
    if (int r = sd_journal_open(&raw, SD_JOURNAL_LOCAL_ONLY | SD_JOURNAL_SYSTEM); r < 0)
        return Error::sys("watch", "the journal", -r);
    Journal j(raw);
    // Matches on one field are alternatives: any of the wanted events.
    for (const auto& name : events.empty() ? journal_event_names() : events) {
        std::string match = std::string(kPrefix) + "EVENT=" + name;
        if (int r = sd_journal_add_match(j.get(), match.data(), match.size()); r < 0)
            return Error::sys("watch", "the journal", -r);
    }
    // From now: the cursor after the last event already there.
    int r = from_start ? sd_journal_seek_head(j.get()) : sd_journal_seek_tail(j.get());
    if (r >= 0 && !from_start)
        r = sd_journal_previous(j.get());
    if (r < 0)
        return Error::sys("watch", "the journal", -r);
    for (;;) {
        r = sd_journal_next(j.get());
        if (r < 0)
            return Error::sys("watch", "the journal", -r);
        if (r == 0) {
            r = sd_journal_wait(j.get(), UINT64_MAX);
            if (r < 0 && r != -EINTR)
                return Error::sys("watch", "the journal", -r);
            continue;
        }
        uint64_t usec = 0;
        sd_journal_get_realtime_usec(j.get(), &usec);
        if (!on_event(journal_event(entry_fields(j.get()), usec)))
            return {};
    }
}

} // namespace authctl
