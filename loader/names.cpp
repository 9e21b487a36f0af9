// SPDX-License-Identifier: Apache-2.0
#include "loader/names.h"

#include <algorithm>

namespace authwall {

namespace {

using std::chrono::seconds;

seconds clamp_ttl(seconds ttl, const DnsSettings& s)
{
    return std::clamp(ttl, seconds(s.min_ttl_sec), seconds(s.max_ttl_sec));
}

} // namespace

void NameTable::want(const std::set<std::string>& names, Clock::time_point now)
{
    std::erase_if(names_, [&](const auto& kv) { return !names.count(kv.first); });
    for (const auto& n : names)
        if (names_.try_emplace(n).second)
            names_[n].refresh_at = now;
}

std::vector<std::string> NameTable::due(Clock::time_point now) const
{
    std::vector<std::string> out;
    for (const auto& [name, e] : names_)
        if (!e.in_flight && e.refresh_at <= now)
            out.push_back(name);
    return out;
}

void NameTable::asked(const std::string& name)
{
    if (auto it = names_.find(name); it != names_.end())
        it->second.in_flight = true;
}

bool NameTable::pending() const
{
    return std::any_of(names_.begin(), names_.end(), [](const auto& kv) { return kv.second.in_flight; });
}

void NameTable::answered(const std::string& name, const std::vector<NameAnswer>& answer, Clock::time_point now)
{
    auto it = names_.find(name);
    if (it == names_.end())
        return; // no rule wants it any more
    if (answer.empty())
        return not_found(name, now);
    Entry& e = it->second;
    seconds shortest(settings_.max_ttl_sec);
    e.last_answer.clear();
    for (const auto& a : answer) {
        if (e.last_answer.size() >= settings_.max_addresses && !e.last_answer.count(a.address))
            continue;
        seconds ttl = clamp_ttl(a.ttl, settings_);
        shortest = std::min(shortest, ttl);
        auto& until = e.valid_until[a.address];
        until = std::max(until, now + ttl);
        e.last_answer.insert(a.address);
    }
    e.last_good = now;
    e.failures = 0;
    e.error.clear();
    e.in_flight = false;
    // Asked again before the shortest TTL runs out: a moved address is in
    // force before clients' caches of the old answer expire.
    e.refresh_at = now + std::chrono::duration_cast<Clock::duration>(shortest) * 3 / 4;
}

void NameTable::not_found(const std::string& name, Clock::time_point now)
{
    auto it = names_.find(name);
    if (it == names_.end())
        return;
    Entry& e = it->second;
    e.last_answer.clear();
    e.last_good = now;
    e.failures = 0;
    e.error.clear();
    e.in_flight = false;
    e.refresh_at = now + seconds(settings_.min_ttl_sec);
}

void NameTable::failed(const std::string& name, const std::string& why, Clock::time_point now)
{
    auto it = names_.find(name);
    if (it == names_.end())
        return;
    Entry& e = it->second;
    e.failures = std::min(e.failures + 1, 16u);
    e.error = why;
    e.in_flight = false;
    // Back off, from the TTL floor up to a minute.
    seconds wait = std::min(seconds(int64_t{settings_.min_ttl_sec} << (e.failures - 1)), seconds(60));
    e.refresh_at = now + std::max(wait, seconds(1));
}

NameTable::Clock::time_point NameTable::leaves_at(const Entry& e, const IpAddress& a, Clock::time_point until) const
{
    Clock::time_point at = until + seconds(settings_.grace_sec);
    // While the server fails, the last good answer holds until it is stale.
    if (e.failures > 0 && e.last_good && e.last_answer.count(a))
        at = std::max(at, *e.last_good + seconds(settings_.stale_sec));
    return at;
}

bool NameTable::address_in_force(const Entry& e, const IpAddress& a, Clock::time_point until,
                                 Clock::time_point now) const
{
    return now < leaves_at(e, a, until);
}

NameAddresses NameTable::in_force(Clock::time_point now)
{
    NameAddresses out;
    for (auto& [name, e] : names_) {
        std::erase_if(e.valid_until, [&](const auto& kv) { return !address_in_force(e, kv.first, kv.second, now); });
        auto& list = out[name];
        for (const auto& [a, until] : e.valid_until)
            list.push_back(a);
    }
    return out;
}

std::optional<NameTable::Clock::time_point> NameTable::next_event(Clock::time_point now) const
{
    std::optional<Clock::time_point> next;
    auto consider = [&](Clock::time_point t) {
        if (!next || t < *next)
            next = t;
    };
    for (const auto& [name, e] : names_) {
        if (!e.in_flight)
            consider(e.refresh_at);
        for (const auto& [a, until] : e.valid_until)
            if (auto at = leaves_at(e, a, until); at > now)
                consider(at);
    }
    return next;
}

const NameTable::Entry* NameTable::entry(const std::string& name) const
{
    auto it = names_.find(name);
    return it == names_.end() ? nullptr : &it->second;
}

nlohmann::json NameTable::state(Clock::time_point now) const
{
    auto in_seconds = [&](Clock::time_point t) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(t - now).count() / 1000.0;
    };
    nlohmann::json names = nlohmann::json::array();
    for (const auto& [name, e] : names_) {
        nlohmann::json addresses = nlohmann::json::array();
        for (const auto& [a, until] : e.valid_until) {
            if (!address_in_force(e, a, until, now))
                continue;
            addresses.push_back({{"address", a.str()},
                                 {"answered", e.last_answer.count(a) > 0},
                                 {"leaves_in_s", in_seconds(leaves_at(e, a, until))}});
        }
        nlohmann::json n = {{"name", name}, {"addresses", addresses}, {"next_query_in_s", in_seconds(e.refresh_at)}};
        n["error"] = e.error.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.error);
        n["failures"] = e.failures;
        names.push_back(std::move(n));
    }
    return {{"names", names}};
}

} // namespace authwall
