// The C++ view of the ABI must match what the BPF programs were compiled
// with: read the struct sizes from the BPF object's own BTF.
#include <boost/test/unit_test.hpp>

#include "core/dataplane/abi.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <memory>
#include <string>

namespace {
struct BtfDeleter {
    void operator()(btf* b) const { btf__free(b); }
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
    BOOST_TEST(bpf_side_size(b.get(), "aw_settings") == static_cast<long>(sizeof(aw_settings)));
    BOOST_TEST(bpf_side_size(b.get(), "aw_policy_name") == static_cast<long>(sizeof(aw_policy_name)));
    BOOST_TEST(bpf_side_size(b.get(), "aw_rule_val") == static_cast<long>(sizeof(aw_rule_val)));
    BOOST_TEST(bpf_side_size(b.get(), "aw_rule_key") == static_cast<long>(sizeof(aw_rule_key)));
}

BOOST_AUTO_TEST_SUITE_END()
