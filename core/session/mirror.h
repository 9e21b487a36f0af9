// SPDX-License-Identifier: Apache-2.0
// The sessions as the nftables mirror (core/nft/mirror.h) describes them.
#pragma once

#include "core/base/result.h"
#include "core/dataplane/maps.h"
#include "core/nft/mirror.h"
#include "core/session/record.h"

#include <filesystem>
#include <vector>

namespace authwall {

MirrorSession mirror_session_of(const SessionRecord& record);
// What the mirror should hold: every session in the map that is not
// revoked, described by its record (or by its entry alone).
Result<std::vector<MirrorSession>> mirror_expected(const PinnedMaps& maps, const std::filesystem::path& run_dir);

} // namespace authwall
