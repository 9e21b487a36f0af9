// SPDX-License-Identifier: Apache-2.0
#include "core/session/mirror.h"

namespace authwall {

namespace fs = std::filesystem;

MirrorSession mirror_session_of(const SessionRecord& r)
{
    MirrorSession s;
    s.id = r.id;
    s.user = r.user;
    s.policy = r.policy;
    s.auth_correlation = r.auth_correlation;
    s.auth_claims = r.auth_claims;
    if (r.rhost)
        s.rhost = IpAddress::parse(*r.rhost);
    if (r.max_duration_s)
        s.deadline_ns = r.opened_ns + r.max_duration_s * 1'000'000'000ULL;
    return s;
}

Result<std::vector<MirrorSession>> mirror_expected(const PinnedMaps& maps, const fs::path& run_dir)
{
    auto sessions = maps.list_sessions();
    if (!sessions)
        return sessions.error();
    std::vector<MirrorSession> expected;
    for (const auto& [id, entry] : *sessions) {
        if (entry.flags & AW_SESSION_REVOKED)
            continue;
        if (auto rec = read_record(run_dir, id)) {
            expected.push_back(mirror_session_of(*rec));
        } else {
            MirrorSession m;
            m.id = id;
            m.rhost = entry.rhost;
            m.policy = "#" + std::to_string(entry.policy_id);
            expected.push_back(m);
        }
    }
    return expected;
}

} // namespace authwall
