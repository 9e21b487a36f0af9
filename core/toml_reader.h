// Internal to core: what the policy and configuration readers share —
// diagnostics with file, line and column, the unknown-key check, and arrays
// of strings. Includes toml++, so only .cpp files of core include it.
//
// toml++ is compiled in (header-only), never linked: pam_authwall.so reads
// the configuration inside every login service, which should not load
// libtomlplusplus for it. Every file that parses TOML includes this one, so
// one mode holds for the whole program.
#pragma once

#include "core/policy_file.h"

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#if defined(TOML_SHARED_LIB) && TOML_SHARED_LIB
#error "toml++ is used header-only here: do not link tomlplusplus::tomlplusplus (it defines TOML_SHARED_LIB)"
#endif
#define TOML_HEADER_ONLY 1
#define TOML_EXCEPTIONS 1
#include <toml++/toml.h>

namespace authwall::detail {

class TomlReader {
  public:
    TomlReader(std::string file, std::vector<PolicyDiagnostic>& errors) : file_(std::move(file)), errors_(errors) {}

    void error(const toml::source_region& where, std::string message)
    {
        errors_.push_back({file_, static_cast<unsigned>(where.begin.line), static_cast<unsigned>(where.begin.column),
                           std::move(message)});
    }
    void error(const toml::node& node, std::string message) { error(node.source(), std::move(message)); }

    // Every key of `table` must be one of `allowed`: a typo is an error.
    void only_keys(const toml::table& table, std::initializer_list<std::string_view> allowed, const std::string& where)
    {
        for (const auto& [key, node] : table) {
            bool known = false;
            for (auto a : allowed)
                known |= a == key.str();
            if (known)
                continue;
            std::string list;
            for (auto a : allowed)
                list += (list.empty() ? "" : ", ") + std::string(a);
            error(key.source(), "unknown key '" + std::string(key.str()) + "' in " + where + " (expected one of: " +
                                    list + ")");
        }
    }

    // The strings of the array at `key` with their nodes (for positions);
    // `where` prefixes the key in messages ("policy.a.match").
    std::vector<std::pair<std::string, const toml::node*>> strings(const toml::table& t, std::string_view key,
                                                                   const std::string& where)
    {
        std::vector<std::pair<std::string, const toml::node*>> out;
        const toml::node* node = t.get(key);
        if (!node)
            return out;
        std::string name = (where.empty() ? "" : where + ".") + std::string(key);
        const toml::array* arr = node->as_array();
        if (!arr) {
            error(*node, name + " must be an array of strings");
            return out;
        }
        for (const auto& item : *arr) {
            if (auto s = item.value<std::string>())
                out.emplace_back(*s, &item);
            else
                error(item, name + " must contain only strings");
        }
        return out;
    }

  protected:
    std::string file_;
    std::vector<PolicyDiagnostic>& errors_;
};

} // namespace authwall::detail
