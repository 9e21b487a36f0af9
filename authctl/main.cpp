// SPDX-License-Identifier: Apache-2.0
// authctl: inspect and control authwall. Reads the pins directly, so it works
// while the daemons are down. Exit codes: 0 ok, 1 error, 2 usage.
#include "authctl/context.h"
#include "authctl/journal_events.h"
#include "authctl/listing.h"
#include "core/base/identity.h"
#include "core/host/cgroup.h"
#include "core/session/record.h"
#include "core/policy/config.h"
#include "core/policy/compiler.h"
#include "core/policy/policy_file.h"
#include "core/policy/view.h"
#include "authctl/policy_test.h"
#include "core/policy/catalog.h"
#include "core/policy/index.h"
#include "core/dataplane/datapath.h"
#include "core/dataplane/maps.h"
#include "core/nft/mirror.h"
#include "core/session/mirror.h"
#include "core/dataplane/pins.h"
#include "core/base/time.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <pwd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <set>

using namespace authwall;
using namespace authctl;
namespace fs = std::filesystem;

namespace {

// A session is enforced when its entry is present, its policy resolves in
// the active generation, and programs are attached at one of its ancestors.
struct Enforcement {
    bool enforced = false;
    std::string why; // when not enforced
    std::string cgroup_path;
};

Enforcement check_enforcement(const CgroupMount& mount, uint64_t id, const std::set<uint64_t>& root_ids,
                              bool policy_active)
{
    Enforcement e;
    auto path = cgroup_path_by_id(mount, id);
    if (!path) {
        e.why = "cgroup gone";
        return e;
    }
    e.cgroup_path = path->string();
    auto ancestors = cgroup_ancestor_ids(mount, *path);
    bool attached = false;
    if (ancestors)
        for (auto a : *ancestors)
            attached |= root_ids.count(a) > 0;
    if (!attached) {
        e.why = "no programs attached above its cgroup";
        return e;
    }
    if (!policy_active) {
        e.why = "policy not in force (fallback applies)";
        e.enforced = true; // still enforced, with the fallback policy
        return e;
    }
    e.enforced = true;
    return e;
}

// Prints a table whose first row is its header, or `none` when there is no
// other row. Without the legend, neither: a script gets the rows only.
void print_listing(const std::vector<std::vector<std::string>>& rows, const ListOptions& o, const char* none)
{
    if (rows.size() <= 1) {
        if (o.legend)
            std::cout << none << "\n";
        return;
    }
    print_table(table_rows(rows, o.legend));
}

// Null for an empty string: a value the record does not have.
nlohmann::json nullable(const std::string& s)
{
    return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s);
}

nlohmann::json record_json(const SessionRecord& r)
{
    return {{"id", r.id},
            {"user", r.user},
            {"uid", r.uid},
            {"kind", kind_name(r.kind)},
            {"rhost", r.rhost ? nlohmann::json(*r.rhost) : nlohmann::json(nullptr)},
            {"service", r.service},
            {"auth_correlation", nullable(r.auth_correlation)},
            {"auth_claims", nullable(r.auth_claims)},
            {"policy", r.policy},
            {"opened_ns", r.opened_ns},
            {"opened_at", rfc3339_utc(r.opened_ns)},
            {"cgroup", r.cgroup},
            {"enforced", nullptr},
            {"not_enforced_reason", "reading the kernel's state needs root"}};
}

std::vector<std::string> record_row(const SessionRecord& r, bool wide)
{
    std::string rhost = r.rhost.value_or("-");
    if (!wide)
        return {std::to_string(r.id), r.user, kind_name(r.kind), rhost, r.policy, age_text(r.opened_ns)};
    return {std::to_string(r.id),
            r.user,
            std::to_string(r.uid),
            kind_name(r.kind),
            rhost,
            r.service.empty() ? "-" : r.service,
            r.policy,
            utc_seconds_text(r.opened_ns),
            age_text(r.opened_ns),
            r.cgroup.empty() ? "-" : r.cgroup};
}

// Without root the pins cannot be read; the session records can (0644):
// show those, and say what needs root.
int cmd_sessions_unprivileged(const Context& ctx, const ListOptions& o)
{
    auto records = list_records(ctx.config.run_dir);
    if (!records)
        return fail(records.error());
    std::erase_if(*records, [&](const SessionRecord& r) { return !o.selects(r.uid, r.policy); });
    std::sort(records->begin(), records->end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    if (o.json()) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& r : *records)
            out.push_back(record_json(r));
        std::cout << nlohmann::json{{"version", 1}, {"sessions", out}}.dump(2) << "\n";
        return 0;
    }
    std::cerr << "authctl: not root: showing session records only; traffic, denials and enforcement need root\n";
    std::vector<std::vector<std::string>> rows;
    if (o.wide())
        rows.push_back({"ID", "USER", "UID", "KIND", "RHOST", "SERVICE", "POLICY", "OPENED", "AGE", "CGROUP"});
    else
        rows.push_back({"ID", "USER", "KIND", "RHOST", "POLICY", "AGE"});
    for (const auto& r : *records)
        rows.push_back(record_row(r, o.wide()));
    print_listing(rows, o, o.uid || o.policy ? "no matching sessions" : "no sessions");
    return 0;
}

// The user layer's rows: one word per column, so that a script can split
// them (the revocation has its own column, the age is "5m" as in sessions).
std::vector<std::string> user_row(uint32_t uid, const UserEntry& u, const std::string& policy, bool wide)
{
    std::string revoked = (u.flags & AW_USER_REVOKED) ? "yes" : "no";
    if (!wide)
        return {std::to_string(uid), user_name(uid), policy, revoked, age_text(u.armed_ns), std::to_string(u.denied)};
    return {std::to_string(uid),
            user_name(uid),
            policy,
            std::to_string(u.policy_id),
            revoked,
            utc_seconds_text(u.armed_ns),
            age_text(u.armed_ns),
            std::to_string(u.denied)};
}

nlohmann::json user_json(uint32_t uid, const UserEntry& u, const std::string& policy)
{
    return {{"uid", uid},
            {"user", user_name(uid)},
            {"policy", policy},
            {"policy_id", u.policy_id},
            {"revoked", (u.flags & AW_USER_REVOKED) != 0},
            {"armed_ns", u.armed_ns},
            {"armed_at", rfc3339_utc(u.armed_ns)},
            {"denied", u.denied}};
}

// The user layer: every confined user, the policy their processes are
// held to wherever they run, and the refusals it made.
int cmd_users(const Context& ctx, const ListOptions& o)
{
    auto maps = PinnedMaps::open(ctx.config.pin_dir);
    if (!maps)
        return fail(maps.error());
    auto users = maps->list_users();
    if (!users)
        return fail(users.error());
    std::map<uint32_t, std::string> names;
    if (auto ids = maps->policy_ids())
        for (const auto& [n, i] : *ids)
            names[i] = n;
    auto policy_of = [&](const UserEntry& u) {
        if (u.policy_id == AW_POLICY_FALLBACK)
            return std::string("(unmatched)");
        auto it = names.find(u.policy_id);
        return it == names.end() ? "#" + std::to_string(u.policy_id) : it->second;
    };
    std::sort(users->begin(), users->end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    if (o.json()) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& [uid, u] : *users)
            out.push_back(user_json(uid, u, policy_of(u)));
        std::cout << nlohmann::json{{"version", 1}, {"users", out}}.dump(2) << "\n";
        return 0;
    }
    std::vector<std::vector<std::string>> rows;
    if (o.wide())
        rows.push_back({"UID", "USER", "POLICY", "POLICY_ID", "REVOKED", "ARMED_AT", "ARMED", "DENIED"});
    else
        rows.push_back({"UID", "USER", "POLICY", "REVOKED", "ARMED", "DENIED"});
    for (const auto& [uid, u] : *users)
        rows.push_back(user_row(uid, u, policy_of(u), o.wide()));
    print_listing(rows, o, "no confined users");
    return 0;
}

// What the sessions are listed against: the policies' names and which of
// them are in force, the cgroups programs are attached at, the cgroup2 mount.
struct SessionLookup {
    std::map<uint32_t, std::string> names;
    std::set<uint32_t> active_ids;
    std::set<uint64_t> root_ids;
    CgroupMount mount;
};

Result<SessionLookup> session_lookup(const Context& ctx, const PinnedMaps& maps)
{
    SessionLookup out;
    auto ids = maps.policy_ids();
    auto active = maps.active_policy_ids();
    if (ids)
        for (const auto& [n, i] : *ids)
            out.names[i] = n;
    if (active)
        for (const auto& [n, i] : *active)
            out.active_ids.insert(i);
    if (auto links = list_links(ctx.config.pin_dir))
        for (const auto& link : *links)
            out.root_ids.insert(link.cgroup_id);
    auto mount = find_cgroup2_mount();
    if (!mount)
        return mount.error();
    out.mount = std::move(mount).value();
    return out;
}

// The name a session's policy is listed (and filtered) by.
std::string policy_name(const SessionLookup& lookup, uint32_t policy_id)
{
    if (policy_id == AW_POLICY_FALLBACK)
        return "(unmatched)";
    auto name = lookup.names.find(policy_id);
    return name != lookup.names.end() ? name->second : fmt::format("#{}", policy_id);
}

// One session with what authctl sessions tells of it.
struct ListedSession {
    uint64_t id;
    SessionEntry entry;
    SessionStats stats;
    std::string policy;
    bool policy_active;
    Enforcement enf;
    std::string kind;
    std::optional<std::string> service{};          // from its record, when read and present
    std::string auth_correlation{}, auth_claims{}; // from its record, when read ("": none)
};

// `run_dir`: where to read the session's record (service, correlation, claims), or
// null when the listing does not show it.
ListedSession list_session(const PinnedMaps& maps, const SessionLookup& lookup, uint64_t id, const SessionEntry& s,
                           const fs::path* run_dir)
{
    auto stats = maps.session_stats(id);
    bool policy_active = s.policy_id == AW_POLICY_FALLBACK || lookup.active_ids.count(s.policy_id) > 0;
    Enforcement enf = check_enforcement(lookup.mount, id, lookup.root_ids, policy_active);
    std::string kind = (s.flags & AW_SESSION_CONTAINER) ? "container" : "login";
    ListedSession l{id,
                    s,
                    stats ? *stats : SessionStats{},
                    policy_name(lookup, s.policy_id),
                    policy_active,
                    std::move(enf),
                    std::move(kind)};
    if (run_dir)
        if (auto record = read_record(*run_dir, id)) {
            l.service = record->service;
            l.auth_correlation = record->auth_correlation;
            l.auth_claims = record->auth_claims;
        }
    return l;
}

nlohmann::json listed_json(const ListedSession& l)
{
    const SessionEntry& s = l.entry;
    return {
        {"id", l.id},
        {"user", user_name(s.uid)},
        {"uid", s.uid},
        {"kind", l.kind},
        {"rhost", s.rhost ? nlohmann::json(s.rhost->str()) : nlohmann::json(nullptr)},
        {"service", l.service ? nlohmann::json(*l.service) : nlohmann::json(nullptr)},
        {"auth_correlation", nullable(l.auth_correlation)},
        {"auth_claims", nullable(l.auth_claims)},
        {"policy", l.policy},
        {"policy_in_force", l.policy_active},
        {"opened_ns", s.opened_ns},
        {"opened_at", rfc3339_utc(s.opened_ns)},
        {"cgroup", l.enf.cgroup_path},
        {"revoked", (s.flags & AW_SESSION_REVOKED) != 0},
        {"bytes_in", l.stats.bytes_in},
        {"bytes_out", l.stats.bytes_out},
        {"packets_in", l.stats.packets_in},
        {"packets_out", l.stats.packets_out},
        {"denied", l.stats.denied_total()},
        {"enforced", l.enf.enforced},
        {"not_enforced_reason", l.enf.enforced ? nlohmann::json(nullptr) : nlohmann::json(l.enf.why)},
    };
}

std::vector<std::string> listed_header(bool wide)
{
    if (wide)
        return {"ID",     "USER", "UID", "KIND", "RHOST",  "SERVICE", "POLICY",
                "OPENED", "AGE",  "IN",  "OUT",  "DENIED", "CGROUP",  "ENFORCED"};
    return {"ID", "USER", "KIND", "RHOST", "POLICY", "AGE", "IN", "OUT", "DENIED", "ENFORCED"};
}

// The enforcement is the last column: the only one that may hold spaces
// ("NO: cgroup gone"), so that the others split on whitespace.
std::vector<std::string> listed_row(const ListedSession& l, bool wide)
{
    const SessionEntry& s = l.entry;
    bool revoked = s.flags & AW_SESSION_REVOKED;
    std::string enforced = l.enf.enforced ? (revoked ? "revoked" : "yes") : "NO: " + l.enf.why;
    if (l.enf.enforced && !l.policy_active)
        enforced = "yes (fallback)";
    std::string rhost = s.rhost ? s.rhost->str() : "-";
    std::string in = bytes_text(l.stats.bytes_in), out = bytes_text(l.stats.bytes_out);
    std::string denied = std::to_string(l.stats.denied_total());
    if (!wide)
        return {std::to_string(l.id),
                user_name(s.uid),
                l.kind,
                rhost,
                l.policy,
                age_text(s.opened_ns),
                in,
                out,
                denied,
                enforced};
    return {std::to_string(l.id),
            user_name(s.uid),
            std::to_string(s.uid),
            l.kind,
            rhost,
            l.service && !l.service->empty() ? *l.service : "-",
            l.policy,
            utc_seconds_text(s.opened_ns),
            age_text(s.opened_ns),
            in,
            out,
            denied,
            l.enf.cgroup_path.empty() ? "-" : l.enf.cgroup_path,
            enforced};
}

int cmd_sessions(const Context& ctx, const ListOptions& o)
{
    auto maps = PinnedMaps::open(ctx.config.pin_dir);
    if (!maps && (maps.error().err == EACCES || maps.error().err == EPERM))
        return cmd_sessions_unprivileged(ctx, o);
    if (!maps)
        return fail(maps.error());
    auto sessions = maps->list_sessions();
    if (!sessions)
        return fail(sessions.error());
    auto lookup = session_lookup(ctx, *maps);
    if (!lookup)
        return fail(lookup.error());
    // By id, the order they were made in (cgroup ids only grow), not the hash map's.
    std::sort(sessions->begin(), sessions->end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    // The short table has no column from the records: they are not read.
    const fs::path* run_dir = o.format == OutputFormat::Short ? nullptr : &ctx.config.run_dir;
    nlohmann::json out = nlohmann::json::array();
    std::vector<std::vector<std::string>> rows{listed_header(o.wide())};
    for (const auto& [id, s] : *sessions) {
        if (!o.selects(s.uid, policy_name(*lookup, s.policy_id)))
            continue;
        ListedSession l = list_session(*maps, *lookup, id, s, run_dir);
        if (o.json())
            out.push_back(listed_json(l));
        else
            rows.push_back(listed_row(l, o.wide()));
    }
    if (o.json())
        std::cout << nlohmann::json{{"version", 1}, {"sessions", out}}.dump(2) << "\n";
    else
        print_listing(rows, o, o.uid || o.policy ? "no matching sessions" : "no sessions");
    return 0;
}

int cmd_enroll(const Context& ctx, const fs::path& cgroup, const std::string& policy, uint32_t uid,
               const std::string& rhost, bool login)
{
    auto access = SessionAccess::open(ctx);
    if (!access)
        return fail(access.error());
    auto& sessions = **access;
    auto mount = find_cgroup2_mount();
    if (!mount)
        return fail(mount.error());
    if (!is_cgroup2_dir(cgroup))
        return fail(Error::msg("enroll", cgroup.string(), "is not a cgroup2 directory"));
    auto ids = sessions.maps().active_policy_ids();
    if (!ids)
        return fail(ids.error());
    auto it = ids->find(policy);
    if (it == ids->end())
        return fail(
            Error::msg("enroll", cgroup.string(), "policy '" + policy + "' is not in force (authctl policy show)"));
    fs::path path = fs::absolute(cgroup).lexically_normal();
    auto id = cgroup_id(path);
    if (!id)
        return fail(id.error());
    auto level = cgroup_level(*mount, path);
    if (!level)
        return fail(level.error());
    OpenSpec spec;
    if (!rhost.empty()) {
        spec.rhost = IpAddress::parse(rhost);
        if (!spec.rhost)
            return fail(Error::msg("enroll", cgroup.string(), "'" + rhost + "' is not an IP address"));
        spec.record.rhost = spec.rhost->str();
    }
    spec.record.id = *id;
    spec.record.kind = login ? SessionKind::Login : SessionKind::Container;
    spec.record.uid = uid;
    spec.record.user = user_name(uid);
    spec.record.service = "authctl";
    spec.record.policy = policy;
    spec.record.policy_id = it->second;
    spec.record.cgroup = path.string();
    spec.level = *level;
    spec.mirror_required = false; // cgroupd repairs the mirror
    spec.detail = "enrolled by authctl";
    auto rec = sessions.service().open(std::move(spec), &sessions.warnings);
    if (!rec)
        return fail(rec.error());
    sessions.print_warnings();
    std::cout << "enrolled " << cgroup.string() << " (id " << *id << ") with policy " << policy << "\n";
    return 0;
}

// Ends the session of `cgroup` and leaves the cgroup and its processes be:
// revoked first, then its entry and record go, with a close event.
int cmd_unenroll(const Context& ctx, const fs::path& cgroup)
{
    auto access = SessionAccess::open(ctx);
    if (!access)
        return fail(access.error());
    auto& sessions = **access;
    auto id = cgroup_id(cgroup);
    if (!id)
        return fail(id.error());
    auto entry = sessions.maps().lookup_session(*id);
    if (!entry)
        return fail(entry.error());
    auto record = read_record(ctx.config.run_dir, *id);
    if (!entry->has_value() && !record)
        return fail(Error::msg("unenroll", cgroup.string(), "is no session (authctl sessions lists them)"));
    SessionRecord rec = record ? *record : SessionRecord{};
    rec.id = *id;
    auto ended = sessions.service().end(rec, {"close", "unenrolled by authctl", {}});
    if (!ended)
        return fail(ended.error());
    sessions.warnings = std::move(ended->warnings);
    sessions.print_warnings();
    std::cout << "unenrolled " << cgroup.string() << " (id " << *id << ")\n";
    return 0;
}

// Validates without loading: parse, ownership, compile. Exit 0 or 1.
int cmd_policy_check(const Context& ctx, const std::string& path_arg, bool json)
{
    std::vector<PolicyDiagnostic> errors;
    fs::path path = path_arg.empty() ? ctx.config.policy_dir : fs::path(path_arg);
    PolicyLoad load;
    std::error_code ec;
    PolicyLoadLimits limits;
    limits.max_entries = ctx.config.policy_entries;
    if (fs::is_directory(path, ec))
        load = load_policy_dir(path, 0, limits);
    else
        load = load_policy_file(path, 0, limits);
    errors.insert(errors.end(), load.errors.begin(), load.errors.end());
    size_t entries = 0;
    if (errors.empty()) {
        auto compiled =
            compile_policies(load.policies, ctx.config.unmatched, {}, CompileLimits{ctx.config.policy_entries});
        if (compiled)
            entries = compiled->entries.size();
        else
            errors.push_back({path.string(), 0, 0, compiled.error().message()});
    }
    if (json) {
        nlohmann::json j{{"path", path.string()},
                         {"ok", errors.empty()},
                         {"policies", load.policies.size()},
                         {"entries", entries},
                         {"errors", nlohmann::json::array()}};
        for (const auto& e : errors)
            j["errors"].push_back({{"file", e.file}, {"line", e.line}, {"column", e.column}, {"message", e.message}});
        std::cout << j.dump(2) << "\n";
        return errors.empty() ? 0 : 1;
    }
    for (const auto& e : errors)
        std::cerr << e.str() << "\n";
    if (!errors.empty()) {
        std::cerr << "authctl: " << errors.size() << " error(s) in " << path.string() << "\n";
        return 1;
    }
    std::cout << path.string() << ": ok, " << load.policies.size() << " polic"
              << (load.policies.size() == 1 ? "y" : "ies") << ", " << entries << " trie entries\n";
    return 0;
}

nlohmann::json policy_json(const PolicyView& p)
{
    auto direction = [](const DirectionView& d) {
        nlohmann::json rules = nlohmann::json::array();
        for (const auto& r : d.rules) {
            nlohmann::json j{{"verdict", verdict_name(r.verdict)}, {"rule", r.rule.str()}, {"id", r.rule.id}};
            if (!r.source.empty())
                j["source"] = r.source;
            if (r.rule.log)
                j["log"] = true;
            rules.push_back(std::move(j));
        }
        return nlohmann::json{{"default", verdict_name(d.default_verdict)}, {"rules", rules}};
    };
    nlohmann::json families = denied_family_names(p.denied_families, p.deny_raw);
    nlohmann::json ingress = direction(p.ingress);
    ingress["from_rhost_only"] = p.ingress_from_rhost_only;
    nlohmann::json out{{"id", p.id},
                       {"name", p.name},
                       {"mode", p.audit ? "audit" : "enforce"},
                       {"entries", p.entries},
                       {"egress", direction(p.egress)},
                       {"ingress", ingress},
                       {"bind", direction(p.bind)},
                       {"deny_families", families}};
    if (p.match) {
        nlohmann::json rhosts = nlohmann::json::array();
        for (const auto& r : p.match->rhosts)
            rhosts.push_back(r.str());
        out["match"] = {{"users", p.match->users},
                        {"groups", p.match->groups},
                        {"services", p.match->services},
                        {"rhosts", rhosts},
                        {"cgroups", p.match->cgroups}};
        out["priority"] = p.priority;
        out["max_duration_s"] = p.max_duration_s;
    }
    return out;
}

// What the loader published beside the generation: who each policy is for
// (the policy index) and where each rule was written (the rule catalog).
// Either may be missing (an older loader, another run dir): the kernel's
// view is shown without it.
void add_published_facts(const Context& ctx, std::vector<PolicyView>& views)
{
    auto index = read_policy_index(ctx.config.run_dir);
    auto catalog = read_rule_catalog(ctx.config.run_dir);
    for (auto& v : views) {
        if (index)
            for (const auto& ip : index->policies)
                if (ip.id == v.id) {
                    v.match = ip.match;
                    v.priority = ip.priority;
                    v.max_duration_s = ip.max_duration_s;
                }
        if (!catalog)
            continue;
        for (auto* d : {&v.egress, &v.ingress, &v.bind})
            for (auto& r : d->rules)
                if (const RuleSource* src = catalog->find(v.id, r.rule.id))
                    r.source = src->where();
    }
}

// The policies as the kernel holds them (read back from the active trie).
int cmd_policy_show(const Context& ctx, const std::string& name, bool json)
{
    auto maps = PinnedMaps::open(ctx.config.pin_dir);
    if (!maps)
        return fail(maps.error());
    auto entries = maps->read_active_policies();
    if (!entries)
        return fail(entries.error());
    auto ids = maps->active_policy_ids();
    if (!ids)
        return fail(ids.error());
    std::map<uint32_t, std::string> names;
    for (const auto& [n, i] : *ids)
        names[i] = n;
    auto views = describe_generation(*entries, names);
    add_published_facts(ctx, views);
    if (!name.empty()) {
        std::erase_if(views, [&](const PolicyView& v) { return v.name != name; });
        if (views.empty())
            return fail(Error::msg("show policy", name, "not in force (authctl policy show lists them)"));
    }
    if (json) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& v : views)
            out.push_back(policy_json(v));
        std::cout << nlohmann::json{{"version", 1}, {"policies", out}}.dump(2) << "\n";
        return 0;
    }
    if (views.empty()) {
        std::cout << "no policy generation is in force (is authwall-loader installed?)\n";
        return 0;
    }
    for (const auto& v : views)
        std::cout << format_policy(v);
    return 0;
}

// What the flags and arguments of the command line set.
struct Options {
    std::string config_path, pin_dir, run_dir;
    bool json = false, kill = false, undo = false, from_start = false, login = false;
    uint64_t session_id = 0;
    std::string revoke_user;
    long count = 0;
    std::string pam_service, pam_dir = "/etc/pam.d";
    std::string cgroup, policy, rhost;
    uint32_t uid = 0;
    std::string check_path, show_name;
    bool resolved = false;
    PolicyTestArgs test;
    WatchFilter watch;
    std::string output, filter_user, filter_policy; // sessions and users: -o, --user, --policy
    bool no_legend = false;
    std::string metrics_format = "openmetrics";
};

// The subcommands, to tell which one was given.
struct Commands {
    CLI::App *show = nullptr, *revoke = nullptr, *watch = nullptr, *doctor = nullptr, *status = nullptr;
    CLI::App *sessions = nullptr, *users = nullptr, *enroll = nullptr, *unenroll = nullptr;
    CLI::App *policy_check = nullptr, *policy_show = nullptr, *policy_test = nullptr, *nft_verify = nullptr;
    CLI::App* metrics = nullptr;
    CLI::Option* revoke_id = nullptr;
    CLI::Option *filter_user = nullptr, *filter_policy = nullptr;
};

// show, revoke and watch.
void add_session_commands(CLI::App& app, Options& o, Commands& c)
{
    c.show = app.add_subcommand("show", "one session in full: counters per hook, record, last denials");
    c.show->add_option("ID", o.session_id, "session id (authctl sessions)")->required();
    c.show->add_flag("--json", o.json, "machine-readable output");
    c.revoke = app.add_subcommand("revoke", "deny a session's traffic at once (established flows included), "
                                            "or a user's everywhere");
    c.revoke_id = c.revoke->add_option("ID", o.session_id, "session id (authctl sessions)");
    auto* revoke_user_opt =
        c.revoke->add_option("--user", o.revoke_user,
                             "revoke the user (NAME or UID): all their processes wherever they run, every one of "
                             "their sessions (each login, each cgroup enrolled with their uid), and their logins "
                             "until --undo");
    c.revoke_id->excludes(revoke_user_opt);
    c.revoke->add_flag("--kill", o.kill, "also kill the processes of the session(s)");
    c.revoke->add_flag("--undo", o.undo, "with --user: lift the user's revocation")->needs(revoke_user_opt);
    c.watch = app.add_subcommand("watch", "live events: open, close, revoke, reaped, expired, deny, audit, log "
                                          "(from event_log, or the journal without one)");
    c.watch->add_flag("--json", o.json, "one JSON object per line");
    c.watch->add_flag("--from-start", o.from_start, "print the events already logged first");
    c.watch->add_option("--count", o.count, "exit after N events");
    c.watch->add_option("--user", o.watch.user, "only the events of this user (NAME or UID)")->type_name("NAME|UID");
    c.watch->add_option("--policy", o.watch.policy, "only the events of this policy")->type_name("NAME");
    c.watch->add_option("--event", o.watch.events, "only these events (repeatable, or comma-separated)")
        ->delimiter(',')
        ->check(CLI::IsMember(journal_event_names()));
}

// --json, -o and --no-legend of sessions and users.
void add_listing_options(CLI::App& cmd, Options& o)
{
    auto* json = cmd.add_flag("--json", o.json, "machine-readable output (schema: docs/INTEGRATIONS.md); = -o json");
    cmd.add_option("-o,--output", o.output, "short (the table, default), wide (more columns) or json")
        ->check(CLI::IsMember({"short", "wide", "json"}))
        ->excludes(json);
    cmd.add_flag("--no-legend", o.no_legend, "no header line, and nothing at all when the list is empty (for scripts)");
}

// doctor, status, sessions and users.
void add_report_commands(CLI::App& app, Options& o, Commands& c)
{
    c.doctor = app.add_subcommand("doctor", "check the kernel, the pins and, with --pam, a service's PAM stack");
    c.doctor->add_option("--pam", o.pam_service, "PAM service to check (e.g. sshd)");
    c.doctor->add_option("--pam-dir", o.pam_dir, "PAM configuration directory")->capture_default_str();
    c.doctor->add_flag("--json", o.json, "machine-readable output");
    c.status = app.add_subcommand("status", "programs and where they are attached, maps, daemons, kernel");
    c.status->add_flag("--json", o.json, "machine-readable output");
    c.sessions = app.add_subcommand("sessions", "list sessions: user, policy, traffic, denials, enforcement");
    add_listing_options(*c.sessions, o);
    c.filter_user = c.sessions->add_option("--user", o.filter_user, "only the sessions of this user (NAME or UID)")
                        ->type_name("NAME|UID");
    c.filter_policy =
        c.sessions->add_option("--policy", o.filter_policy, "only the sessions under this policy (its name as listed)")
            ->type_name("NAME");
    c.users = app.add_subcommand("users", "list confined users: the policy each is held to wherever their "
                                          "processes run (the user layer), and its refusals");
    add_listing_options(*c.users, o);
    c.metrics = app.add_subcommand("metrics", "counters and gauges in the OpenMetrics text format (Prometheus)");
    c.metrics
        ->add_option("--format", o.metrics_format, "openmetrics, or prometheus (node_exporter's textfile collector)")
        ->check(CLI::IsMember({"openmetrics", "prometheus"}))
        ->capture_default_str();
}

void add_enroll_commands(CLI::App& app, Options& o, Commands& c)
{
    c.enroll = app.add_subcommand("enroll", "enforce a policy on a cgroup and everything below it");
    c.enroll->add_option("--cgroup", o.cgroup, "cgroup2 directory")->required();
    c.enroll->add_option("--policy", o.policy, "policy name (as in force)")->required();
    c.enroll->add_option("--uid", o.uid, "owner uid to record");
    c.enroll->add_option("--rhost", o.rhost, "remote address to record (ingress.from_rhost_only)");
    c.enroll->add_flag("--login", o.login, "record as a login session rather than a container");

    c.unenroll = app.add_subcommand("unenroll", "stop enforcing on a cgroup (removes its entry)");
    c.unenroll->add_option("--cgroup", o.cgroup, "cgroup2 directory")->required();
}

void add_policy_test_command(CLI::App& policy_cmd, Options& o, Commands& c)
{
    auto& t = o.test;
    c.policy_test = policy_cmd.add_subcommand(
        "test", "which policy a login would get, and what each layer decides on one flow, with the rule");
    c.policy_test->add_option("--user", t.user, "the user logging in")->required();
    c.policy_test->add_option("--group", t.groups, "a group of the user (repeatable; default: theirs, from NSS)");
    c.policy_test->add_option("--service", t.service, "the PAM service (e.g. sshd)");
    c.policy_test->add_option("--rhost", t.rhost, "the login's remote address");
    c.policy_test->add_option("--to", t.to, "the flow: ADDRESS [PROTOCOL [PORT]]")->required()->expected(1, 3);
    c.policy_test
        ->add_option("--direction", t.direction, "egress (default), ingress (ADDRESS is the peer, PORT local) or bind")
        ->check(CLI::IsMember({"egress", "ingress", "bind"}));
    c.policy_test->add_option("--policies", t.path,
                              "policy file or directory (default: policy_dir of the configuration)");
    c.policy_test->add_flag("--live", t.live, "decide with what the kernel holds and the loader published instead")
        ->excludes(c.policy_test->get_option("--policies"));
    c.policy_test->add_flag("--json", t.json, "machine-readable result");
}

// policy check, policy show, policy test and nft verify.
void add_policy_commands(CLI::App& app, Options& o, Commands& c)
{
    auto* policy_cmd = app.add_subcommand("policy", "check policy files, or show the policies in force");
    policy_cmd->require_subcommand(1);
    c.policy_check = policy_cmd->add_subcommand("check", "validate policy files without loading them (exit 0 or 1)");
    c.policy_check->add_option("PATH", o.check_path,
                               "policy file or directory (default: policy_dir of the configuration)");
    c.policy_check->add_flag("--json", o.json, "machine-readable result");
    c.policy_show = policy_cmd->add_subcommand("show", "the compiled policies as the kernel holds them");
    c.policy_show->add_option("NAME", o.show_name, "only this policy");
    c.policy_show->add_flag("--json", o.json, "machine-readable output");
    c.policy_show->add_flag("--resolved", o.resolved,
                            "from the policy files: bases folded in, sets expanded, abstract policies too");
    add_policy_test_command(*policy_cmd, o, c);

    auto* nft_cmd = app.add_subcommand("nft", "the nftables mirror of the sessions (table inet authwall)");
    nft_cmd->require_subcommand(1);
    c.nft_verify =
        nft_cmd->add_subcommand("verify", "compare the nft sets with the sessions map (exit 0 in sync, 1 drift)");
    c.nft_verify->add_flag("--json", o.json, "machine-readable result");
}

int run_revoke(const Context& ctx, const Options& o, const Commands& c)
{
    if (!o.revoke_user.empty())
        return cmd_revoke_user(ctx, o.revoke_user, o.kill, o.undo);
    if (c.revoke_id->count() == 0) {
        std::cerr << "authctl revoke: a session ID or --user NAME is required\n";
        return 2;
    }
    return cmd_revoke(ctx, o.session_id, o.kill);
}

// sessions or users, with their format, legend and filters.
int run_listing(const Context& ctx, const Options& o, const Commands& c)
{
    ListOptions list;
    list.format = o.json ? OutputFormat::Json : output_format(o.output).value_or(OutputFormat::Short);
    list.legend = !o.no_legend;
    if (c.filter_user->count()) {
        auto uid = resolve_user(o.filter_user);
        if (!uid)
            return fail(uid.error());
        list.uid = *uid;
    }
    if (c.filter_policy->count())
        list.policy = o.filter_policy;
    return *c.sessions ? cmd_sessions(ctx, list) : cmd_users(ctx, list);
}

// Runs the subcommand that was given; 2 when none was.
int run_command(const Context& ctx, const Options& o, const Commands& c)
{
    if (*c.sessions || *c.users)
        return run_listing(ctx, o, c);
    if (*c.show)
        return cmd_show(ctx, o.session_id);
    if (*c.revoke)
        return run_revoke(ctx, o, c);
    if (*c.nft_verify)
        return cmd_nft_verify(ctx);
    if (*c.status)
        return cmd_status(ctx);
    if (*c.metrics)
        return cmd_metrics(ctx, o.metrics_format);
    if (*c.watch)
        return cmd_watch(ctx, o.from_start, o.count, o.watch);
    if (*c.doctor)
        return cmd_doctor(ctx, o.pam_service, o.pam_dir);
    if (*c.enroll)
        return cmd_enroll(ctx, o.cgroup, o.policy, o.uid, o.rhost, o.login);
    if (*c.unenroll)
        return cmd_unenroll(ctx, o.cgroup);
    if (*c.policy_check)
        return cmd_policy_check(ctx, o.check_path, o.json);
    if (*c.policy_show)
        return o.resolved ? cmd_policy_show_resolved(ctx, o.show_name, o.json)
                          : cmd_policy_show(ctx, o.show_name, o.json);
    if (*c.policy_test)
        return cmd_policy_test(ctx, o.test);
    return 2;
}

} // namespace

namespace {

size_t edit_distance(const std::string& a, const std::string& b)
{
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j)
        row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diagonal = above;
        }
    }
    return row[b.size()];
}

// The command word of the command line: the first argument that is neither
// an option nor the value of one of authctl's own options.
std::optional<std::string> command_word(int argc, char** argv)
{
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--config" || arg == "--pin-dir" || arg == "--run-dir") {
            ++i;
            continue;
        }
        if (!arg.starts_with("-"))
            return arg;
    }
    return std::nullopt;
}

// "unknown command 'sesions' (did you mean 'sessions'?)" when the command
// word is no command; nullopt otherwise (CLI11's message says it best).
std::optional<std::string> unknown_command(const CLI::App& app, int argc, char** argv)
{
    auto word = command_word(argc, argv);
    if (!word)
        return std::nullopt;
    std::string closest;
    size_t best = 3; // farther than two edits is no suggestion
    for (const auto* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
        if (sub->get_name() == *word)
            return std::nullopt;
        if (size_t d = edit_distance(*word, sub->get_name()); d < best) {
            best = d;
            closest = sub->get_name();
        }
    }
    return "unknown command '" + authwall::printable(*word) + "'" +
           (closest.empty() ? " (authctl --help lists them)" : " (did you mean '" + closest + "'?)");
}

} // namespace

int main(int argc, char** argv)
{
    CLI::App app{"authctl: inspect and control authwall sessions and policies.\n"
                 "Reads the pinned BPF maps directly; works while the daemons are down."};
    app.require_subcommand(1);
    Options o;
    Commands c;
    app.add_option("--config", o.config_path,
                   std::string("configuration file (env AUTHWALL_CONFIG; default ") + kDefaultConfigPath + ")");
    app.add_option("--pin-dir", o.pin_dir, "bpffs directory of the pins (env AUTHWALL_PIN_DIR)");
    app.add_option("--run-dir", o.run_dir, "session records (env AUTHWALL_RUN_DIR)");
    add_session_commands(app, o, c);
    add_report_commands(app, o, c);
    add_enroll_commands(app, o, c);
    add_policy_commands(app, o, c);
    app.set_version_flag("--version", std::string("authctl ") + AUTHWALL_VERSION);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() != 0)
            if (auto why = unknown_command(app, argc, argv)) {
                std::cerr << "authctl: " << *why << "\n";
                return 2;
            }
        int rc = app.exit(e);
        return rc == 0 ? 0 : 2;
    }
    ResolvedConfig resolved = resolve_config({o.config_path, o.pin_dir, o.run_dir, {}});
    if (!resolved.load.ok()) {
        for (const auto& e : resolved.load.errors)
            std::cerr << e.str() << "\n";
        return 1;
    }
    Context ctx{resolved.load.config, o.json};
    try {
        return run_command(ctx, o, c);
    } catch (const std::exception& e) {
        std::cerr << "authctl: " << e.what() << "\n";
        return 1;
    }
}
