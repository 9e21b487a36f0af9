// SPDX-License-Identifier: Apache-2.0
// Validation of what crosses the PAM trust boundary: user names and the
// remote host string (PAM_RHOST, which sshd fills from the peer address but
// other services fill from anything, including DNS names or junk).
#pragma once

#include "core/base/net.h"
#include "core/base/result.h"

#include <optional>
#include <string>
#include <string_view>

namespace authwall {

// A user name safe to use in paths, logs and cgroup names: 1-32 characters
// of [A-Za-z0-9_.-], optionally ending in '$' (machine accounts), not
// starting with '-' or '.', never "." or "..". Returns why not, or nullopt.
std::optional<std::string> username_problem(std::string_view user);

// Where the login's remote address comes from: PAM_RHOST, a non-address
// meaning none (Lax) or a refusal (Strict); or the kernel's peer of the
// login process's established TCP connection (Kernel), PAM_RHOST only
// compared with it.
enum class RhostMode { Lax, Strict, Kernel };

struct RhostResult {
    std::optional<IpAddress> address; // normalised; v4-mapped IPv6 becomes IPv4
    std::string note;                 // why there is no address (lax mode), for the log
};

// Normalises PAM_RHOST: IPv4, IPv6 (brackets and a zone id "%eth0" are
// stripped), v4-mapped IPv6. Empty means a local login (no address). A host
// name or junk is an error in strict mode and "no address" in lax mode.
Result<RhostResult> normalize_rhost(std::string_view rhost, RhostMode mode);

// rhost=kernel: the login's address is `peer`, the kernel's; PAM_RHOST is
// set by the application (and a host name when sshd resolves names), so it
// is only compared. The note says when PAM_RHOST is an address and another
// one; a name or an empty PAM_RHOST is not compared (no DNS on a login).
RhostResult rhost_from_peer(const IpAddress& peer, std::string_view pam_rhost);

// What an earlier module of the stack (SSO, OIDC, MFA) hands the session
// through the PAM environment, for a SIEM to join the authentication and
// the session: a correlation token and a short claims tag.
inline constexpr const char kAuthCorrelationVar[] = "AUTHWALL_AUTH_CORRELATION";
inline constexpr const char kAuthClaimsVar[] = "AUTHWALL_AUTH_CLAIMS";
inline constexpr size_t kAuthCorrelationMax = 64;
inline constexpr size_t kAuthClaimsMax = 128;

struct AuthTag {
    std::optional<std::string> value; // recorded as is
    std::string note;                 // why a value that was set is not recorded
};

// A value of the PAM environment as authwall records it: 1..max bytes of
// A-Z a-z 0-9 and - . _ : = + / @ , — what tokens (UUIDs, base64, JWT ids)
// and key=value,... tags need, and nothing a log line, a JSON string, a
// journal field or an nft comment must quote or escape. Anything else
// (control characters, quotes, spaces, any byte over 0x7f, hence all
// invalid UTF-8) or a longer value is rejected whole, never trimmed: a
// token cut or mended would join the wrong authentication. nullopt or empty
// is "not set". `name` names the variable in the note.
AuthTag sanitize_auth_tag(std::string_view name, const std::optional<std::string>& raw, size_t max);

// Printable form of untrusted text for logs: control and non-ASCII bytes
// become \xNN, length capped.
std::string printable(std::string_view text, size_t max = 64);

} // namespace authwall
