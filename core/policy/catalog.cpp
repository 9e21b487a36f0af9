// SPDX-License-Identifier: Apache-2.0
#include "core/policy/catalog.h"

#include "core/base/files.h"
#include "core/policy/policy_file.h"

#include <nlohmann/json.hpp>

namespace authwall {

namespace fs = std::filesystem;

std::string RuleSource::where() const
{
    return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

namespace {

// Policy::source is "file:line" of the [policy.NAME] table.
std::string file_of(const Policy& p)
{
    auto colon = p.source.rfind(':');
    return colon == std::string::npos ? p.source : p.source.substr(0, colon);
}

void add_policy(std::map<std::pair<uint32_t, uint32_t>, RuleSource>& into, uint32_t id, const Policy& p)
{
    auto add = [&](const char* direction, const RuleSet& set) {
        for (const auto* rules : {&set.allow, &set.deny})
            for (const auto& r : *rules) {
                if (r.id == 0 || into.count({id, r.id}))
                    continue; // the entries of one written rule share its number
                RuleSource s;
                s.policy = p.name;
                s.direction = direction;
                s.verdict = rules == &set.allow ? Verdict::Allow : Verdict::Deny;
                s.text = r.text;
                s.file = r.file.empty() ? file_of(p) : r.file; // a base's rule: the base's file
                s.line = r.line;
                s.column = r.column;
                s.log = r.log;
                into[{id, r.id}] = std::move(s);
            }
    };
    add("egress", p.egress);
    add("ingress", p.ingress);
    add("bind", p.bind);
}

} // namespace

RuleCatalog RuleCatalog::build(const std::vector<Policy>& policies, const std::map<std::string, uint32_t>& ids,
                               const Fallback& fallback)
{
    RuleCatalog c;
    for (const auto& p : policies) {
        auto id = ids.find(p.name);
        if (id != ids.end())
            add_policy(c.rules_, id->second, p);
        if (fallback.kind == Fallback::Kind::Policy && fallback.policy == p.name)
            add_policy(c.rules_, AW_POLICY_FALLBACK, p);
    }
    return c;
}

const RuleSource* RuleCatalog::find(uint32_t policy_id, uint32_t rule) const
{
    auto it = rules_.find({policy_id, rule});
    return it == rules_.end() ? nullptr : &it->second;
}

std::string RuleCatalog::to_json() const
{
    nlohmann::json rules = nlohmann::json::array();
    for (const auto& [key, s] : rules_)
        rules.push_back({{"policy_id", key.first},
                         {"rule", key.second},
                         {"policy", s.policy},
                         {"direction", s.direction},
                         {"verdict", verdict_name(s.verdict)},
                         {"text", s.text},
                         {"file", s.file},
                         {"line", s.line},
                         {"column", s.column},
                         {"log", s.log}});
    return nlohmann::json{{"version", 1}, {"rules", rules}}.dump(1) + "\n";
}

Result<RuleCatalog> RuleCatalog::from_json(const std::string& text, const std::string& source)
{
    try {
        auto j = nlohmann::json::parse(text);
        if (j.at("version").get<int>() != 1)
            return Error::msg("read rule catalog", source, "unknown version");
        RuleCatalog c;
        for (const auto& r : j.at("rules")) {
            RuleSource s;
            s.policy = r.at("policy").get<std::string>();
            s.direction = r.at("direction").get<std::string>();
            s.verdict = r.at("verdict").get<std::string>() == "deny" ? Verdict::Deny : Verdict::Allow;
            s.text = r.at("text").get<std::string>();
            s.file = r.at("file").get<std::string>();
            s.line = r.at("line").get<unsigned>();
            s.column = r.at("column").get<unsigned>();
            s.log = r.at("log").get<bool>();
            c.rules_[{r.at("policy_id").get<uint32_t>(), r.at("rule").get<uint32_t>()}] = std::move(s);
        }
        return c;
    } catch (const nlohmann::json::exception& e) {
        return Error::msg("read rule catalog", source, e.what());
    }
}

fs::path rule_catalog_path(const fs::path& run_dir)
{
    return run_dir / "rules.json";
}

Status write_rule_catalog(const fs::path& run_dir, const RuleCatalog& catalog)
{
    return write_file_atomic(rule_catalog_path(run_dir), catalog.to_json(), 0644);
}

Result<RuleCatalog> read_rule_catalog(const fs::path& run_dir, uid_t owner)
{
    auto path = rule_catalog_path(run_dir);
    if (auto st = check_trusted_path(path, owner); !st)
        return st.error();
    auto text = read_text_file(path);
    if (!text)
        return Error::sys("read rule catalog", path.string(), text.error().err);
    return RuleCatalog::from_json(*text, path.string());
}

} // namespace authwall
