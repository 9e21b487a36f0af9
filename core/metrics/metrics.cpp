// SPDX-License-Identifier: Apache-2.0
#include "core/metrics/metrics.h"

#include "core/dataplane/pins.h"
#include "core/nft/mirror.h"
#include "core/session/mirror.h"

#include <bpf/bpf.h>

#include <cerrno>
#include <chrono>
#include <thread>

namespace authwall {

namespace {

void add_counters(SessionStats& into, const SessionStats& s)
{
    into.bytes_in += s.bytes_in;
    into.bytes_out += s.bytes_out;
    into.packets_in += s.packets_in;
    into.packets_out += s.packets_out;
    for (unsigned h = 0; h < AW_HOOK_COUNT; ++h)
        into.denied[h] += s.denied[h];
    into.audited += s.audited;
}

// Whether programs are attached: at least one link pinned.
bool links_pinned(const std::filesystem::path& pin_dir)
{
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(pin_dir / "links", ec))
        if (parse_link_pin_name(entry.path()))
            return true;
    return false;
}

Result<uint32_t> capacity(const PinnedMaps& maps, MapId map)
{
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(maps.map_fd(map), &info, &len) != 0)
        return Error::sys("read map info", std::string(map_name(map)), errno);
    return info.max_entries;
}

// Open sessions' counters and ended sessions' totals, as one state: the
// read is taken again while a session's fold (retire_session, a few
// microseconds) began or ended during it, or was under way, which would
// count that session twice or not at all. A fold still under way, unmoved,
// after kPatience reads is taken for one whose writer died half-way (it
// never ends), and a host that folds without pause gets the last read
// after kAttempts.
Status read_counters(const PinnedMaps& maps, MetricsSnapshot& snap)
{
    constexpr int kPatience = 4, kAttempts = 50;
    for (int attempt = 1;; ++attempt) {
        auto before = maps.policy_totals();
        auto sessions = maps.list_sessions_batch();
        if (!before)
            return before.error();
        if (!sessions)
            return sessions.error();
        std::map<uint32_t, MetricsSnapshot::Policy> policies;
        for (const auto& [id, entry] : *sessions) {
            auto& p = policies[entry.policy_id];
            ++((entry.flags & AW_SESSION_CONTAINER) ? p.containers : p.logins);
            if (auto stats = maps.session_stats(id))
                add_counters(p.counters, *stats);
        }
        auto after = maps.policy_totals();
        if (!after)
            return after.error();
        bool quiet = after->folds_begun == before->folds_begun && after->folds_done == before->folds_done;
        bool settled = quiet && (before->folds_begun == before->folds_done || attempt >= kPatience);
        if (settled || attempt == kAttempts) {
            for (const auto& [id, totals] : after->by_policy)
                add_counters(policies[id].counters, totals);
            snap.policies = std::move(policies);
            snap.sessions_fill.entries = sessions->size();
            return {};
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

// Every policy in force, and any other that has sessions or totals, by name.
Status name_policies(const PinnedMaps& maps, MetricsSnapshot& snap)
{
    auto all = maps.policy_ids();
    auto active = maps.active_policy_ids();
    if (!all)
        return all.error();
    if (!active)
        return active.error();
    snap.policies[AW_POLICY_FALLBACK]; // the unmatched policy always applies
    for (const auto& [name, id] : *active)
        snap.policies[id];
    for (auto& [id, p] : snap.policies)
        p.name = id == AW_POLICY_FALLBACK ? "(unmatched)" : "#" + std::to_string(id);
    for (const auto& [name, id] : *all)
        if (auto it = snap.policies.find(id); it != snap.policies.end())
            it->second.name = name;
    return {};
}

Status read_fill(const PinnedMaps& maps, MetricsSnapshot& snap)
{
    auto sessions = capacity(maps, MapId::Sessions);
    if (!sessions)
        return sessions.error();
    snap.sessions_fill.max_entries = *sessions;
    auto users = maps.fill(MapId::Users);
    if (!users)
        return users.error();
    snap.users_fill = *users;
    return {};
}

// The nft mirror against the sessions map, as `authctl nft verify` does.
Status read_nft_drift(const PinnedMaps& maps, const Config& config, MetricsSnapshot& snap)
{
    auto expected = mirror_expected(maps, config.run_dir);
    if (!expected)
        return expected.error();
    auto actual = nft_read_mirror();
    if (!actual)
        return actual.error();
    MirrorDrift drift = nft_compare(*actual, *expected);
    snap.nft = MetricsSnapshot::NftDrift{actual->table_present, drift.missing.size(), drift.stray.size()};
    return {};
}

// The loader's names.json, when it published one.
Status read_dns_names(const Config& config, MetricsSnapshot& snap)
{
    auto names = read_published_names(config.run_dir);
    if (!names)
        return names.error();
    if (!*names)
        return {};
    MetricsSnapshot::DnsNames dns;
    dns.session_answers = (*names)->session_answers;
    for (const auto& n : (*names)->names) {
        ++(n.failures ? dns.failing : n.addresses.empty() ? dns.no_address : dns.resolved);
        dns.addresses += n.addresses.size();
    }
    snap.dns = dns;
    return {};
}

} // namespace

Result<MetricsSnapshot> read_metrics(const Config& config)
{
    MetricsSnapshot snap;
    // Not policy_totals: pins of an older loader lack it (nothing folded).
    auto maps = PinnedMaps::open(
        config.pin_dir, {MapId::Sessions, MapId::SessionStats, MapId::PolicyNames, MapId::EventBudget, MapId::Users});
    if (!maps) {
        if (maps.error().err == ENOENT)
            return snap; // not installed: authwall_up 0
        return maps.error();
    }
    snap.up = links_pinned(config.pin_dir);
    for (auto step : {read_counters, name_policies, read_fill})
        if (auto st = step(*maps, snap); !st)
            return st.error();
    auto suppressed = maps->events_suppressed();
    if (!suppressed)
        return suppressed.error();
    snap.events_suppressed = *suppressed;
    auto refusals = maps->refusals();
    if (!refusals)
        return refusals.error();
    snap.refusals = *refusals;
    auto reloads = read_reload_record(config.run_dir);
    if (!reloads)
        return reloads.error();
    snap.reloads = *reloads;
    if (auto st = read_dns_names(config, snap); !st)
        return st.error();
    if (config.nft_mirror)
        if (auto st = read_nft_drift(*maps, config, snap); !st)
            return st.error();
    return snap;
}

Result<std::string> collect_metrics(const Config& config, MetricsFormat format)
{
    auto snap = read_metrics(config);
    if (!snap)
        return snap.error();
    return render_metrics(*snap, format);
}

} // namespace authwall
