// SPDX-License-Identifier: Apache-2.0
// The system calls authwall-loader makes once its setup is done (policy
// reloads, the ring buffer, logging), on top of core's daemon base. How
// this list was derived and how to regenerate it: docs/SECURITY.md
// ("Confinement of the daemons").
#pragma once

#include <string_view>

namespace authwall {

inline constexpr std::string_view kLoaderSyscalls[] = {
    "bpf",   // policy tries, generations, the ring buffer, map reads
    "rmdir", // a policy generation's leftovers in bpffs
    "fchown",
    "prctl",
};

} // namespace authwall
