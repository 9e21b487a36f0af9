// SPDX-License-Identifier: Apache-2.0
// Privileged integration tests: real BPF programs, real cgroups, real
// network namespaces. Exits 77 (skipped, reason printed) without root or a
// kernel feature, or fails when AUTHWALL_REQUIRE_PRIVILEGED=1.
#define BOOST_TEST_MODULE authwall_privileged
#define BOOST_TEST_NO_MAIN
#include <boost/test/unit_test.hpp>

#include "tests/support.h"

int main(int argc, char* argv[])
{
    authwall::test::require_privileged_or_exit(argv[0]);
    return boost::unit_test::unit_test_main(&init_unit_test, argc, argv);
}
