// SPDX-License-Identifier: Apache-2.0
// authctl policy show NAME --resolved: a policy as the files make it, its
// bases folded in and its sets expanded, each written rule with its number,
// the place it was written and the entries it stands for.
#include "authctl/context.h"
#include "core/policy/policy_file.h"

#include <iostream>
#include <nlohmann/json.hpp>

using namespace authwall;
namespace fs = std::filesystem;

namespace authctl {

namespace {

// The entries of one written rule: consecutive, with one number.
struct WrittenView {
    const Rule* first = nullptr;
    Verdict verdict = Verdict::Allow;
    std::vector<const Rule*> entries;
};

std::vector<WrittenView> written_rules(const RuleSet& set)
{
    std::vector<WrittenView> out;
    for (const auto* rules : {&set.allow, &set.deny})
        for (const auto& r : *rules) {
            if (out.empty() || out.back().first->id != r.id ||
                out.back().verdict != (rules == &set.deny ? Verdict::Deny : Verdict::Allow))
                out.push_back({&r, rules == &set.deny ? Verdict::Deny : Verdict::Allow, {}});
            out.back().entries.push_back(&r);
        }
    return out;
}

std::string place(const Rule& r)
{
    return r.file + ":" + std::to_string(r.line) + ":" + std::to_string(r.column);
}

nlohmann::json direction_json(const RuleSet& set)
{
    nlohmann::json rules = nlohmann::json::array();
    for (const auto& w : written_rules(set)) {
        nlohmann::json entries = nlohmann::json::array();
        for (const Rule* e : w.entries)
            entries.push_back(e->str());
        rules.push_back({{"id", w.first->id},
                         {"verdict", verdict_name(w.verdict)},
                         {"text", w.first->text},
                         {"source", place(*w.first)},
                         {"log", w.first->log},
                         {"entries", entries}});
    }
    return {{"default", verdict_name(set.default_verdict)}, {"rules", rules}};
}

nlohmann::json resolved_json(const Policy& p)
{
    nlohmann::json families = denied_family_names(p.denied_families, p.deny_raw);
    nlohmann::json rhosts = nlohmann::json::array();
    for (const auto& r : p.match.rhosts)
        rhosts.push_back(r.str());
    nlohmann::json ingress = direction_json(p.ingress);
    ingress["from_rhost_only"] = p.ingress_from_rhost_only;
    return {{"name", p.name},
            {"source", p.source},
            {"abstract", p.abstract},
            {"extends", p.extends},
            {"mode", p.audit ? "audit" : "enforce"},
            {"priority", p.priority},
            {"match",
             {{"users", p.match.users},
              {"groups", p.match.groups},
              {"services", p.match.services},
              {"rhosts", rhosts},
              {"cgroups", p.match.cgroups}}},
            {"egress", direction_json(p.egress)},
            {"ingress", ingress},
            {"bind", direction_json(p.bind)},
            {"deny_families", families},
            {"max_duration_s", p.max_duration ? p.max_duration->count() : 0}};
}

std::string direction_text(const char* name, const RuleSet& set, const std::string& extra)
{
    std::string out = std::string("  ") + name + ": default " + verdict_name(set.default_verdict) + extra + "\n";
    for (const auto& w : written_rules(set)) {
        out += "    #" + std::to_string(w.first->id) + " " + verdict_name(w.verdict) + " \"" + w.first->text + "\" " +
               place(*w.first) + (w.first->log ? " (log)" : "") + "\n";
        if (w.entries.size() == 1 && w.first->str() == w.first->text)
            continue;
        for (const Rule* e : w.entries)
            out += "        " + e->str() + "\n";
    }
    return out;
}

std::string resolved_text(const Policy& p)
{
    std::string out = "policy " + p.name + " (" + p.source + ")";
    for (size_t i = 0; i < p.extends.size(); ++i)
        out += (i ? ", " : ", extends ") + p.extends[i];
    out += p.abstract ? ", abstract\n" : "\n";
    out += "  mode " + std::string(p.audit ? "audit" : "enforce") + ", priority " + std::to_string(p.priority);
    if (p.max_duration)
        out += ", max_duration " + std::to_string(p.max_duration->count()) + "s";
    out += "\n";
    std::string match;
    auto item = [&](const char* what, const std::vector<std::string>& values) {
        for (size_t i = 0; i < values.size(); ++i)
            match += (i ? ", " : std::string(match.empty() ? "" : "; ") + what + " ") + values[i];
    };
    std::vector<std::string> rhosts;
    for (const auto& r : p.match.rhosts)
        rhosts.push_back(r.str());
    item("users", p.match.users);
    item("groups", p.match.groups);
    item("services", p.match.services);
    item("rhosts", rhosts);
    item("cgroups", p.match.cgroups);
    out += "  match: " + (match.empty() ? std::string("nobody") : match) + "\n";
    out += direction_text("egress", p.egress, "");
    out += direction_text("ingress", p.ingress, p.ingress_from_rhost_only ? ", from_rhost_only" : "");
    out += direction_text("bind", p.bind, "");
    std::string families;
    for (const auto& name : denied_family_names(p.denied_families, p.deny_raw))
        families += (families.empty() ? "" : ", ") + name;
    if (!families.empty())
        out += "  sockets: deny " + families + "\n";
    return out;
}

} // namespace

int cmd_policy_show_resolved(const Context& ctx, const std::string& name, bool json)
{
    fs::path path = ctx.config.policy_dir;
    std::error_code ec;
    PolicyLoadLimits limits;
    limits.max_entries = ctx.config.policy_entries;
    PolicyLoad load = fs::is_directory(path, ec) ? load_policy_dir(path, 0, limits) : load_policy_file(path, 0, limits);
    if (!load.ok())
        return fail(
            Error::msg("read policies", path.string(),
                       load.errors[0].str() + (load.errors.size() > 1 ? " (and more: authctl policy check)" : "")));
    std::vector<const Policy*> shown;
    for (const auto* list : {&load.policies, &load.abstract})
        for (const auto& p : *list)
            if (name.empty() || p.name == name)
                shown.push_back(&p);
    if (!name.empty() && shown.empty())
        return fail(Error::msg("show policy", name, "not defined in " + path.string()));
    if (json) {
        nlohmann::json out = nlohmann::json::array();
        for (const Policy* p : shown)
            out.push_back(resolved_json(*p));
        std::cout << nlohmann::json{{"version", 1}, {"source", path.string()}, {"policies", out}}.dump(2) << "\n";
        return 0;
    }
    for (const Policy* p : shown)
        std::cout << resolved_text(*p);
    return 0;
}

} // namespace authctl
