// SPDX-License-Identifier: Apache-2.0
// authctl show, revoke, status.
#include "authctl/context.h"
#include "authctl/listing.h"

#include "core/base/identity.h"
#include "core/base/time.h"
#include "core/host/cgroup.h"
#include "core/dataplane/datapath.h"
#include "core/dataplane/maps.h"
#include "core/nft/mirror.h"
#include "core/session/mirror.h"
#include "core/daemon/daemon.h"
#include "core/dataplane/pins.h"
#include "core/session/events.h"
#include "core/session/record.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <iostream>

namespace authctl {

using namespace authwall;
namespace fs = std::filesystem;

namespace {

// The last denials of a session, from the event log (when configured).
std::vector<nlohmann::json> last_denials(const Config& config, uint64_t id, size_t count)
{
    std::vector<nlohmann::json> out;
    if (config.event_log.empty())
        return out;
    std::ifstream in(config.event_log);
    for (std::string line; std::getline(in, line);) {
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (!j.is_discarded() && j.value("event", "") == "deny" && j.value("session", uint64_t{0}) == id)
            out.push_back(j);
    }
    if (out.size() > count)
        out.erase(out.begin(), out.end() - static_cast<long>(count));
    return out;
}

} // namespace

SessionAccess::SessionAccess(const Context& ctx, PinnedMaps maps)
    : maps_(std::move(maps)), store_(&maps_, ctx.config.run_dir, ctx.config.nft_mirror, linked_login_extras()),
      events_("authctl", ctx.config.event_log), service_(store_, events_)
{
}

Result<std::unique_ptr<SessionAccess>> SessionAccess::open(const Context& ctx)
{
    auto maps = PinnedMaps::open(ctx.config.pin_dir);
    if (!maps)
        return maps.error();
    return std::unique_ptr<SessionAccess>(new SessionAccess(ctx, std::move(maps).value()));
}

void SessionAccess::print_warnings()
{
    for (const auto& w : std::exchange(warnings, {}))
        std::cerr << "authctl: warning: " << w << "\n";
}

namespace {

// What authctl show reports of one session: its entry, counters, record
// and last denials.
struct SessionDetail {
    uint64_t id;
    SessionEntry entry;
    SessionStats stats;
    Result<SessionRecord> record;
    std::vector<nlohmann::json> denials;
};

const char* kind_text(const SessionEntry& e)
{
    return (e.flags & AW_SESSION_CONTAINER) ? "container" : "login";
}

nlohmann::json session_json(const SessionDetail& d)
{
    const SessionEntry& e = d.entry;
    const SessionStats& st = d.stats;
    nlohmann::json hooks = nlohmann::json::object();
    for (unsigned h = 0; h < AW_HOOK_COUNT; ++h)
        hooks[hook_name(h)] = st.denied[h];
    return nlohmann::json{
        {"version", 1},
        {"id", d.id},
        {"uid", e.uid},
        {"user", user_name(e.uid)},
        {"kind", kind_text(e)},
        {"revoked", (e.flags & AW_SESSION_REVOKED) != 0},
        {"policy_id", e.policy_id},
        {"rhost", e.rhost ? nlohmann::json(e.rhost->str()) : nlohmann::json(nullptr)},
        {"opened_ns", e.opened_ns},
        {"opened_at", rfc3339_utc(e.opened_ns)},
        {"bytes_in", st.bytes_in},
        {"bytes_out", st.bytes_out},
        {"packets_in", st.packets_in},
        {"packets_out", st.packets_out},
        {"denied_by_hook", hooks},
        {"record", d.record ? nlohmann::json::parse(to_json(*d.record)) : nlohmann::json(nullptr)},
        {"last_denials", d.denials},
    };
}

void print_session(const Context& ctx, const SessionDetail& d)
{
    const SessionEntry& e = d.entry;
    const SessionStats& st = d.stats;
    std::cout << fmt::format("session {}\n", d.id);
    std::cout << fmt::format("  user      {} (uid {})\n", user_name(e.uid), e.uid);
    std::cout << fmt::format("  kind      {}{}\n", kind_text(e), (e.flags & AW_SESSION_REVOKED) ? ", REVOKED" : "");
    if (d.record) {
        const SessionRecord& record = *d.record;
        std::cout << fmt::format("  policy    {}\n  service   {}\n  cgroup    {}\n  opened    {} ({} ago)\n",
                                 record.policy, record.service, record.cgroup, record.opened_at,
                                 age_text(record.opened_ns));
        std::cout << fmt::format("  corr. id  {}\n", record.correlation);
    } else {
        std::cout << fmt::format("  policy id {} (no session record in {})\n", e.policy_id,
                                 ctx.config.run_dir.string());
    }
    std::cout << fmt::format("  rhost     {}\n", e.rhost ? e.rhost->str() : "-");
    std::cout << fmt::format("  traffic   in {} ({} packets), out {} ({} packets)\n", bytes_text(st.bytes_in),
                             st.packets_in, bytes_text(st.bytes_out), st.packets_out);
    std::cout << "  denials  ";
    for (unsigned h = 0; h < AW_HOOK_COUNT; ++h)
        std::cout << fmt::format(" {}={}", hook_name(h), st.denied[h]);
    std::cout << "\n";
    if (!d.denials.empty()) {
        std::cout << "  last denials:\n";
        for (const auto& j : d.denials)
            std::cout << fmt::format("    {} {} {} port {} ({})\n", j.value("time", ""), j.value("hook", ""),
                                     j.value("address", ""), j.value("port", 0), j.value("reason", ""));
    } else if (ctx.config.event_log.empty()) {
        std::cout << fmt::format("  last denials: journalctl AUTHWALL_SESSION={}\n", d.id);
    }
}

} // namespace

int cmd_show(const Context& ctx, uint64_t id)
{
    auto maps = PinnedMaps::open(ctx.config.pin_dir);
    if (!maps)
        return fail(maps.error());
    auto entry = maps->lookup_session(id);
    if (!entry)
        return fail(entry.error());
    if (!entry->has_value())
        return fail(Error::msg("show session", std::to_string(id), "no such session (authctl sessions lists them)"));
    auto stats = maps->session_stats(id);
    SessionDetail detail{id, **entry, stats ? *stats : SessionStats{}, read_record(ctx.config.run_dir, id),
                         last_denials(ctx.config, id, 10)};
    nlohmann::json j = session_json(detail);
    if (ctx.json) {
        std::cout << j.dump(2) << "\n";
        return 0;
    }
    print_session(ctx, detail);
    return 0;
}

int cmd_revoke(const Context& ctx, uint64_t id, bool kill)
{
    auto access = SessionAccess::open(ctx);
    if (!access)
        return fail(access.error());
    auto record = read_record(ctx.config.run_dir, id);
    SessionRecord rec = record ? *record : SessionRecord{};
    rec.id = id;
    auto& sessions = **access;
    if (auto st = sessions.service().revoke(rec, "revoke", kill ? "processes killed" : "", &sessions.warnings); !st) {
        if (st.error().err == ENOENT)
            return fail(Error::msg("revoke", std::to_string(id), "no such session (authctl sessions lists them)"));
        return fail(st.error());
    }
    sessions.print_warnings();
    std::cout << "revoked session " << id << ": its traffic is denied from now on\n";
    if (kill) {
        fs::path cgroup = rec.cgroup;
        if (cgroup.empty()) {
            auto mount = find_cgroup2_mount();
            if (!mount)
                return fail(mount.error());
            auto path = cgroup_path_by_id(*mount, id);
            if (!path)
                return fail(path.error());
            cgroup = *path;
        }
        if (auto st = cgroup_kill(cgroup); !st)
            return fail(st.error());
        std::cout << "killed the processes of " << cgroup.string() << "\n";
    }
    return 0;
}

int cmd_revoke_user(const Context& ctx, const std::string& who_text, bool kill, bool undo)
{
    auto resolved = resolve_user(who_text);
    if (!resolved)
        return fail(Error::msg("revoke user", printable(who_text), "is neither a user NSS knows nor a uid"));
    uint32_t uid = *resolved;
    std::string name = user_name(uid);
    auto access = SessionAccess::open(ctx);
    if (!access)
        return fail(access.error());
    auto& service = (*access)->service();
    if (undo) {
        if (auto st = service.revoke_user(uid, name, true); !st)
            return fail(st.error());
        std::cout << "lifted the revocation of " << name << ": their next login is allowed\n";
        return 0;
    }
    // The user layer is revoked first: every process of the user, in a
    // login or not, is cut off at once; then each of their logins.
    if (auto st = service.revoke_user(uid, name, false); !st)
        return fail(st.error());
    std::cout << "revoked user " << name << ": the traffic of all their processes is denied from now on, "
              << "and their logins are refused (authctl revoke --user " << name << " --undo lifts it)\n";
    auto sessions = (*access)->maps().list_sessions();
    if (!sessions)
        return fail(sessions.error());
    // Every session of the uid: each login, and each cgroup enrolled with it.
    int rc = 0;
    size_t revoked = 0;
    for (const auto& [id, entry] : *sessions)
        if (entry.uid == uid) {
            int one = cmd_revoke(ctx, id, kill);
            revoked += one == 0;
            rc |= one;
        }
    std::cout << fmt::format("revoked {} {} of {}\n", revoked, revoked == 1 ? "session" : "sessions", name);
    return rc;
}

namespace {

// Whether each daemon runs for this installation: the holder of its
// instance lock (core/daemon/daemon.h), never a process name.
nlohmann::json daemons_json(const Context& ctx)
{
    nlohmann::json j = nlohmann::json::object();
    for (const char* name : {"authwall-loader", "authwall-cgroupd"}) {
        auto pid = InstanceLock::holder(ctx.config.run_dir, name);
        j[name] = {{"running", pid.has_value()}, {"pid", pid ? nlohmann::json(*pid) : nlohmann::json(nullptr)}};
    }
    return j;
}

nlohmann::json links_json(const Context& ctx, const Result<CgroupMount>& mount)
{
    nlohmann::json links = nlohmann::json::array();
    if (auto l = list_links(ctx.config.pin_dir))
        for (const auto& link : *l) {
            std::string where = std::to_string(link.cgroup_id);
            if (mount)
                if (auto p = cgroup_path_by_id(*mount, link.cgroup_id))
                    where = p->string();
            links.push_back({{"program", link.program}, {"cgroup_id", link.cgroup_id}, {"cgroup", where}});
        }
    return links;
}

nlohmann::json status_json(const Context& ctx)
{
    nlohmann::json j{{"version", 1}, {"pin_dir", ctx.config.pin_dir.string()}};
    std::string lsm_why;
    bool lsm = bpf_lsm_available(&lsm_why);
    auto mount = find_cgroup2_mount();
    j["kernel"] = {{"cgroup2", mount ? nlohmann::json(mount->mount_point.string()) : nlohmann::json(nullptr)},
                   {"btf", ::access("/sys/kernel/btf/vmlinux", R_OK) == 0},
                   {"bpffs", is_bpffs("/sys/fs/bpf")},
                   {"bpf_lsm", lsm},
                   {"bpf_lsm_missing", lsm ? nlohmann::json(nullptr) : nlohmann::json(lsm_why)}};
    j["daemons"] = daemons_json(ctx);
    j["links"] = links_json(ctx, mount);
    bool families = false;
    for (const auto& l : j["links"])
        families |= l["program"] == std::string(kLsmProgramName);
    // What the loader actually attached, not what the probe expects.
    j["non_inet_families_enforced"] = families;
    auto maps = PinnedMaps::open(ctx.config.pin_dir);
    j["installed"] = maps.ok();
    if (!maps) {
        j["install_error"] = maps.error().message();
        return j;
    }
    nlohmann::json fills = nlohmann::json::object();
    for (MapId map : {MapId::Sessions, MapId::SessionStats, MapId::Users, MapId::PolicyNames})
        if (auto f = maps->fill(map))
            fills[std::string(map_name(map))] = {{"entries", f->entries}, {"max_entries", f->max_entries}};
    j["maps"] = fills;
    if (auto s = maps->events_suppressed())
        j["events_suppressed"] = *s;
    if (auto ids = maps->active_policy_ids())
        j["policies_in_force"] = ids->size();
    return j;
}

std::string daemon_text(const nlohmann::json& d)
{
    return d.at("running").get<bool>() ? "running (pid " + std::to_string(d.at("pid").get<pid_t>()) + ")"
                                       : "not running";
}

void print_status(const nlohmann::json& j)
{
    bool installed = j["installed"].get<bool>();
    std::cout << "pins        " << j["pin_dir"].get<std::string>() << (installed ? "" : "  (NOT INSTALLED)") << "\n";
    if (!installed)
        std::cout << "            " << j["install_error"].get<std::string>() << "\n";
    std::cout << "daemons     authwall-loader " << daemon_text(j["daemons"]["authwall-loader"]) << ", authwall-cgroupd "
              << daemon_text(j["daemons"]["authwall-cgroupd"]) << " (enforcement does not depend on them)\n";
    const auto& k = j["kernel"];
    std::cout << "kernel      cgroup2 " << (k["cgroup2"].is_null() ? "MISSING" : k["cgroup2"].get<std::string>())
              << ", BTF " << (k["btf"].get<bool>() ? "yes" : "no") << ", BPF LSM "
              << (k["bpf_lsm"].get<bool>() ? "listed" : "no (" + k["bpf_lsm_missing"].get<std::string>() + ")") << "\n";
    if (installed) {
        std::cout << "families    packet/netlink/...: "
                  << (j["non_inet_families_enforced"].get<bool>() ? "refused per policy"
                                                                  : "NOT refusable (the LSM program is not attached)")
                  << "; raw: refused per policy\n";
        for (auto& [name, f] : j["maps"].items())
            std::cout << fmt::format("map         {:14} {}/{}\n", name, f["entries"].get<uint64_t>(),
                                     f["max_entries"].get<uint32_t>());
        std::cout << "policies    " << j.value("policies_in_force", 0) << " in force\n";
    }
    std::map<std::string, std::vector<std::string>> by_root;
    for (const auto& l : j["links"])
        by_root[l["cgroup"].get<std::string>()].push_back(l["program"].get<std::string>());
    for (const auto& [root, progs] : by_root)
        std::cout << fmt::format("attached    {} programs at {}\n", progs.size(), root);
}

} // namespace

int cmd_status(const Context& ctx)
{
    nlohmann::json j = status_json(ctx);
    if (ctx.json)
        std::cout << j.dump(2) << "\n";
    else
        print_status(j);
    return j["installed"].get<bool>() ? 0 : 1;
}

} // namespace authctl
