// SPDX-License-Identifier: Apache-2.0
// authctl nft verify: the nftables mirror against the sessions map.
#include "authctl/context.h"

#include "core/dataplane/maps.h"
#include "core/nft/mirror.h"
#include "core/session/mirror.h"

#include <nlohmann/json.hpp>

#include <iostream>

namespace authctl {

using namespace authwall;

int cmd_nft_verify(const Context& ctx)
{
    auto maps = PinnedMaps::open(ctx.config.pin_dir);
    if (!maps)
        return fail(maps.error());
    auto expected = mirror_expected(*maps, ctx.config.run_dir);
    if (!expected)
        return fail(expected.error());
    auto actual = nft_read_mirror();
    if (!actual)
        return fail(actual.error());
    MirrorDrift drift = nft_compare(*actual, *expected);
    if (ctx.json) {
        nlohmann::json j{{"version", 1},
                         {"mirror_enabled", ctx.config.nft_mirror},
                         {"table", std::string("inet ") + kNftTable},
                         {"table_present", actual->table_present},
                         {"sessions_expected", expected->size()},
                         {"in_sync", drift.empty()},
                         {"missing", drift.missing},
                         {"stray", drift.stray}};
        std::cout << j.dump(2) << "\n";
    } else {
        if (!ctx.config.nft_mirror)
            std::cout << "note: nft_mirror is off in " << ctx.config.source << "\n";
        if (drift.table_missing)
            std::cout << "table inet " << kNftTable << " is missing\n";
        for (const auto& m : drift.missing)
            std::cout << "missing  " << m << "\n";
        for (const auto& s : drift.stray)
            std::cout << "stray    " << s << "\n";
        if (drift.empty())
            std::cout << "nft mirror in sync: " << expected->size() << " session(s)\n";
        else
            std::cout << "nft mirror drifted (authwall-cgroupd repairs it at its next sweep; SIGHUP runs one now)\n";
    }
    return drift.empty() ? 0 : 1;
}

} // namespace authctl
