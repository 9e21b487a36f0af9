#include "core/policy/policy_file.h"

#include "core/base/files.h"

#include <sys/stat.h>

#include <algorithm>
#include <optional>
#include <set>

#include "core/policy/toml_reader.h"

namespace authwall {

namespace {

class Reader : public detail::TomlReader {
  public:
    Reader(std::string file, PolicyLoad& out) : TomlReader(std::move(file), out.errors), out_(out) {}

    const toml::table* table_at(const toml::table& parent, std::string_view key, const std::string& where)
    {
        const toml::node* node = parent.get(key);
        if (!node)
            return nullptr;
        if (!node->is_table()) {
            error(*node, where + "." + std::string(key) + " must be a table");
            return nullptr;
        }
        return node->as_table();
    }

    std::optional<Verdict> verdict(const toml::table& t, std::string_view key, const std::string& where)
    {
        const toml::node* node = t.get(key);
        if (!node)
            return std::nullopt;
        auto s = node->value<std::string>();
        if (s && *s == "allow")
            return Verdict::Allow;
        if (s && *s == "deny")
            return Verdict::Deny;
        error(*node, where + "." + std::string(key) + " must be \"allow\" or \"deny\"");
        return std::nullopt;
    }

    // A rule is a string, or { rule = "...", log = true } to report every
    // match. Rules are numbered in the order they are read, within their
    // policy: events name a rule by its number.
    void rules(const toml::table& t, std::string_view key, const std::string& where, std::vector<Rule>& into)
    {
        const toml::node* node = t.get(key);
        if (!node)
            return;
        std::string name = where + "." + std::string(key);
        const toml::array* arr = node->as_array();
        if (!arr) {
            error(*node, name + " must be an array of rules");
            return;
        }
        for (const auto& item : *arr) {
            if (item.is_table()) {
                rule_table(*item.as_table(), name, into);
            } else if (auto text = item.value<std::string>()) {
                if (auto rule = rule_at(*text, item))
                    into.push_back(std::move(*rule));
            } else {
                error(item, name + " must contain rules: strings, or tables { rule = \"...\", log = true }");
            }
        }
    }

    void rule_table(const toml::table& t, const std::string& where, std::vector<Rule>& into)
    {
        only_keys(t, {"rule", "log"}, where);
        const toml::node* text_node = t.get("rule");
        auto text = text_node ? text_node->value<std::string>() : std::nullopt;
        if (!text) {
            error(text_node ? *text_node : static_cast<const toml::node&>(t),
                  where + ": a rule table needs rule = \"...\"");
            return;
        }
        auto rule = rule_at(*text, *text_node);
        if (const toml::node* n = t.get("log")) {
            if (const auto* b = n->as_boolean(); b && rule)
                rule->log = b->get();
            else if (!b)
                error(*n, where + ": log must be true or false");
        }
        if (rule)
            into.push_back(std::move(*rule));
    }

    std::optional<Rule> rule_at(const std::string& text, const toml::node& node)
    {
        RuleError re;
        auto rule = parse_rule(text, &re);
        if (!rule) {
            // Point into the string: the opening quote is at the node's column.
            toml::source_region r = node.source();
            r.begin.column += static_cast<toml::source_index>(re.column);
            error(r, "in rule \"" + text + "\": " + re.message);
            return std::nullopt;
        }
        rule->line = static_cast<unsigned>(node.source().begin.line);
        rule->column = static_cast<unsigned>(node.source().begin.column);
        rule->id = ++rule_count_;
        return rule;
    }

    void rule_set(const toml::table& policy, std::string_view section, const std::string& pname, RuleSet& set,
                  Policy* ingress_owner)
    {
        std::string where = "policy." + pname + "." + std::string(section);
        const toml::table* t = table_at(policy, section, "policy." + pname);
        if (!t)
            return;
        if (ingress_owner)
            only_keys(*t, {"default", "allow", "deny", "from_rhost_only"}, where);
        else
            only_keys(*t, {"default", "allow", "deny"}, where);
        if (auto v = verdict(*t, "default", where))
            set.default_verdict = *v;
        rules(*t, "allow", where, set.allow);
        rules(*t, "deny", where, set.deny);

        // An allow that a deny covers can never take effect: deny would win
        // silently, and the operator meant something else.
        for (const auto& a : set.allow) {
            for (const auto& d : set.deny) {
                if (!a.covered_by(d))
                    continue;
                toml::source_region at = t->source();
                at.begin.line = a.line;
                at.begin.column = a.column;
                if (a.prefix == d.prefix && a.protocol == d.protocol && a.ports == d.ports)
                    error(at, where + ": \"" + a.text + "\" is both allowed and denied");
                else
                    error(at, where + ": allow \"" + a.text + "\" can never match: deny \"" + d.text + "\" covers it");
                break;
            }
        }

        if (ingress_owner) {
            if (const toml::node* n = t->get("from_rhost_only")) {
                if (auto b = n->value<bool>())
                    ingress_owner->ingress_from_rhost_only = *b;
                else
                    error(*n, where + ".from_rhost_only must be true or false");
                if (ingress_owner->ingress_from_rhost_only && t->get("default") &&
                    set.default_verdict == Verdict::Allow)
                    error(*t->get("default"), where + ": default = \"allow\" contradicts from_rhost_only = true");
                if (ingress_owner->ingress_from_rhost_only)
                    set.default_verdict = Verdict::Deny;
            }
        }
    }

    void policy(const std::string& name, const toml::table& t)
    {
        rule_count_ = 0;
        Policy p;
        p.name = name;
        p.source = file_ + ":" + std::to_string(t.source().begin.line);
        std::string where = "policy." + name;
        if (!valid_policy_name(name))
            error(t, "policy name '" + name + "' is invalid: use 1-63 letters, digits, '-', '_' or '.'");
        only_keys(t, {"priority", "mode", "match", "egress", "ingress", "bind", "sockets", "session"}, where);
        if (const toml::node* n = t.get("mode")) {
            auto mode = n->value<std::string>();
            if (mode && (*mode == "enforce" || *mode == "audit"))
                p.audit = *mode == "audit";
            else
                error(*n, where + ".mode must be \"enforce\" or \"audit\"");
        }

        if (const toml::node* n = t.get("priority")) {
            // Integers only: value<int64_t>() casts a float, which is
            // undefined behaviour out of range (1e300).
            std::optional<int64_t> v;
            if (const auto* i = n->as_integer())
                v = i->get();
            if (v && *v >= -1000000 && *v <= 1000000)
                p.priority = static_cast<int>(*v);
            else
                error(*n, where + ".priority must be an integer between -1000000 and 1000000");
        }
        if (const toml::table* m = table_at(t, "match", where)) {
            std::string mw = where + ".match";
            only_keys(*m, {"users", "groups", "services", "rhosts", "cgroups"}, mw);
            for (auto& [s, n] : strings(*m, "users", mw))
                p.match.users.push_back(s);
            for (auto& [s, n] : strings(*m, "groups", mw))
                p.match.groups.push_back(s);
            for (auto& [s, n] : strings(*m, "services", mw))
                p.match.services.push_back(s);
            for (auto& [s, n] : strings(*m, "cgroups", mw))
                p.match.cgroups.push_back(s);
            for (auto& [s, n] : strings(*m, "rhosts", mw)) {
                std::string why;
                if (auto pre = Prefix::parse(s, &why))
                    p.match.rhosts.push_back(*pre);
                else
                    error(*n, mw + ".rhosts: " + why);
            }
        }
        rule_set(t, "egress", name, p.egress, nullptr);
        rule_set(t, "ingress", name, p.ingress, &p);
        rule_set(t, "bind", name, p.bind, nullptr);
        if (const toml::table* s = table_at(t, "sockets", where)) {
            std::string sw = where + ".sockets";
            only_keys(*s, {"deny_families"}, sw);
            for (auto& [fam, n] : strings(*s, "deny_families", sw)) {
                if (fam == "raw") {
                    p.deny_raw = true;
                } else if (auto f = parse_socket_family(fam)) {
                    p.denied_families |= 1ULL << *f;
                } else {
                    error(*n, sw + ".deny_families: unknown family '" + fam +
                                  "' (expected raw, packet, inet, inet6, unix, netlink, ...)");
                }
            }
        }
        if (const toml::table* s = table_at(t, "session", where)) {
            std::string sw = where + ".session";
            only_keys(*s, {"max_duration"}, sw);
            if (const toml::node* n = s->get("max_duration")) {
                auto text = n->value<std::string>();
                auto d = text ? parse_duration(*text) : std::nullopt;
                if (d)
                    p.max_duration = *d;
                else
                    error(*n, sw + ".max_duration must be a duration such as \"8h\", \"90m\" or \"1h30m\"");
            }
        }
        out_.policies.push_back(std::move(p));
    }

    void document(const toml::table& root)
    {
        only_keys(root, {"policy"}, "the policy file");
        const toml::table* policies = table_at(root, "policy", "the policy file");
        if (!policies)
            return;
        for (const auto& [key, node] : *policies) {
            if (!node.is_table()) {
                error(node, "policy." + std::string(key.str()) + " must be a table ([policy." + std::string(key.str()) +
                                "])");
                continue;
            }
            policy(std::string(key.str()), *node.as_table());
        }
    }

  private:
    PolicyLoad& out_;
    uint32_t rule_count_ = 0;
};

} // namespace

std::string PolicyDiagnostic::str() const
{
    return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

PolicyLoad parse_policy_text(std::string_view text, const std::string& file)
{
    PolicyLoad out;
    Reader reader(file, out);
    try {
        toml::table root = toml::parse(text, file);
        reader.document(root);
    } catch (const toml::parse_error& e) {
        reader.error(e.source(), std::string(e.description()));
    }
    return out;
}

Status check_trusted_path(const std::filesystem::path& path, uid_t owner)
{
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0)
        return Error::sys("read", path.string(), errno);
    if (S_ISLNK(st.st_mode))
        return Error::msg("refuse", path.string(), "is a symbolic link; point the configuration at the file itself");
    if (st.st_uid != owner)
        return Error::msg("refuse", path.string(),
                          "is owned by uid " + std::to_string(st.st_uid) + ", not by uid " + std::to_string(owner) +
                              " (chown root:root it)");
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return Error::msg("refuse", path.string(), "is writable by group or others (chmod go-w it)");
    // A directory others may write to lets them replace the file by rename,
    // unless it is sticky (like /tmp): every ancestor is checked.
    auto dir = std::filesystem::absolute(path).lexically_normal().parent_path();
    for (;; dir = dir.parent_path()) {
        struct stat ds {};
        if (::stat(dir.c_str(), &ds) != 0)
            return Error::sys("read", dir.string(), errno);
        if (ds.st_uid != 0 && ds.st_uid != owner)
            return Error::msg("refuse", path.string(),
                              "its directory " + dir.string() + " is owned by uid " + std::to_string(ds.st_uid));
        if ((ds.st_mode & (S_IWGRP | S_IWOTH)) && !(ds.st_mode & S_ISVTX))
            return Error::msg("refuse", path.string(),
                              "its directory " + dir.string() + " is writable by group or others");
        if (dir == dir.root_path() || !dir.has_relative_path())
            break;
    }
    return {};
}

Result<std::string> read_trusted_file(const std::filesystem::path& path, uid_t owner)
{
    if (auto st = check_trusted_path(path, owner); !st)
        return st.error();
    auto text = read_text_file(path);
    if (!text)
        return Error::sys("open", path.string(), text.error().err);
    return text;
}

PolicyLoad load_policy_file(const std::filesystem::path& path, uid_t owner)
{
    auto text = read_trusted_file(path, owner);
    if (!text) {
        PolicyLoad out;
        out.errors.push_back({path.string(), 0, 0, text.error().message()});
        return out;
    }
    return parse_policy_text(*text, path.string());
}

PolicyLoad load_policy_dir(const std::filesystem::path& dir, uid_t owner)
{
    PolicyLoad out;
    if (auto st = check_trusted_path(dir, owner); !st) {
        out.errors.push_back({dir.string(), 0, 0, st.error().message()});
        return out;
    }
    std::vector<std::filesystem::path> files;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec))
        if (entry.path().extension() == ".toml")
            files.push_back(entry.path());
    if (ec) {
        out.errors.push_back({dir.string(), 0, 0, "cannot list: " + ec.message()});
        return out;
    }
    std::sort(files.begin(), files.end());
    std::set<std::string> seen;
    for (const auto& f : files) {
        PolicyLoad one = load_policy_file(f, owner);
        for (auto& e : one.errors)
            out.errors.push_back(std::move(e));
        for (auto& p : one.policies) {
            if (!seen.insert(p.name).second) {
                out.errors.push_back({f.string(), 0, 0, "policy '" + p.name + "' is already defined in another file"});
                continue;
            }
            out.policies.push_back(std::move(p));
        }
    }
    return out;
}

} // namespace authwall
