// SPDX-License-Identifier: Apache-2.0
// The system calls authwall-cgroupd makes once its setup is done (reaping,
// expiring, enrolling, the nft mirror), on top of core's daemon base. How
// this list was derived and how to regenerate it: docs/SECURITY.md
// ("Confinement of the daemons").
#pragma once

#include <string_view>

namespace authwall {

// clang-format off
inline constexpr std::string_view kCgroupdSyscalls[] = {
    "bpf",                                    // session entries, enrollment
    "rmdir",                                  // a dead login cgroup
    "kill",                                   // what is left in an ended session
    "name_to_handle_at", "open_by_handle_at", // cgroup id <-> path
    "fchown",
};
// clang-format on

} // namespace authwall
