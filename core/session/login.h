// SPDX-License-Identifier: Apache-2.0
// Opening and closing a login session — the logic of pam_authwall.so, kept
// here so tests drive it without PAM. The order of operations is the
// contract:
//   open:  validate user and rhost (rhost=kernel: the peer of the leader's
//          TCP connection, core/host/tcp_peer.h; none found is an
//          enforcement failure once the login is neither exempt nor
//          user-only) → resolve the login's policy (the index
//          the loader published; unmatched = "deny" refuses) → arm the user
//          layer (the user's own policy, by uid, kept after logout) → for a
//          user-only service (user manager, cron, at) stop here → otherwise
//          the session cgroup: logind's session-N.scope when pam_systemd put
//          the leader there (nothing moves), else a scope or directory of
//          ours → the session service's open (core/session/service.h: the
//          entry, then the leader moved into a directory of ours, the
//          record, the mirror, the event). Any failure after the cgroup
//          exists is rolled back; the user layer stays armed.
//   close: find the session (hint, own cgroup, or the record of the leader)
//          → the session service's end: revoke it in the map (network cut
//          at once), then move the caller back out, kill what is left,
//          remove the cgroup → entry, record → event. Idempotent; needs
//          nothing from the open call's process.
#pragma once

#include "core/host/cgroup.h"
#include "core/policy/config.h"
#include "core/base/identity.h"
#include "core/base/result.h"
#include "core/session/events.h"
#include "core/session/extras.h"
#include "core/session/record.h"

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace authwall {

struct OpenRequest {
    std::string user;
    std::string service;
    std::string rhost; // PAM_RHOST as given, possibly empty
    std::string tty;
    pid_t leader = 0; // the process that becomes the session (PAM's caller)
    // logind's session id, as pam_systemd (earlier in the stack) put it in
    // the PAM environment (XDG_SESSION_ID); empty without logind. Trusted
    // only when the leader's cgroup is that session's scope.
    std::string logind_session;
    // What earlier modules of the stack put in the PAM environment
    // (AUTHWALL_AUTH_CORRELATION, AUTHWALL_AUTH_CLAIMS), raw: nullopt when
    // unset. Sanitised by the open (sanitize_auth_tag); a rejected value is
    // not recorded and the open says why in its notes.
    std::optional<std::string> auth_correlation{};
    std::optional<std::string> auth_claims{};
    // The module line says user_only (or the service is one of [users]
    // user_only_services): arm the user layer, make no login session.
    bool user_only = false;
};

// Why an open failed, so the PAM shim can pick the return code.
enum class OpenFailure {
    BadUser,     // invalid or unknown user: never a session
    BadRhost,    // rhost=strict and PAM_RHOST is no address
    Refused,     // no policy claims the login and unmatched = "deny"
    Enforcement, // could not enforce: fail=closed refuses, fail=open lets through
};

struct OpenError {
    OpenFailure kind;
    Error error;
};

struct OpenResult {
    bool exempt = false; // exempt user: no session was made
    // The login came from inside this session (su, sudo -i): it stays there
    // and no session was made.
    std::optional<uint64_t> enclosing_session;
    std::optional<SessionRecord> record;
    // The user layer as this open left it: the policy the user is held to
    // wherever their processes run, or nullopt when the user is not
    // confined by it (exempt, uid outside [users] min_uid..max_uid, layer off,
    // or no policy claims the user and unmatched = "pass").
    std::optional<std::string> user_policy;
    // A user_only stack or a service of [users] user_only_services (the
    // user manager, cron, at, sudo): the user layer was armed and no login
    // session made.
    bool user_only = false;
    // The cgroup2 mount this open found, when it made a session: its close
    // in this process need not read mountinfo again (CloseHint).
    std::optional<CgroupMount> cgroup_mount;
    std::vector<std::string> notes; // worth logging (e.g. rhost treated as absent)
};

struct OpenOutcome {
    std::optional<OpenResult> result;
    std::optional<OpenError> error;
};

OpenOutcome open_login_session(const OpenRequest& request, const Config& config, RhostMode rhost_mode,
                               EventSink& events, LoginExtras& extras);
// The same with linked_login_extras() (authwall_session_extras).
OpenOutcome open_login_session(const OpenRequest& request, const Config& config, RhostMode rhost_mode,
                               EventSink& events);

struct CloseResult {
    std::optional<SessionRecord> closed; // nullopt: nothing to close (idempotent)
    bool processes_killed = false;       // processes were left and were killed
    bool cgroup_removed = false;
    std::vector<std::string> notes; // worth logging
};

// What the open in this process left for its close (the PAM module keeps
// it with pam_set_data); empty when close runs in another process.
struct CloseHint {
    // The session open made here; 0 when it made none (exempt, user-only,
    // or inside another session): close then does nothing, and never closes
    // the enclosing session.
    std::optional<uint64_t> session;
    // The cgroup2 mount open found: not read again.
    std::optional<CgroupMount> mount;
};

// Without a session in the hint, close finds it from the caller's cgroup or
// the records; `user` is the PAM user, and a session found so must belong
// to them (a recycled pid never closes someone else's session).
Result<CloseResult> close_login_session(const CloseHint& hint, pid_t caller, const std::string& user,
                                        const Config& config, EventSink& events, LoginExtras& extras);
// The same with linked_login_extras() (authwall_session_extras).
Result<CloseResult> close_login_session(const CloseHint& hint, pid_t caller, const std::string& user,
                                        const Config& config, EventSink& events);

} // namespace authwall
