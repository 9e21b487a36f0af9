// Opening and closing a login session — the logic of pam_authwall.so, kept
// here so tests drive it without PAM. The order of operations is the
// contract:
//   open:  validate user and rhost → resolve the policy (the index the loader
//          published) → create the session cgroup → move the leader → read
//          the cgroup id → insert the entry → write the record → event.
//          Any failure after the cgroup exists is rolled back.
//   close: find the session (hint, own cgroup, or the record of the leader)
//          → revoke it in the map (network cut at once) → move the caller
//          back out → kill what is left → remove cgroup, entry, record →
//          event. Idempotent; needs nothing from the open call's process.
#pragma once

#include "core/config.h"
#include "core/identity.h"
#include "core/result.h"
#include "core/session_events.h"
#include "core/session_record.h"

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace authwall {

struct PamOptions {
    bool fail_closed = true;
    RhostMode rhost = RhostMode::Lax;
    std::filesystem::path config = kDefaultConfigPath;
    bool config_explicit = false;
    bool debug = false;
};

// fail=closed|open rhost=lax|strict config=PATH debug; anything else is an error.
Result<PamOptions> parse_pam_options(const std::vector<std::string>& args);

struct OpenRequest {
    std::string user;
    std::string service;
    std::string rhost; // PAM_RHOST as given, possibly empty
    std::string tty;
    pid_t leader = 0;  // the process that becomes the session (PAM's caller)
};

// Why an open failed, so the PAM shim can pick the return code.
enum class OpenFailure {
    BadUser,     // invalid or unknown user: never a session
    BadRhost,    // rhost=strict and PAM_RHOST is no address
    Enforcement, // could not enforce: fail=closed refuses, fail=open lets through
};

struct OpenError {
    OpenFailure kind;
    Error error;
};

struct OpenResult {
    bool exempt = false;          // exempt user: no session was made
    // The login came from inside this session (su, sudo -i): it stays there
    // and no session was made.
    std::optional<uint64_t> enclosing_session;
    std::optional<SessionRecord> record;
    std::vector<std::string> notes; // worth logging (e.g. rhost treated as absent)
};

struct OpenOutcome {
    std::optional<OpenResult> result;
    std::optional<OpenError> error;
};

OpenOutcome open_login_session(const OpenRequest& request, const Config& config, RhostMode rhost_mode,
                               EventSink& events);

struct CloseResult {
    std::optional<SessionRecord> closed; // nullopt: nothing to close (idempotent)
    bool processes_killed = false;       // processes were left and were killed
    bool cgroup_removed = false;
    std::vector<std::string> notes; // worth logging
};

// `id_hint`: the id open returned in this process, when there is one; 0
// when open made no session here (exempt, or inside another session): then
// close does nothing, and never closes the enclosing session.
// `user`: the PAM user; a session found by any other means than the hint
// must belong to them (a recycled pid never closes someone else's session).
Result<CloseResult> close_login_session(std::optional<uint64_t> id_hint, pid_t caller, const std::string& user,
                                        const Config& config, EventSink& events);

} // namespace authwall
