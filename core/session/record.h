// SPDX-License-Identifier: Apache-2.0
// Session records: /run/authwall/sessions/<cgroup id>.json, one per session,
// written atomically (temporary file + rename). They let close_session work
// from another process than open_session, and tell authctl and cgroupd what
// the kernel's entry is about. Schema version 1 (docs/INTEGRATIONS.md).
#pragma once

#include "core/base/result.h"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace authwall {

// What a session stands for. A record holds a login or a container; the
// user layer (a user's every process, by uid) appears only in events.
enum class SessionKind { Login, Container, User };

// "login", "container", "user".
const char* kind_name(SessionKind kind);
// The kinds a record may hold: "login" and "container".
std::optional<SessionKind> record_kind(std::string_view name);

struct SessionRecord {
    int version = 1;
    uint64_t id = 0;         // cgroup id = the key in the sessions map
    std::string correlation; // 32 hex digits, shared by every event of the session
    SessionKind kind = SessionKind::Login;
    std::string user;
    uint32_t uid = 0;
    std::string service; // PAM service
    std::optional<std::string> rhost;
    std::string tty;
    std::string policy; // name; "(unmatched)" for the fallback
    uint32_t policy_id = 0;
    std::string cgroup;        // absolute path of the session cgroup
    std::string origin_cgroup; // where the session leader came from
    int32_t leader_pid = 0;
    std::string opened_at;       // RFC 3339, UTC
    uint64_t opened_ns = 0;      // CLOCK_REALTIME
    uint64_t max_duration_s = 0; // 0 = none
    std::string unit;            // the systemd scope holding the session, when systemd made it
    // What an earlier PAM module handed the login (AUTHWALL_AUTH_CORRELATION,
    // AUTHWALL_AUTH_CLAIMS in the PAM environment), sanitised
    // (sanitize_auth_tag); empty when none. Written only when set.
    std::string auth_correlation;
    std::string auth_claims;
};

std::string to_json(const SessionRecord& r);
Result<SessionRecord> record_from_json(const std::string& text, const std::string& source);

namespace detail {
// record_from_json's two parsers, apart for the tests that hold one to the
// other. The fast one reads the shape to_json writes (a flat object of
// ASCII strings without escapes, unsigned integers and null) without
// building a DOM, and returns nullopt for anything else; the full one
// (nlohmann) answers every input, with a record or an error, and is the
// reference: where the fast one returns a record, the full one returns
// the same record.
std::optional<SessionRecord> record_from_json_fast(std::string_view text);
Result<SessionRecord> record_from_json_full(const std::string& text, const std::string& source);
} // namespace detail

std::filesystem::path sessions_dir(const std::filesystem::path& run_dir);
std::filesystem::path record_path(const std::filesystem::path& run_dir, uint64_t id);

Status write_record(const std::filesystem::path& run_dir, const SessionRecord& r);
Result<SessionRecord> read_record(const std::filesystem::path& run_dir, uint64_t id);
Status remove_record(const std::filesystem::path& run_dir, uint64_t id); // missing is fine
Result<std::vector<SessionRecord>> list_records(const std::filesystem::path& run_dir);

} // namespace authwall
