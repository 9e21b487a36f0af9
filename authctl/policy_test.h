// SPDX-License-Identifier: Apache-2.0
// authctl policy test (policy_test.cpp).
#pragma once

#include "authctl/context.h"

#include <string>
#include <vector>

namespace authctl {

struct PolicyTestArgs {
    std::string user, service, rhost;
    std::vector<std::string> groups;
    std::vector<std::string> to; // ADDRESS [PROTOCOL [PORT]]
    std::string direction = "egress";
    std::string path; // policy file or directory; empty: policy_dir
    bool live = false;
    bool json = false;
};

int cmd_policy_test(const Context& ctx, const PolicyTestArgs& args);

} // namespace authctl
