// SPDX-License-Identifier: Apache-2.0
// pam_authwall/systemd_scope.so: systemd's D-Bus API for pam_authwall.so,
// loaded when a login needs a transient scope (a systemd host where logind
// made no session) or a scope is stopped from another process than the one
// in it (pam/helpers.h).
#include "core/host/systemd_scope.h"
#include "pam/helpers.h"

#include <exception>

namespace authwall {

namespace {

template <class F> Status guarded(const std::string& unit, F&& f) noexcept
{
    try {
        return f();
    } catch (const std::exception& e) {
        return Error::msg("manage", unit, e.what());
    } catch (...) {
        return Error::msg("manage", unit, "internal error");
    }
}

Status start_scope(const std::string& unit, const std::string& slice, pid_t pid, const std::string& description)
{
    return guarded(unit, [&] { return start_transient_scope(unit, slice, pid, description); });
}

Status stop(const std::string& unit)
{
    return guarded(unit, [&] { return stop_unit(unit); });
}

} // namespace

} // namespace authwall

extern "C" __attribute__((visibility("default"))) const authwall::pam_helpers::SystemdScope*
authwall_pam_systemd_scope()
{
    static const authwall::pam_helpers::SystemdScope table{authwall::pam_helpers::kAbi, &authwall::start_scope,
                                                           &authwall::stop};
    return &table;
}
