// SPDX-License-Identifier: Apache-2.0
#include "core/policy/names_file.h"

#include "core/base/files.h"
#include "core/policy/policy_file.h"

#include <nlohmann/json.hpp>

#include <stdexcept>

namespace authwall {

std::filesystem::path names_file_path(const std::filesystem::path& run_dir)
{
    return run_dir / "names.json";
}

namespace {

PublishedNames parse_published_names(const nlohmann::json& doc)
{
    PublishedNames out;
    for (const auto& n : doc.at("names")) {
        PublishedName name{n.at("name").get<std::string>(), {}, n.value("failures", 0u)};
        for (const auto& a : n.at("addresses")) {
            auto address = IpAddress::parse(a.at("address").get<std::string>());
            if (!address)
                throw std::runtime_error("a name's address is not an IP address");
            name.addresses.push_back(*address);
        }
        out.names.push_back(std::move(name));
    }
    if (auto it = doc.find("session_answers"); it != doc.end())
        out.session_answers = SessionAnswerCounts{it->at("answers").get<uint64_t>(), it->at("ignored").get<uint64_t>(),
                                                  it->at("granted").get<uint64_t>()};
    return out;
}

} // namespace

Result<std::optional<PublishedNames>> read_published_names(const std::filesystem::path& run_dir, uid_t owner)
{
    auto path = names_file_path(run_dir);
    std::error_code ec;
    if (!std::filesystem::exists(path, ec))
        return std::optional<PublishedNames>();
    if (auto st = check_trusted_path(path, owner); !st)
        return st.error();
    auto text = read_text_file(path);
    if (!text)
        return text.error();
    try {
        return std::optional(parse_published_names(nlohmann::json::parse(*text)));
    } catch (const nlohmann::json::exception& e) {
        return Error::msg("read", path.string(), e.what());
    } catch (const std::runtime_error& e) {
        return Error::msg("read", path.string(), e.what());
    }
}

Result<NameAddresses> read_name_addresses(const std::filesystem::path& run_dir, uid_t owner)
{
    auto names = read_published_names(run_dir, owner);
    if (!names)
        return names.error();
    NameAddresses out;
    if (*names)
        for (auto& n : (*names)->names)
            out[n.name] = std::move(n.addresses);
    return out;
}

} // namespace authwall
