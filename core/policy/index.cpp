// SPDX-License-Identifier: Apache-2.0
#include "core/policy/index.h"

#include "core/base/json_fields.h"
#include "core/policy/policy_file.h"
#include "core/base/files.h"

#include <grp.h>

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>

namespace authwall {

namespace fs = std::filesystem;

PolicyIndex build_policy_index(const std::vector<Policy>& policies, const std::map<std::string, uint32_t>& ids,
                               const Config& config)
{
    PolicyIndex index;
    for (const auto& p : policies) {
        IndexedPolicy ip;
        ip.name = p.name;
        ip.id = ids.at(p.name);
        ip.priority = p.priority;
        ip.match = p.match;
        ip.max_duration_s = p.max_duration ? static_cast<uint64_t>(p.max_duration->count()) : 0;
        index.policies.push_back(std::move(ip));
    }
    std::sort(index.policies.begin(), index.policies.end(), [](const auto& a, const auto& b) {
        return a.priority != b.priority ? a.priority > b.priority : a.name < b.name;
    });
    index.unmatched = config.unmatched;
    index.exempt_users = config.exempt_users;
    index.exempt_groups = config.exempt_groups;
    return index;
}

std::string to_json(const PolicyIndex& index)
{
    nlohmann::json policies = nlohmann::json::array();
    for (const auto& p : index.policies) {
        nlohmann::json rhosts = nlohmann::json::array();
        for (const auto& r : p.match.rhosts)
            rhosts.push_back(r.str());
        policies.push_back({{"name", p.name},
                            {"id", p.id},
                            {"priority", p.priority},
                            {"max_duration_s", p.max_duration_s},
                            {"match",
                             {{"users", p.match.users},
                              {"groups", p.match.groups},
                              {"services", p.match.services},
                              {"rhosts", rhosts},
                              {"cgroups", p.match.cgroups}}}});
    }
    std::string unmatched = index.unmatched.kind == Fallback::Kind::Pass   ? "pass"
                            : index.unmatched.kind == Fallback::Kind::Deny ? "deny"
                                                                           : index.unmatched.policy;
    nlohmann::json j{{"version", index.version},
                     {"unmatched", unmatched},
                     {"exempt_users", index.exempt_users},
                     {"exempt_groups", index.exempt_groups},
                     {"policies", policies}};
    return j.dump(2) + "\n";
}

Result<PolicyIndex> policy_index_from_json(const std::string& text, const std::string& source)
{
    using json_fields::int_field;
    using json_fields::unsigned_field;
    constexpr uint64_t u32 = std::numeric_limits<uint32_t>::max();
    try {
        auto j = nlohmann::json::parse(text);
        if (!j.is_object())
            return Error::msg("read policy index", source, "not a JSON object");
        PolicyIndex index;
        auto version = unsigned_field(j, "version", u32);
        if (version != 1)
            return Error::msg("read policy index", source, "unknown version " + std::to_string(version));
        index.version = 1;
        std::string unmatched = j.at("unmatched").get<std::string>();
        if (unmatched == "pass")
            index.unmatched = {Fallback::Kind::Pass, {}};
        else if (unmatched == "deny")
            index.unmatched = {Fallback::Kind::Deny, {}};
        else
            index.unmatched = {Fallback::Kind::Policy, unmatched};
        index.exempt_users = j.at("exempt_users").get<std::vector<std::string>>();
        index.exempt_groups = j.at("exempt_groups").get<std::vector<std::string>>();
        for (const auto& p : j.at("policies")) {
            if (!p.is_object())
                return Error::msg("read policy index", source, "a policy is not a JSON object");
            IndexedPolicy ip;
            ip.name = p.at("name").get<std::string>();
            ip.id = static_cast<uint32_t>(unsigned_field(p, "id", u32));
            ip.priority = int_field(p, "priority");
            ip.max_duration_s = unsigned_field(p, "max_duration_s", std::numeric_limits<uint64_t>::max(), 0);
            const auto& m = p.at("match");
            ip.match.users = m.at("users").get<std::vector<std::string>>();
            ip.match.groups = m.at("groups").get<std::vector<std::string>>();
            ip.match.services = m.at("services").get<std::vector<std::string>>();
            ip.match.cgroups = m.at("cgroups").get<std::vector<std::string>>();
            for (const auto& r : m.at("rhosts")) {
                auto prefix = Prefix::parse(r.get<std::string>());
                if (!prefix)
                    return Error::msg("read policy index", source, "bad rhost prefix " + r.get<std::string>());
                ip.match.rhosts.push_back(*prefix);
            }
            index.policies.push_back(std::move(ip));
        }
        return index;
    } catch (const nlohmann::json::exception& e) {
        return Error::msg("read policy index", source, e.what());
    } catch (const json_fields::BadField& e) {
        return Error::msg("read policy index", source, e.what());
    }
}

fs::path policy_index_path(const fs::path& run_dir)
{
    return run_dir / "policies.json";
}

Status write_policy_index(const fs::path& run_dir, const PolicyIndex& index)
{
    return write_file_atomic(policy_index_path(run_dir), to_json(index), 0644);
}

Result<PolicyIndex> read_policy_index(const fs::path& run_dir, uid_t owner)
{
    auto path = policy_index_path(run_dir);
    if (auto st = check_trusted_path(path, owner); !st) {
        if (st.error().err == ENOENT)
            return Error::sys("read policy index", path.string(), ENOENT,
                              "authwall-loader has not published the policies in force (is it running?)");
        return st.error();
    }
    auto text = read_text_file(path);
    if (!text)
        return Error::sys("read policy index", path.string(), text.error().err);
    return policy_index_from_json(*text, path.string());
}

namespace {
bool listed(const std::vector<std::string>& list, const std::string& value)
{
    return std::find(list.begin(), list.end(), value) != list.end();
}
bool any_listed(const std::vector<std::string>& list, const std::vector<std::string>& values)
{
    for (const auto& v : values)
        if (listed(list, v))
            return true;
    return false;
}
} // namespace

const IndexedPolicy* resolve_policy(const PolicyIndex& index, const LoginFacts& login)
{
    for (const auto& p : index.policies) { // already in priority order
        bool rhost = false;
        if (login.rhost)
            for (const auto& prefix : p.match.rhosts)
                rhost |= prefix.contains(*login.rhost);
        // Criteria combine as "any of": the design's match lists are
        // alternatives; a policy restricted to a service uses only services.
        bool who = listed(p.match.users, login.user) || any_listed(p.match.groups, login.groups) || rhost;
        bool has_who = !p.match.users.empty() || !p.match.groups.empty() || !p.match.rhosts.empty();
        bool service_ok = p.match.services.empty() || listed(p.match.services, login.service);
        bool matched = has_who ? (who && service_ok) : (!p.match.services.empty() && service_ok);
        if (matched)
            return &p;
    }
    return nullptr;
}

const IndexedPolicy* resolve_user_policy(const PolicyIndex& index, const LoginFacts& user)
{
    for (const auto& p : index.policies) {
        const PolicyMatch& m = p.match;
        bool matched = false;
        if (!m.users.empty() || !m.groups.empty())
            matched = listed(m.users, user.user) || any_listed(m.groups, user.groups);
        else if (m.rhosts.empty())
            matched = !m.services.empty();
        if (matched)
            return &p;
    }
    return nullptr;
}

bool is_exempt(const PolicyIndex& index, const LoginFacts& login)
{
    return listed(index.exempt_users, login.user) || any_listed(index.exempt_groups, login.groups);
}

bool names_groups(const PolicyIndex& index)
{
    if (!index.exempt_groups.empty())
        return true;
    return std::any_of(index.policies.begin(), index.policies.end(),
                       [](const IndexedPolicy& p) { return !p.match.groups.empty(); });
}

Result<std::vector<std::string>> user_groups(const std::string& user, gid_t primary)
{
    int count = 64;
    std::vector<gid_t> gids(static_cast<size_t>(count));
    if (getgrouplist(user.c_str(), primary, gids.data(), &count) < 0) {
        gids.resize(static_cast<size_t>(count));
        if (getgrouplist(user.c_str(), primary, gids.data(), &count) < 0)
            return Error::msg("list groups of", user, "getgrouplist failed");
    }
    gids.resize(static_cast<size_t>(count));
    std::vector<std::string> names;
    for (gid_t g : gids) {
        group gr{};
        group* found = nullptr;
        std::vector<char> buf(16384);
        if (getgrgid_r(g, &gr, buf.data(), buf.size(), &found) == 0 && found)
            names.emplace_back(gr.gr_name);
    }
    return names;
}

} // namespace authwall
