// SPDX-License-Identifier: Apache-2.0
// pam_authwall.so: a thin PAM session module over core/session/login.
//   session required pam_authwall.so [fail=closed|open] [rhost=lax|strict|kernel] [config=PATH] [user_only] [debug]
// It links authwall_session only (bare bpf(2) calls and the C++ runtime): the nft mirror
// and systemd's D-Bus API come from helpers beside it, loaded when a login
// needs them (pam/lazy_extras.h).
// No exception crosses the PAM boundary. No seccomp filter is installed: this
// code runs inside the PAM host process (sshd, login), which forks the user's
// session after open_session; a filter would be inherited by the session and
// a kill-on-violation filter would kill the login (docs/SECURITY.md).
#include "core/policy/config.h"
#include "core/session/login.h"
#include "pam/options.h"
#include "pam/lazy_extras.h"

#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <syslog.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

using namespace authwall;

namespace {

constexpr const char* kDataKey = "authwall_close_hint";

std::string item(pam_handle_t* pamh, int type)
{
    const void* value = nullptr;
    if (pam_get_item(pamh, type, &value) != PAM_SUCCESS || !value)
        return {};
    return static_cast<const char*>(value);
}

// What open leaves for close in this process (CloseHint): the session's id
// and the cgroup2 mount.
void free_hint(pam_handle_t*, void* data, int)
{
    delete static_cast<CloseHint*>(data);
}

// Settings: the configuration file (config= argument, else the default if it
// exists), then AUTHWALL_PIN_DIR / AUTHWALL_RUN_DIR for tests are *not*
// honoured here: the PAM host's environment is not ours to trust.
Result<Config> load_settings(const PamOptions& options)
{
    ConfigLoad load = load_config(options.config, options.config_explicit);
    if (!load.ok())
        return Error::msg("read configuration", options.config.string(), load.errors.front().str());
    return load.config;
}

OpenRequest login_request(pam_handle_t* pamh, const PamOptions& options)
{
    OpenRequest req;
    req.user = item(pamh, PAM_USER);
    req.service = item(pamh, PAM_SERVICE);
    req.rhost = item(pamh, PAM_RHOST);
    req.tty = item(pamh, PAM_TTY);
    req.leader = getpid();
    // Set by pam_systemd earlier in the stack (the PAM environment, not the
    // process's): checked against the leader's cgroup before it is used.
    if (const char* sid = pam_getenv(pamh, "XDG_SESSION_ID"))
        req.logind_session = sid;
    // What an SSO or MFA module earlier in the stack hands the session for
    // a SIEM to join on, through the PAM environment too (pam_putenv): the
    // process environment is the login service's, not the stack's.
    // Sanitised by the open.
    if (const char* token = pam_getenv(pamh, kAuthCorrelationVar))
        req.auth_correlation = token;
    if (const char* claims = pam_getenv(pamh, kAuthClaimsVar))
        req.auth_claims = claims;
    req.user_only = options.user_only;
    return req;
}

// Logs what an open that succeeded has to say, and keeps what its close
// needs (pam_set_data).
int keep_for_close(pam_handle_t* pamh, const PamOptions& options, const OpenResult& result, const std::string& user)
{
    for (const auto& note : result.notes)
        pam_syslog(pamh, LOG_WARNING, "%s", note.c_str());
    if (options.debug && result.user_policy)
        pam_syslog(pamh, LOG_DEBUG, "user layer of %s: policy %s", user.c_str(), result.user_policy->c_str());
    if (result.exempt || result.enclosing_session || result.user_only) {
        // Close must know open made nothing here: with `su` inside a
        // session, the enclosing session is the caller's own.
        pam_set_data(pamh, kDataKey, new CloseHint{0, std::nullopt}, free_hint);
        if (options.debug && result.exempt)
            pam_syslog(pamh, LOG_DEBUG, "user %s is exempt: no session", user.c_str());
        return PAM_SUCCESS;
    }
    const SessionRecord& rec = *result.record;
    if (pam_set_data(pamh, kDataKey, new CloseHint{rec.id, result.cgroup_mount}, free_hint) != PAM_SUCCESS)
        pam_syslog(pamh, LOG_WARNING, "cannot keep the session id; close will find it from the cgroup");
    if (options.debug)
        pam_syslog(pamh, LOG_DEBUG, "session %llu opened for %s from %s with policy %s in %s",
                   static_cast<unsigned long long>(rec.id), rec.user.c_str(), rec.rhost.value_or("-").c_str(),
                   rec.policy.c_str(), rec.cgroup.c_str());
    return PAM_SUCCESS;
}

int open_session(pam_handle_t* pamh, int argc, const char** argv)
{
    auto options = parse_pam_options(std::vector<std::string>(argv, argv + argc));
    if (!options) {
        pam_syslog(pamh, LOG_ERR, "%s", options.error().message().c_str());
        return PAM_SERVICE_ERR;
    }
    auto enforcement_failed = [&](const Error& e) {
        if (options->fail_closed) {
            pam_syslog(pamh, LOG_ERR, "session refused (fail=closed): %s", e.message().c_str());
            return PAM_SESSION_ERR;
        }
        pam_syslog(pamh, LOG_CRIT, "SESSION NOT ENFORCED (fail=open): %s", e.message().c_str());
        return PAM_SUCCESS;
    };
    // A configuration that cannot be read is refused as fail= says, closed
    // when the line does not say: [pam] fail is in the file we could not read.
    auto config = load_settings(*options);
    if (!config)
        return enforcement_failed(config.error());
    if (!options->fail_explicit)
        options->fail_closed = config->pam_fail == PamFailMode::Closed;

    OpenRequest req = login_request(pamh, *options);
    JournalSink events("pam_authwall", config->event_log);
    LazyLoginExtras extras;
    OpenOutcome out = open_login_session(req, *config, options->rhost, events, extras);
    if (out.error) {
        switch (out.error->kind) {
        case OpenFailure::BadUser:
            pam_syslog(pamh, LOG_ERR, "%s", out.error->error.message().c_str());
            return PAM_USER_UNKNOWN;
        case OpenFailure::BadRhost:
        case OpenFailure::Refused:
            pam_syslog(pamh, LOG_ERR, "session refused: %s", out.error->error.message().c_str());
            return PAM_PERM_DENIED;
        case OpenFailure::Enforcement:
            return enforcement_failed(out.error->error);
        }
    }
    return keep_for_close(pamh, *options, *out.result, req.user);
}

int close_session(pam_handle_t* pamh, int argc, const char** argv)
{
    auto options = parse_pam_options(std::vector<std::string>(argv, argv + argc));
    if (!options) {
        pam_syslog(pamh, LOG_ERR, "%s", options.error().message().c_str());
        return PAM_SERVICE_ERR;
    }
    auto config = load_settings(*options);
    if (!config) {
        pam_syslog(pamh, LOG_ERR, "close: %s", config.error().message().c_str());
        return PAM_SESSION_ERR;
    }
    CloseHint hint;
    const void* data = nullptr;
    if (pam_get_data(pamh, kDataKey, &data) == PAM_SUCCESS && data)
        hint = *static_cast<const CloseHint*>(data);
    JournalSink events("pam_authwall", config->event_log);
    LazyLoginExtras extras;
    auto result = close_login_session(hint, getpid(), item(pamh, PAM_USER), *config, events, extras);
    if (!result) {
        pam_syslog(pamh, LOG_ERR, "close: %s", result.error().message().c_str());
        return PAM_SESSION_ERR;
    }
    for (const auto& note : result->notes)
        pam_syslog(pamh, LOG_WARNING, "%s", note.c_str());
    if (options->debug && result->closed)
        pam_syslog(pamh, LOG_DEBUG, "session %llu closed", static_cast<unsigned long long>(result->closed->id));
    return PAM_SUCCESS;
}

} // namespace

extern "C" {

__attribute__((visibility("default"))) PAM_EXTERN int pam_sm_open_session(pam_handle_t* pamh, int /*flags*/, int argc,
                                                                          const char** argv)
{
    try {
        return open_session(pamh, argc, argv);
    } catch (const std::exception& e) {
        pam_syslog(pamh, LOG_CRIT, "internal error, session refused: %s", e.what());
    } catch (...) {
        pam_syslog(pamh, LOG_CRIT, "internal error, session refused");
    }
    return PAM_SESSION_ERR;
}

__attribute__((visibility("default"))) PAM_EXTERN int pam_sm_close_session(pam_handle_t* pamh, int /*flags*/, int argc,
                                                                           const char** argv)
{
    try {
        return close_session(pamh, argc, argv);
    } catch (const std::exception& e) {
        pam_syslog(pamh, LOG_CRIT, "internal error while closing: %s", e.what());
    } catch (...) {
        pam_syslog(pamh, LOG_CRIT, "internal error while closing");
    }
    return PAM_SESSION_ERR;
}

} // extern "C"
