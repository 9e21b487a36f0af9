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

enum class RhostMode { Lax, Strict };

struct RhostResult {
    std::optional<IpAddress> address; // normalised; v4-mapped IPv6 becomes IPv4
    std::string note;                 // why there is no address (lax mode), for the log
};

// Normalises PAM_RHOST: IPv4, IPv6 (brackets and a zone id "%eth0" are
// stripped), v4-mapped IPv6. Empty means a local login (no address). A host
// name or junk is an error in strict mode and "no address" in lax mode.
Result<RhostResult> normalize_rhost(std::string_view rhost, RhostMode mode);

// Printable form of untrusted text for logs: control and non-ASCII bytes
// become \xNN, length capped.
std::string printable(std::string_view text, size_t max = 64);

} // namespace authwall
