// SPDX-License-Identifier: Apache-2.0
#include "core/policy/names_file.h"

#include "core/base/files.h"
#include "core/policy/policy_file.h"

#include <nlohmann/json.hpp>

namespace authwall {

std::filesystem::path names_file_path(const std::filesystem::path& run_dir)
{
    return run_dir / "names.json";
}

Result<std::optional<std::vector<PublishedName>>> read_published_names(const std::filesystem::path& run_dir,
                                                                       uid_t owner)
{
    auto path = names_file_path(run_dir);
    std::error_code ec;
    if (!std::filesystem::exists(path, ec))
        return std::optional<std::vector<PublishedName>>();
    if (auto st = check_trusted_path(path, owner); !st)
        return st.error();
    auto text = read_text_file(path);
    if (!text)
        return text.error();
    std::vector<PublishedName> out;
    try {
        auto doc = nlohmann::json::parse(*text); // named: a temporary's member would dangle in the loop
        for (const auto& n : doc.at("names")) {
            PublishedName name{n.at("name").get<std::string>(), {}, n.value("failures", 0u)};
            for (const auto& a : n.at("addresses")) {
                auto address = IpAddress::parse(a.at("address").get<std::string>());
                if (!address)
                    return Error::msg("read", path.string(), "a name's address is not an IP address");
                name.addresses.push_back(*address);
            }
            out.push_back(std::move(name));
        }
    } catch (const nlohmann::json::exception& e) {
        return Error::msg("read", path.string(), e.what());
    }
    return std::optional(std::move(out));
}

Result<NameAddresses> read_name_addresses(const std::filesystem::path& run_dir, uid_t owner)
{
    auto names = read_published_names(run_dir, owner);
    if (!names)
        return names.error();
    NameAddresses out;
    for (auto& n : names->value_or(std::vector<PublishedName>{}))
        out[n.name] = std::move(n.addresses);
    return out;
}

} // namespace authwall
