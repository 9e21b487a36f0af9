// SPDX-License-Identifier: Apache-2.0
// The C++ view of the ABI must match what the BPF programs were compiled
// with: read the struct sizes from the BPF object's own BTF.
#include <boost/test/unit_test.hpp>

#include "core/base/abi.h"
#include "core/dataplane/maps.h"
#include "core/dataplane/pins.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <memory>
#include <set>
#include <string>

namespace {
struct BtfDeleter {
    void operator()(btf* b) const { btf__free(b); }
};
struct ObjectDeleter {
    void operator()(bpf_object* o) const { bpf_object__close(o); }
};

long bpf_side_size(btf* b, const char* name)
{
    int id = btf__find_by_name_kind(b, name, BTF_KIND_STRUCT);
    if (id < 0)
        return -1;
    return btf__resolve_size(b, static_cast<__u32>(id));
}
} // namespace

BOOST_AUTO_TEST_SUITE(abi_layout)

BOOST_AUTO_TEST_CASE(struct_sizes_match_the_bpf_object)
{
    std::unique_ptr<btf, BtfDeleter> b(btf__parse_elf(AUTHWALL_BPF_OBJECT, nullptr));
    BOOST_REQUIRE_MESSAGE(b, "parse BTF of " AUTHWALL_BPF_OBJECT);
    BOOST_TEST(bpf_side_size(b.get(), "aw_session") == static_cast<long>(sizeof(aw_session)));
    BOOST_TEST(bpf_side_size(b.get(), "aw_stats") == static_cast<long>(sizeof(aw_stats)));
    BOOST_TEST(bpf_side_size(b.get(), "aw_event") == static_cast<long>(sizeof(aw_event)));
    BOOST_TEST(bpf_side_size(b.get(), "aw_user") == static_cast<long>(sizeof(aw_user)));
    BOOST_TEST(bpf_side_size(b.get(), "aw_event_budget") == static_cast<long>(sizeof(aw_event_budget)));
    BOOST_TEST(bpf_side_size(b.get(), "aw_refusals") == static_cast<long>(sizeof(aw_refusals)));
    BOOST_TEST(bpf_side_size(b.get(), "aw_settings") == static_cast<long>(sizeof(aw_settings)));
    BOOST_TEST(bpf_side_size(b.get(), "aw_policy_name") == static_cast<long>(sizeof(aw_policy_name)));
    BOOST_TEST(bpf_side_size(b.get(), "aw_policy_totals") == static_cast<long>(sizeof(aw_policy_totals)));
    BOOST_TEST(bpf_side_size(b.get(), "aw_rule_val") == static_cast<long>(sizeof(aw_rule_val)));
    BOOST_TEST(bpf_side_size(b.get(), "aw_rule_key") == static_cast<long>(sizeof(aw_rule_key)));
}

// The names userspace pins, attaches and reports by are the object's own:
// every program of kProgramNames is in it and it has no other; every map of
// kMapNames is in it, and the only other maps are the programs' caches
// (kUnpinnedMaps, never pinned) and the compiler's data sections; every hook a counter or
// an event names is a program.
BOOST_AUTO_TEST_CASE(name_lists_match_the_bpf_object)
{
    std::unique_ptr<bpf_object, ObjectDeleter> obj(bpf_object__open_file(AUTHWALL_BPF_OBJECT, nullptr));
    BOOST_REQUIRE_MESSAGE(obj, "open " AUTHWALL_BPF_OBJECT);
    std::set<std::string> programs, maps;
    bpf_program* prog = nullptr;
    bpf_object__for_each_program(prog, obj.get()) programs.insert(bpf_program__name(prog));
    bpf_map* map = nullptr;
    bpf_object__for_each_map(map, obj.get()) maps.insert(bpf_map__name(map));

    std::set<std::string> listed(authwall::kProgramNames.begin(), authwall::kProgramNames.end());
    BOOST_TEST(programs == listed, boost::test_tools::per_element());
    BOOST_TEST(listed.count(std::string(authwall::kLsmProgramName)) == 1u);
    for (auto name : authwall::kMapNames) {
        BOOST_TEST(maps.count(std::string(name)) == 1u, name);
        maps.erase(std::string(name));
    }
    for (const auto& other : maps)
        BOOST_TEST((authwall::is_unpinned_map(other) || other.find('.') != std::string::npos),
                   "unlisted map " << other);
    for (unsigned h = 0; h < AW_HOOK_COUNT; ++h)
        BOOST_TEST(programs.count(std::string("aw_") + authwall::hook_name(h)) == 1u, authwall::hook_name(h));
}

BOOST_AUTO_TEST_SUITE_END()
