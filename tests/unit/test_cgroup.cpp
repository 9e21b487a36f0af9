#include <boost/test/unit_test.hpp>

#include "core/cgroup.h"

using namespace authwall;

BOOST_AUTO_TEST_SUITE(cgroup)

BOOST_AUTO_TEST_CASE(finds_cgroup2_in_a_hybrid_layout)
{
    const char* mountinfo =
        "25 30 0:23 / /sys rw,nosuid - sysfs sysfs rw\n"
        "35 25 0:30 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755\n"
        "36 35 0:31 / /sys/fs/cgroup/unified rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate\n"
        "37 35 0:32 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";
    auto m = parse_cgroup2_mount(mountinfo);
    BOOST_REQUIRE(m.ok());
    BOOST_TEST(m->mount_point == "/sys/fs/cgroup/unified");
    BOOST_TEST(m->root == "/");
}

BOOST_AUTO_TEST_CASE(unescapes_and_keeps_the_mount_root)
{
    auto m = parse_cgroup2_mount("40 1 0:31 /ns\\040root /mnt/cg\\040two rw - cgroup2 none rw\n");
    BOOST_REQUIRE(m.ok());
    BOOST_TEST(m->mount_point == "/mnt/cg two");
    BOOST_TEST(m->root == "/ns root");
    // Levels count from the true root: the mount's root is one level down.
    auto level = cgroup_level(*m, "/mnt/cg two/a/b");
    BOOST_REQUIRE(level.ok());
    BOOST_TEST(*level == 3);
}

BOOST_AUTO_TEST_CASE(no_cgroup2_is_a_clear_error)
{
    auto m = parse_cgroup2_mount("25 30 0:23 / /sys rw - sysfs sysfs rw\n");
    BOOST_REQUIRE(!m.ok());
    BOOST_TEST(m.error().message() ==
               "find cgroup2 mount: no cgroup2 filesystem is mounted (mount -t cgroup2 none /sys/fs/cgroup)");
}

// sshd started with `ip netns exec` sees a fresh /sys: no cgroup2, no bpffs.
BOOST_AUTO_TEST_CASE(a_mount_namespace_without_cgroup2_or_pins_is_named)
{
    const char* host = "25 30 0:23 / /sys rw - sysfs sysfs rw\n"
                       "36 35 0:31 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
                       "40 25 0:40 / /sys/fs/bpf rw - bpf bpf rw\n";
    BOOST_TEST(!mount_namespace_problem(0, "/sys/fs/bpf/authwall", std::string_view(host)));
    BOOST_TEST(!mount_namespace_problem(0, "/sys/fs/bpf", std::string_view(host)));
    // A bpffs elsewhere does not hold the pins.
    auto other = mount_namespace_problem(0, "/sys/fs/bpfx/authwall", std::string_view(host));
    BOOST_REQUIRE(other);
    BOOST_TEST(other->find("no bpffs holding /sys/fs/bpfx/authwall") != std::string::npos);
    auto netns =
        mount_namespace_problem(0, "/sys/fs/bpf/authwall", std::string_view("99 30 0:50 / /sys rw - sysfs none rw\n"));
    BOOST_REQUIRE(netns);
    BOOST_TEST(netns->find("neither cgroup2 nor the bpffs holding /sys/fs/bpf/authwall") != std::string::npos);
    BOOST_TEST(netns->find("ip netns exec") != std::string::npos);
    BOOST_TEST(netns->find("nsenter --net=") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(levels)
{
    CgroupMount m{"/sys/fs/cgroup", "/"};
    BOOST_TEST(*cgroup_level(m, "/sys/fs/cgroup/a") == 1);
    BOOST_TEST(*cgroup_level(m, "/sys/fs/cgroup/a/b/c") == 3);
    BOOST_TEST(!cgroup_level(m, "/tmp/x").ok());
}

// Where cgroup2 is mounted plainly (this machine: /sys/fs/cgroup/unified,
// or /sys/fs/cgroup), the mount found with a few stat calls is the one
// mountinfo names.
BOOST_AUTO_TEST_CASE(the_plain_mount_is_found_as_mountinfo_names_it)
{
    auto from_mountinfo = find_cgroup2_mount();
    BOOST_REQUIRE(from_mountinfo.ok());
    if (from_mountinfo->root != "/")
        return; // not a plain mount: the fast path is not taken here
    auto usual = find_cgroup2_mount(std::vector<std::filesystem::path>{});
    BOOST_REQUIRE(usual.ok());
    BOOST_TEST(usual->mount_point == from_mountinfo->mount_point);
    BOOST_TEST(usual->root == "/");
    auto below = find_cgroup2_mount({from_mountinfo->mount_point / "some" / "enforcement-root"});
    BOOST_REQUIRE(below.ok());
    BOOST_TEST(below->mount_point == from_mountinfo->mount_point);
    BOOST_TEST(below->root == "/");
    // Not on cgroup2 at all: mountinfo decides, as before.
    auto elsewhere = find_cgroup2_mount({"/tmp/not-a-cgroup"});
    BOOST_REQUIRE(elsewhere.ok());
    BOOST_TEST(elsewhere->mount_point == from_mountinfo->mount_point);
}

BOOST_AUTO_TEST_SUITE_END()
