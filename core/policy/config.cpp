// SPDX-License-Identifier: Apache-2.0
#include "core/policy/config.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

#include "core/policy/toml_reader.h"

namespace authwall {

namespace {

class ConfigReader : public detail::TomlReader {
  public:
    ConfigReader(std::string file, ConfigLoad& out) : TomlReader(std::move(file), out.errors), out_(out) {}

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
        for (auto& [value, node] : strings(t, key, ""))
            out.push_back(value);
        return out;
    }

    void number_at(const toml::table& t, std::string_view key, uint32_t& into, int64_t lo, int64_t hi)
    {
        const toml::node* n = t.get(key);
        if (!n)
            return;
        // Integers only: value<int64_t>() would cast a float (57e30 is UB).
        std::optional<int64_t> v;
        if (const auto* i = n->as_integer())
            v = i->get();
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
                  {"pin_dir", "enforcement_roots", "policy_dir", "run_dir", "event_log", "unmatched", "exempt_users",
                   "exempt_groups", "nft_mirror", "deny_unknown_cgroups", "mode", "pam", "limits", "users", "metrics",
                   "dns"},
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
        std::string mode;
        if (string_at(root, "mode", mode)) {
            if (mode == "audit" || mode == "enforce")
                c.audit_override = mode == "audit";
            else
                error(*root.get("mode"), "mode must be \"audit\" or \"enforce\" (or absent: each policy's own)");
        }
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
        if (const toml::node* n = root.get("users")) {
            if (const toml::table* u = n->as_table()) {
                only_keys(*u, {"layer", "min_uid", "max_uid", "user_only_services"}, "[users]");
                bool_at(*u, "layer", c.user_layer);
                number_at(*u, "min_uid", c.users_min_uid, 1, 0xfffffffe);
                number_at(*u, "max_uid", c.users_max_uid, 1, 0xfffffffe);
                if (u->get("user_only_services")) {
                    c.user_only_services = strings_at(*u, "user_only_services");
                    // The user manager must never be moved into a login
                    // cgroup: systemd would lose track of it.
                    if (std::find(c.user_only_services.begin(), c.user_only_services.end(), "systemd-user") ==
                        c.user_only_services.end())
                        c.user_only_services.push_back("systemd-user");
                }
                if (c.users_min_uid > c.users_max_uid)
                    error(*n, "users.min_uid must not be above users.max_uid");
            } else {
                error(*n, "users must be a table ([users])");
            }
        }
        metrics(root);
        dns(root);
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

    // [metrics] textfile (a *.prom file: node_exporter reads no other),
    // interval_sec and format.
    void metrics(const toml::table& root)
    {
        const toml::node* n = root.get("metrics");
        if (!n)
            return;
        const toml::table* m = n->as_table();
        if (!m) {
            error(*n, "metrics must be a table ([metrics])");
            return;
        }
        Config& c = out_.config;
        only_keys(*m, {"textfile", "interval_sec", "format"}, "[metrics]");
        path_at(*m, "textfile", c.metrics_textfile);
        if (!c.metrics_textfile.empty() && c.metrics_textfile.extension() != ".prom") {
            error(*m->get("textfile"), "metrics.textfile must end in .prom (node_exporter's textfile collector "
                                       "reads only *.prom files)");
            c.metrics_textfile.clear();
        }
        number_at(*m, "interval_sec", c.metrics_interval_sec, 1, 86400);
        std::string format;
        if (string_at(*m, "format", format)) {
            if (format == "prometheus")
                c.metrics_format = MetricsFormat::Prometheus;
            else if (format == "openmetrics")
                c.metrics_format = MetricsFormat::OpenMetrics;
            else
                error(*m->get("format"), "metrics.format must be \"prometheus\" or \"openmetrics\"");
        }
    }

    // [dns] servers, TTL floor and ceiling, grace, staleness, timeout.
    void dns(const toml::table& root)
    {
        const toml::node* n = root.get("dns");
        if (!n)
            return;
        const toml::table* d = n->as_table();
        if (!d) {
            error(*n, "dns must be a table ([dns])");
            return;
        }
        DnsSettings& s = out_.config.dns;
        only_keys(*d,
                  {"servers", "min_ttl_sec", "max_ttl_sec", "grace_sec", "stale_sec", "timeout_ms", "max_addresses",
                   "observe_from"},
                  "[dns]");
        if (d->get("observe_from")) {
            s.observe_from.clear();
            for (auto& [text, node] : strings(*d, "observe_from", "")) {
                std::string why;
                if (auto prefix = Prefix::parse(text, &why))
                    s.observe_from.push_back(*prefix);
                else
                    error(*node, "dns.observe_from: " + why);
            }
        }
        for (auto& [text, node] : strings(*d, "servers", "")) {
            if (auto server = parse_dns_server(text))
                s.servers.push_back(*server);
            else
                error(*node, "dns.servers: '" + text + "' is not ADDRESS, ADDRESS:PORT or [IPV6]:PORT");
        }
        number_at(*d, "min_ttl_sec", s.min_ttl_sec, 1, 86400);
        number_at(*d, "max_ttl_sec", s.max_ttl_sec, 1, 7 * 86400);
        number_at(*d, "grace_sec", s.grace_sec, 0, 7 * 86400);
        number_at(*d, "stale_sec", s.stale_sec, 0, 7 * 86400);
        number_at(*d, "timeout_ms", s.timeout_ms, 100, 60000);
        number_at(*d, "max_addresses", s.max_addresses, 1, 4096);
        if (s.min_ttl_sec > s.max_ttl_sec)
            error(*n, "dns.min_ttl_sec must not be above dns.max_ttl_sec");
    }

  private:
    ConfigLoad& out_;
};

} // namespace

std::optional<DnsServer> parse_dns_server(std::string_view text)
{
    DnsServer server;
    std::string_view host = text, port;
    if (text.starts_with('[')) {
        auto close = text.find(']');
        if (close == std::string_view::npos || (close + 1 < text.size() && text[close + 1] != ':'))
            return std::nullopt;
        host = text.substr(1, close - 1);
        port = close + 1 < text.size() ? text.substr(close + 2) : std::string_view("53");
    } else if (std::count(text.begin(), text.end(), ':') == 1) {
        host = text.substr(0, text.find(':'));
        port = text.substr(text.find(':') + 1);
    }
    auto address = IpAddress::parse(host);
    if (!address)
        return std::nullopt;
    server.address = *address;
    if (!port.empty()) {
        unsigned value = 0;
        auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
        if (ec != std::errc() || ptr != port.data() + port.size() || value < 1 || value > 65535)
            return std::nullopt;
        server.port = static_cast<uint16_t>(value);
    }
    return server;
}

std::string DnsServer::str() const
{
    return address.is_v4() ? address.str() + ":" + std::to_string(port)
                           : "[" + address.str() + "]:" + std::to_string(port);
}

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
    auto text = read_trusted_file(path, owner);
    if (!text) {
        ConfigLoad out;
        out.errors.push_back({path.string(), 0, 0, text.error().message()});
        return out;
    }
    return parse_config_text(*text, path.string());
}

namespace {
std::string env_value(const char* name)
{
    const char* v = std::getenv(name);
    return v && *v ? std::string(v) : std::string();
}
} // namespace

ResolvedConfig resolve_config(const ConfigOverrides& flags)
{
    ResolvedConfig out;
    std::string path = !flags.config_path.empty() ? flags.config_path : env_value("AUTHWALL_CONFIG");
    out.config_explicit = !path.empty();
    out.config_path = out.config_explicit ? std::filesystem::path(path) : std::filesystem::path(kDefaultConfigPath);
    out.load = load_config(out.config_path, out.config_explicit);
    Config& c = out.load.config;
    auto pick = [](const std::string& flag, const char* env) { return !flag.empty() ? flag : env_value(env); };
    if (auto v = pick(flags.pin_dir, "AUTHWALL_PIN_DIR"); !v.empty())
        c.pin_dir = v;
    if (auto v = pick(flags.run_dir, "AUTHWALL_RUN_DIR"); !v.empty())
        c.run_dir = v;
    std::vector<std::string> roots = flags.roots;
    if (roots.empty()) {
        std::string env = env_value("AUTHWALL_CGROUP_ROOTS");
        size_t start = 0;
        while (start < env.size()) {
            size_t end = env.find(':', start);
            if (end == std::string::npos)
                end = env.size();
            if (end > start)
                roots.push_back(env.substr(start, end - start));
            start = end + 1;
        }
    }
    if (!roots.empty()) {
        c.enforcement_roots.clear();
        for (const auto& r : roots)
            c.enforcement_roots.emplace_back(r);
    }
    return out;
}

} // namespace authwall
