// SPDX-License-Identifier: Apache-2.0
#include "core/policy/policy_file.h"

#include "core/base/files.h"

#include <sys/stat.h>

#include <algorithm>
#include <optional>
#include <set>

#include "core/policy/toml_reader.h"
#include "core/policy/written.h"

namespace authwall {

namespace detail {

namespace {

class Reader : public TomlReader {
  public:
    Reader(std::string file, std::vector<PolicyDiagnostic>& errors, PolicyDocument& out)
        : TomlReader(std::move(file), errors), out_(out)
    {
    }

    Place place(const toml::node& node) const
    {
        return Place{file_, static_cast<unsigned>(node.source().begin.line),
                     static_cast<unsigned>(node.source().begin.column)};
    }

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

    std::optional<Written<Verdict>> verdict(const toml::table& t, std::string_view key, const std::string& where)
    {
        const toml::node* node = t.get(key);
        if (!node)
            return std::nullopt;
        auto s = node->value<std::string>();
        if (s && (*s == "allow" || *s == "deny"))
            return Written<Verdict>{*s == "allow" ? Verdict::Allow : Verdict::Deny, place(*node)};
        error(*node, where + "." + std::string(key) + " must be \"allow\" or \"deny\"");
        return std::nullopt;
    }

    // A rule is a string, or { rule = "...", log = true } to report every
    // match. Its sets are expanded once every file is read.
    void rules(const toml::table& t, std::string_view key, const std::string& where, std::vector<WrittenRule>& into)
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
                into.push_back(WrittenRule{*text, place(item), false});
            } else {
                error(item, name + " must contain rules: strings, or tables { rule = \"...\", log = true }");
            }
        }
    }

    void rule_table(const toml::table& t, const std::string& where, std::vector<WrittenRule>& into)
    {
        only_keys(t, {"rule", "log"}, where);
        const toml::node* text_node = t.get("rule");
        auto text = text_node ? text_node->value<std::string>() : std::nullopt;
        if (!text) {
            error(text_node ? *text_node : static_cast<const toml::node&>(t),
                  where + ": a rule table needs rule = \"...\"");
            return;
        }
        WrittenRule rule{*text, place(*text_node), false};
        if (const toml::node* n = t.get("log")) {
            if (const auto* b = n->as_boolean())
                rule.log = b->get();
            else
                error(*n, where + ": log must be true or false");
        }
        into.push_back(std::move(rule));
    }

    void direction(const toml::table& policy, std::string_view section, WrittenPolicy& p, WrittenDirection& d,
                   bool ingress)
    {
        std::string where = "policy." + p.name + "." + std::string(section);
        const toml::table* t = table_at(policy, section, "policy." + p.name);
        if (!t)
            return;
        if (ingress)
            only_keys(*t, {"default", "allow", "deny", "from_rhost_only"}, where);
        else
            only_keys(*t, {"default", "allow", "deny"}, where);
        d.default_verdict = verdict(*t, "default", where);
        rules(*t, "allow", where, d.allow);
        rules(*t, "deny", where, d.deny);
        if (!ingress)
            return;
        if (const toml::node* n = t->get("from_rhost_only")) {
            if (auto b = n->value<bool>())
                p.from_rhost_only = Written<bool>{*b, place(*n)};
            else
                error(*n, where + ".from_rhost_only must be true or false");
        }
    }

    void header(const toml::table& t, WrittenPolicy& p, const std::string& where)
    {
        if (const toml::node* n = t.get("mode")) {
            auto mode = n->value<std::string>();
            if (mode && (*mode == "enforce" || *mode == "audit"))
                p.audit = Written<bool>{*mode == "audit", place(*n)};
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
        if (const toml::node* n = t.get("abstract")) {
            if (auto b = n->value<bool>())
                p.abstract = *b;
            else
                error(*n, where + ".abstract must be true or false");
            if (p.abstract && (t.get("match") || t.get("priority")))
                error(*n, where + ": an abstract policy is never given to a login: it takes no match or priority");
        }
        for (auto& [base, n] : strings(t, "extends", where))
            p.extends.push_back(Written<std::string>{base, place(*n)});
    }

    void match(const toml::table& t, WrittenPolicy& p, const std::string& where)
    {
        const toml::table* m = table_at(t, "match", where);
        if (!m)
            return;
        p.has_match = true;
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

    void sockets_and_session(const toml::table& t, WrittenPolicy& p, const std::string& where)
    {
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
                    p.max_duration = Written<std::chrono::seconds>{*d, place(*n)};
                else
                    error(*n, sw + ".max_duration must be a duration such as \"8h\", \"90m\" or \"1h30m\"");
            }
        }
    }

    void policy(const std::string& name, const toml::table& t)
    {
        WrittenPolicy p;
        p.name = name;
        p.at = place(t);
        std::string where = "policy." + name;
        if (!valid_policy_name(name))
            error(t, "policy name '" + name + "' is invalid: use 1-63 letters, digits, '-', '_' or '.'");
        only_keys(
            t, {"priority", "mode", "abstract", "extends", "match", "egress", "ingress", "bind", "sockets", "session"},
            where);
        header(t, p, where);
        match(t, p, where);
        direction(t, "egress", p, p.egress, false);
        direction(t, "ingress", p, p.ingress, true);
        direction(t, "bind", p, p.bind, false);
        sockets_and_session(t, p, where);
        out_.policies.push_back(std::move(p));
    }

    // [sets]: NAME = "member" or ["member", ...]; members are read (and
    // their references followed) once every file is read.
    void sets(const toml::table& t)
    {
        for (const auto& [key, node] : t) {
            WrittenSet set;
            set.name = std::string(key.str());
            set.at = Place{file_, static_cast<unsigned>(key.source().begin.line),
                           static_cast<unsigned>(key.source().begin.column)};
            if (!valid_policy_name(set.name)) {
                error(key.source(),
                      "set name '" + set.name + "' is invalid: use 1-63 letters, digits, '-', '_' or '.'");
                continue;
            }
            if (auto s = node.value<std::string>()) {
                set.members.push_back({*s, place(node)});
            } else if (const toml::array* arr = node.as_array()) {
                for (const auto& item : *arr) {
                    if (auto m = item.value<std::string>())
                        set.members.push_back({*m, place(item)});
                    else
                        error(item, "sets." + set.name + " must contain only strings");
                }
                if (arr->empty())
                    error(node, "sets." + set.name + " is empty: a rule on it would match nothing");
            } else {
                error(node, "sets." + set.name + " must be a string or an array of strings");
                continue;
            }
            out_.sets.push_back(std::move(set));
        }
    }

    void document(const toml::table& root)
    {
        only_keys(root, {"policy", "sets"}, "the policy file");
        if (const toml::table* s = table_at(root, "sets", "the policy file"))
            sets(*s);
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
    PolicyDocument& out_;
};

} // namespace

PolicyDocument read_policy_document(std::string_view text, const std::string& file,
                                    std::vector<PolicyDiagnostic>& errors)
{
    PolicyDocument out;
    Reader reader(file, errors, out);
    try {
        toml::table root = toml::parse(text, file);
        reader.document(root);
    } catch (const toml::parse_error& e) {
        reader.error(e.source(), std::string(e.description()));
    }
    return out;
}

} // namespace detail

std::string PolicyDiagnostic::str() const
{
    return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

PolicyLoad parse_policy_text(std::string_view text, const std::string& file, const PolicyLoadLimits& limits)
{
    std::vector<PolicyDiagnostic> errors;
    std::vector<detail::PolicyDocument> documents{detail::read_policy_document(text, file, errors)};
    return detail::resolve_documents(documents, std::move(errors), limits);
}

const Policy* find_policy(const PolicyLoad& load, const std::string& name)
{
    for (const auto* list : {&load.policies, &load.abstract})
        for (const auto& p : *list)
            if (p.name == name)
                return &p;
    return nullptr;
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

PolicyLoad load_policy_file(const std::filesystem::path& path, uid_t owner, const PolicyLoadLimits& limits)
{
    auto text = read_trusted_file(path, owner);
    if (!text) {
        PolicyLoad out;
        out.errors.push_back({path.string(), 0, 0, text.error().message()});
        return out;
    }
    return parse_policy_text(*text, path.string(), limits);
}

PolicyLoad load_policy_dir(const std::filesystem::path& dir, uid_t owner, const PolicyLoadLimits& limits)
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
    std::vector<PolicyDiagnostic> errors;
    std::vector<detail::PolicyDocument> documents;
    for (const auto& f : files) {
        auto text = read_trusted_file(f, owner);
        if (!text)
            errors.push_back({f.string(), 0, 0, text.error().message()});
        else
            documents.push_back(detail::read_policy_document(*text, f.string(), errors));
    }
    return detail::resolve_documents(documents, std::move(errors), limits);
}

} // namespace authwall
