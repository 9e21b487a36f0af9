#include "core/config.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

#define TOML_EXCEPTIONS 1
#include <toml++/toml.h>

namespace authwall {

namespace {

class ConfigReader {
  public:
    ConfigReader(std::string file, ConfigLoad& out) : file_(std::move(file)), out_(out) {}

    void error(const toml::node& n, std::string message) { error(n.source(), std::move(message)); }
    void error(const toml::source_region& r, std::string message)
    {
        out_.errors.push_back({file_, static_cast<unsigned>(r.begin.line), static_cast<unsigned>(r.begin.column),
                               std::move(message)});
    }

    void only_keys(const toml::table& t, std::initializer_list<std::string_view> allowed, const std::string& where)
    {
        for (const auto& [key, node] : t) {
            if (std::find(allowed.begin(), allowed.end(), key.str()) != allowed.end())
                continue;
            std::string list;
            for (auto a : allowed)
                list += (list.empty() ? "" : ", ") + std::string(a);
            error(key.source(), "unknown key '" + std::string(key.str()) + "' in " + where + " (expected one of: " +
                                    list + ")");
        }
    }

    bool string_at(const toml::table& t, std::string_view key, std::string& into)
    {
        const toml::node* n = t.get(key);
        if (!n)
            return false;
        if (auto s = n->value<std::string>()) {
            into = *s;
            return true;
        }
        error(*n, std::string(key) + " must be a string");
        return false;
    }

    void path_at(const toml::table& t, std::string_view key, std::filesystem::path& into)
    {
        std::string s;
        if (!string_at(t, key, s))
            return;
        if (s.empty() || s[0] != '/')
            error(*t.get(key), std::string(key) + " must be an absolute path");
        else
            into = s;
    }

    std::vector<std::string> strings_at(const toml::table& t, std::string_view key)
    {
        std::vector<std::string> out;
        const toml::node* n = t.get(key);
        if (!n)
            return out;
        const toml::array* a = n->as_array();
        if (!a) {
            error(*n, std::string(key) + " must be an array of strings");
            return out;
        }
        for (const auto& item : *a) {
            if (auto s = item.value<std::string>())
                out.push_back(*s);
            else
                error(item, std::string(key) + " must contain only strings");
        }
        return out;
    }

    void number_at(const toml::table& t, std::string_view key, uint32_t& into, int64_t lo, int64_t hi)
    {
        const toml::node* n = t.get(key);
        if (!n)
            return;
        auto v = n->value<int64_t>();
        if (v && *v >= lo && *v <= hi)
            into = static_cast<uint32_t>(*v);
        else
            error(*n, std::string(key) + " must be an integer between " + std::to_string(lo) + " and " +
                          std::to_string(hi));
    }

    void bool_at(const toml::table& t, std::string_view key, bool& into)
    {
        const toml::node* n = t.get(key);
        if (!n)
            return;
        if (auto b = n->value<bool>())
            into = *b;
        else
            error(*n, std::string(key) + " must be true or false");
    }

    void document(const toml::table& root)
    {
        Config& c = out_.config;
        only_keys(root,
                  {"pin_dir", "enforcement_roots", "policy_dir", "run_dir", "event_log", "unmatched", "exempt_users", "exempt_groups",
                   "nft_mirror", "deny_unknown_cgroups", "pam", "limits"},
                  "the configuration");
        path_at(root, "pin_dir", c.pin_dir);
        path_at(root, "policy_dir", c.policy_dir);
        path_at(root, "run_dir", c.run_dir);
        path_at(root, "event_log", c.event_log);
        if (root.get("enforcement_roots")) {
            for (const auto& s : strings_at(root, "enforcement_roots")) {
                if (s.empty() || s[0] != '/')
                    error(*root.get("enforcement_roots"), "enforcement_roots must hold absolute paths");
                else
                    c.enforcement_roots.emplace_back(s);
            }
        }
        std::string unmatched;
        if (string_at(root, "unmatched", unmatched)) {
            if (unmatched == "pass")
                c.unmatched = {Fallback::Kind::Pass, {}};
            else if (unmatched == "deny")
                c.unmatched = {Fallback::Kind::Deny, {}};
            else if (valid_policy_name(unmatched))
                c.unmatched = {Fallback::Kind::Policy, unmatched};
            else
                error(*root.get("unmatched"), "unmatched must be \"pass\", \"deny\" or a policy name");
        }
        if (root.get("exempt_users"))
            c.exempt_users = strings_at(root, "exempt_users");
        if (root.get("exempt_groups"))
            c.exempt_groups = strings_at(root, "exempt_groups");
        bool_at(root, "nft_mirror", c.nft_mirror);
        bool_at(root, "deny_unknown_cgroups", c.deny_unknown_cgroups);
        if (const toml::node* n = root.get("pam")) {
            if (const toml::table* pam = n->as_table()) {
                only_keys(*pam, {"fail"}, "[pam]");
                std::string fail;
                if (string_at(*pam, "fail", fail)) {
                    if (fail == "closed")
                        c.pam_fail = PamFailMode::Closed;
                    else if (fail == "open")
                        c.pam_fail = PamFailMode::Open;
                    else
                        error(*pam->get("fail"), "pam.fail must be \"closed\" or \"open\"");
                }
            } else {
                error(*n, "pam must be a table ([pam])");
            }
        }
        if (const toml::node* n = root.get("limits")) {
            if (const toml::table* l = n->as_table()) {
                only_keys(*l, {"max_sessions", "policy_entries", "events_per_sec"}, "[limits]");
                number_at(*l, "max_sessions", c.max_sessions, 1, 1 << 22);
                number_at(*l, "policy_entries", c.policy_entries, 16, 16'000'000);
                number_at(*l, "events_per_sec", c.events_per_sec, 0, 1'000'000);
            } else {
                error(*n, "limits must be a table ([limits])");
            }
        }
    }

  private:
    std::string file_;
    ConfigLoad& out_;
};

} // namespace

ConfigLoad parse_config_text(std::string_view text, const std::string& file)
{
    ConfigLoad out;
    out.config.source = file;
    ConfigReader reader(file, out);
    try {
        toml::table root = toml::parse(text, file);
        reader.document(root);
    } catch (const toml::parse_error& e) {
        reader.error(e.source(), std::string(e.description()));
    }
    return out;
}

ConfigLoad load_config(const std::filesystem::path& path, bool must_exist, uid_t owner)
{
    std::error_code ec;
    if (!must_exist && !std::filesystem::exists(path, ec)) {
        ConfigLoad out;
        out.config.source = "(defaults)";
        return out;
    }
    if (auto st = check_trusted_path(path, owner); !st) {
        ConfigLoad out;
        out.errors.push_back({path.string(), 0, 0, st.error().message()});
        return out;
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        ConfigLoad out;
        out.errors.push_back({path.string(), 0, 0, "cannot open: " + std::string(std::strerror(errno))});
        return out;
    }
    std::ostringstream buf;
    buf << in.rdbuf();
    return parse_config_text(buf.str(), path.string());
}

} // namespace authwall
