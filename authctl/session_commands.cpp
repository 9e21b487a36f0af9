// authctl show, revoke, status.
#include "authctl/context.h"

#include "core/host/cgroup.h"
#include "core/dataplane/datapath.h"
#include "core/dataplane/maps.h"
#include "core/nft/mirror.h"
#include "core/session/mirror.h"
#include "core/dataplane/pins.h"
#include "core/session/events.h"
#include "core/session/record.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <pwd.h>
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

bool process_running(const std::string& comm_prefix)
{
    return !processes_with_comm([&](const std::string& comm) { return comm.rfind(comm_prefix, 0) == 0; }).empty();
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
    const SessionEntry& e = **entry;
    auto stats = maps->session_stats(id);
    SessionStats st = stats ? *stats : SessionStats{};
    auto record = read_record(ctx.config.run_dir, id);
    auto denials = last_denials(ctx.config, id, 10);

    nlohmann::json hooks = nlohmann::json::object();
    for (unsigned h = 0; h < AW_HOOK_COUNT; ++h)
        hooks[hook_name(h)] = st.denied[h];
    nlohmann::json j{
        {"version", 1},
        {"id", id},
        {"uid", e.uid},
        {"user", user_name(e.uid)},
        {"kind", (e.flags & AW_SESSION_CONTAINER) ? "container" : "login"},
        {"revoked", (e.flags & AW_SESSION_REVOKED) != 0},
        {"policy_id", e.policy_id},
        {"rhost", e.rhost ? nlohmann::json(e.rhost->str()) : nlohmann::json(nullptr)},
        {"opened_ns", e.opened_ns},
        {"bytes_in", st.bytes_in},
        {"bytes_out", st.bytes_out},
        {"packets_in", st.packets_in},
        {"packets_out", st.packets_out},
        {"denied_by_hook", hooks},
        {"record", record ? nlohmann::json::parse(to_json(*record)) : nlohmann::json(nullptr)},
        {"last_denials", denials},
    };
    if (ctx.json) {
        std::cout << j.dump(2) << "\n";
        return 0;
    }
    std::cout << fmt::format("session {}\n", id);
    std::cout << fmt::format("  user      {} (uid {})\n", user_name(e.uid), e.uid);
    std::cout << fmt::format("  kind      {}{}\n", j["kind"].get<std::string>(),
                             (e.flags & AW_SESSION_REVOKED) ? ", REVOKED" : "");
    if (record) {
        std::cout << fmt::format("  policy    {}\n  service   {}\n  cgroup    {}\n  opened    {} ({} ago)\n",
                                 record->policy, record->service, record->cgroup, record->opened_at,
                                 age_text(record->opened_ns));
        std::cout << fmt::format("  corr. id  {}\n", record->correlation);
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
    if (!denials.empty()) {
        std::cout << "  last denials:\n";
        for (const auto& d : denials)
            std::cout << fmt::format("    {} {} {} port {} ({})\n", d.value("time", ""), d.value("hook", ""),
                                     d.value("address", ""), d.value("port", 0), d.value("reason", ""));
    } else if (ctx.config.event_log.empty()) {
        std::cout << fmt::format("  last denials: journalctl AUTHWALL_SESSION={}\n", id);
    }
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

int cmd_revoke_user(const Context& ctx, const std::string& name, bool kill, bool undo)
{
    passwd* pw = getpwnam(name.c_str());
    if (!pw)
        return fail(Error::msg("revoke user", name, "unknown to NSS"));
    uint32_t uid = pw->pw_uid;
    auto maps = PinnedMaps::open(ctx.config.pin_dir);
    if (!maps)
        return fail(maps.error());
    auto existing = maps->lookup_user(uid);
    if (!existing)
        return fail(existing.error());
    SessionRecord who;
    who.user = name;
    who.uid = uid;
    who.kind = SessionKind::User;
    JournalSink events("authctl", ctx.config.event_log);
    if (undo) {
        if (!*existing || !((*existing)->flags & AW_USER_REVOKED))
            return fail(Error::msg("lift revocation of", name, "the user is not revoked"));
        if (auto st = maps->set_user(uid, (*existing)->policy_id, (*existing)->flags & ~AW_USER_REVOKED); !st)
            return fail(st.error());
        events.session_event("revoke", who, "revocation of the user lifted");
        std::cout << "lifted the revocation of " << name << ": their next login is allowed\n";
        return 0;
    }
    // The user layer is revoked first: every process of the user, in a
    // login or not, is cut off at once; then each of their logins.
    uint32_t policy = *existing ? (*existing)->policy_id : AW_POLICY_FALLBACK;
    uint32_t flags = *existing ? (*existing)->flags : 0;
    if (auto st = maps->set_user(uid, policy, flags | AW_USER_REVOKED); !st)
        return fail(st.error());
    events.session_event("revoke", who, "every process of the user; logins refused until lifted");
    std::cout << "revoked user " << name << ": the traffic of all their processes is denied from now on, "
              << "and their logins are refused (authctl revoke --user " << name << " --undo lifts it)\n";
    auto sessions = maps->list_sessions();
    if (!sessions)
        return fail(sessions.error());
    int rc = 0;
    for (const auto& [id, entry] : *sessions)
        if (entry.uid == uid)
            rc |= cmd_revoke(ctx, id, kill);
    return rc;
}

int cmd_status(const Context& ctx)
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
    j["daemons"] = {{"authwall-loader", process_running("authwall-loade")},
                    {"authwall-cgroupd", process_running("authwall-cgrou")}};
    nlohmann::json links = nlohmann::json::array();
    if (auto l = list_links(ctx.config.pin_dir))
        for (const auto& link : *l) {
            std::string where = std::to_string(link.cgroup_id);
            if (mount)
                if (auto p = cgroup_path_by_id(*mount, link.cgroup_id))
                    where = p->string();
            links.push_back({{"program", link.program}, {"cgroup_id", link.cgroup_id}, {"cgroup", where}});
        }
    j["links"] = links;
    bool families = false;
    for (const auto& l : links)
        families |= l["program"] == std::string(kLsmProgramName);
    // What the loader actually attached, not what the probe expects.
    j["non_inet_families_enforced"] = families;
    auto maps = PinnedMaps::open(ctx.config.pin_dir);
    j["installed"] = maps.ok();
    if (maps) {
        nlohmann::json fills = nlohmann::json::object();
        for (auto name : {"sessions", "session_stats", "users", "policy_names"})
            if (auto f = maps->fill(name))
                fills[name] = {{"entries", f->entries}, {"max_entries", f->max_entries}};
        j["maps"] = fills;
        if (auto s = maps->events_suppressed())
            j["events_suppressed"] = *s;
        if (auto ids = maps->active_policy_ids())
            j["policies_in_force"] = ids->size();
    } else {
        j["install_error"] = maps.error().message();
    }
    if (ctx.json) {
        std::cout << j.dump(2) << "\n";
        return maps.ok() ? 0 : 1;
    }
    std::cout << "pins        " << ctx.config.pin_dir.string() << (maps ? "" : "  (NOT INSTALLED)") << "\n";
    if (!maps)
        std::cout << "            " << maps.error().message() << "\n";
    std::cout << "daemons     authwall-loader "
              << (j["daemons"]["authwall-loader"].get<bool>() ? "running" : "not running") << ", authwall-cgroupd "
              << (j["daemons"]["authwall-cgroupd"].get<bool>() ? "running" : "not running")
              << " (enforcement does not depend on them)\n";
    std::cout << "kernel      cgroup2 " << (mount ? mount->mount_point.string() : "MISSING") << ", BTF "
              << (j["kernel"]["btf"].get<bool>() ? "yes" : "no") << ", BPF LSM "
              << (lsm ? "listed" : "no (" + lsm_why + ")") << "\n";
    if (maps)
        std::cout << "families    packet/netlink/...: "
                  << (families ? "refused per policy" : "NOT refusable (the LSM program is not attached)")
                  << "; raw: refused per policy\n";
    if (maps) {
        for (auto& [name, f] : j["maps"].items())
            std::cout << fmt::format("map         {:14} {}/{}\n", name, f["entries"].get<uint64_t>(),
                                     f["max_entries"].get<uint32_t>());
        std::cout << "policies    " << j.value("policies_in_force", 0) << " in force\n";
    }
    std::map<std::string, std::vector<std::string>> by_root;
    for (const auto& l : links)
        by_root[l["cgroup"].get<std::string>()].push_back(l["program"].get<std::string>());
    for (const auto& [root, progs] : by_root)
        std::cout << fmt::format("attached    {} programs at {}\n", progs.size(), root);
    return maps.ok() ? 0 : 1;
}

} // namespace authctl
