// SPDX-License-Identifier: Apache-2.0
// The data plane's packet parser and packet decision, run with
// BPF_PROG_TEST_RUN on crafted packets: the very code of bpf/lib, compiled
// into test entry points (tests/bpf/datapath_test.bpf.c) that are loaded
// with private pins and never attached to anything.
#include <boost/test/unit_test.hpp>

#include "core/dataplane/pins.h"
#include "datapath_test.skel.h"
#include "tests/support.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <netinet/in.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

using namespace authwall;
using namespace authwall::test;
namespace fs = std::filesystem;

namespace {

// Mirrors of the test object's result records (tests/bpf/datapath_test.bpf.c).
struct Flow {
    uint8_t addr[16];
    uint16_t port;
    uint8_t proto;
    uint8_t family;
};
struct ParseResult {
    int32_t parsed;
    uint8_t is_tcp, is_datagram, tcp_flags, proto;
    Flow src, dst;
};
struct DecideCase {
    uint64_t session_id;
    uint32_t uid;
    uint32_t ingress;
};
struct DecideResult {
    int32_t parsed;
    uint32_t judged;
    uint32_t verdict, reason, policy_id, layer, rule, note;
};

// The counting of a socket's memory (tests/bpf/datapath_test.bpf.c,
// bpf/lib/sock_cache.bpf.h): what t_count, t_claim read.
struct CountCase {
    uint64_t word = 0;
    uint64_t session = 0;
    uint64_t generation = 0;
    uint32_t state = 0;
    uint32_t ingress = 0;
};
// A datagram flow in a socket's memory (struct cached_flow) and the case
// t_remember_flow and t_flow_allowed read.
struct CachedFlow {
    uint64_t generation = 0;
    uint8_t addr[16] = {};
    uint16_t port = 0;
    uint16_t peer_port = 0;
    uint8_t proto = 0;
    uint8_t loopback = 0;
    uint16_t reserved = 0;
};
struct FlowCase {
    CachedFlow flow;
    uint32_t ingress = 0;
    uint32_t found = 0;
};
static_assert(sizeof(FlowCase) == 40);
constexpr size_t kFlowSeqOffset = 12; // struct sock_state: word (8), lock (4), flow_seq
// bpf/lib/decision_cache.bpf.h's subject key and flow, and t_remember's and
// t_ask's case (tests/bpf/datapath_test.bpf.c).
struct SubjectKey {
    uint64_t generation;
    uint64_t cgroup_id;
    uint32_t uid;
    uint32_t reserved;
};
struct RememberedFlow {
    uint8_t dir;
    uint8_t proto;
    uint16_t port;
    uint32_t reserved;
    uint8_t addr[16];
};
struct AskCase {
    SubjectKey key;
    RememberedFlow flow;
    uint32_t outside;
    uint32_t found;
};
static_assert(sizeof(AskCase) == 56);
constexpr uint32_t kRememberedNone = 0, kRememberedPass = 1, kRememberedRefuse = 2, kRememberedAllowed = 3;

constexpr uint64_t kConfined = 3, kCounted = 1u << 3; // SOCK_CONFINED, SOCK_COUNTED
constexpr uint32_t kEstablished = 1, kFinWait1 = 4;   // BPF_TCP_*
constexpr uint64_t kGeneration = (1ULL << 63) | 0x5a5a5a00;

constexpr uint8_t kIcmp = 1, kIcmpv6 = 58;
constexpr uint8_t kTcp = 6, kUdp = 17, kHopOpts = 0, kRouting = 43, kFragment = 44, kDstOpts = 60, kAh = 51;

// Builds packets byte by byte: an Ethernet header, then what the test adds.
class Packet {
  public:
    explicit Packet(uint16_t ethertype)
    {
        bytes_.assign(12, 0);
        u16(ethertype);
    }
    Packet& u8(uint8_t v)
    {
        bytes_.push_back(v);
        return *this;
    }
    Packet& u16(uint16_t v) { return u8(static_cast<uint8_t>(v >> 8)).u8(static_cast<uint8_t>(v)); }
    Packet& addr4(const char* a)
    {
        in_addr x{};
        inet_pton(AF_INET, a, &x);
        auto* b = reinterpret_cast<uint8_t*>(&x);
        bytes_.insert(bytes_.end(), b, b + 4);
        return *this;
    }
    Packet& addr6(const char* a)
    {
        in6_addr x{};
        inet_pton(AF_INET6, a, &x);
        bytes_.insert(bytes_.end(), x.s6_addr, x.s6_addr + 16);
        return *this;
    }
    Packet& zeros(size_t n)
    {
        bytes_.insert(bytes_.end(), n, 0);
        return *this;
    }
    // IPv4 header, 20 bytes; `frag` is the flags+offset field.
    Packet& ipv4(uint8_t proto, const char* src, const char* dst, uint16_t frag = 0, uint8_t ihl = 5)
    {
        u8(static_cast<uint8_t>(0x40 | ihl)).u8(0).u16(0).u16(0).u16(frag).u8(64).u8(proto).u16(0);
        return addr4(src).addr4(dst);
    }
    Packet& ipv6(uint8_t next, const char* src, const char* dst)
    {
        u8(0x60).u8(0).u16(0).u16(0).u8(next).u8(64);
        return addr6(src).addr6(dst);
    }
    // An 8-byte IPv6 extension header (hop-by-hop, routing, destination).
    Packet& ext(uint8_t next) { return u8(next).u8(0).zeros(6); }
    Packet& fragment(uint8_t next, uint16_t offset_units) { return u8(next).u8(0).u16(offset_units << 3).zeros(4); }
    Packet& ports(uint16_t sport, uint16_t dport) { return u16(sport).u16(dport); }
    Packet& tcp(uint16_t sport, uint16_t dport, uint8_t flags)
    {
        ports(sport, dport).zeros(8).u8(0x50).u8(flags).zeros(6);
        return *this;
    }
    Packet& udp(uint16_t sport, uint16_t dport) { return ports(sport, dport).u16(8).u16(0); }
    // An ICMP or ICMPv6 header: type, code 0, checksum, 4 bytes of rest.
    Packet& icmp(uint8_t type) { return u8(type).u8(0).u16(0).zeros(4); }
    std::vector<uint8_t>& bytes() { return bytes_; }

  private:
    std::vector<uint8_t> bytes_;
};

constexpr uint16_t kIPv4 = 0x0800, kIPv6 = 0x86DD;
constexpr uint8_t kSyn = 0x02, kAck = 0x10;

// Some interface that is not loopback (ingress decisions treat lo apart).
int non_loopback_ifindex()
{
    int found = 0;
    if (auto* list = if_nameindex()) {
        for (auto* i = list; i->if_index; ++i)
            if (std::strcmp(i->if_name, "lo") != 0 && !found)
                found = static_cast<int>(i->if_index);
        if_freenameindex(list);
    }
    return found;
}

// The test object loaded with its shared maps pinned under a private pin
// directory, so PinnedMaps (and so the policy compiler's install path) can
// fill them as in production.
class TestObject {
  public:
    TestObject() : pin_dir_(fs::path("/sys/fs/bpf") / ("authwall-bpftest-" + unique_suffix()))
    {
        fs::create_directories(pin_dir_ / "maps");
        skel_.reset(datapath_test__open());
        BOOST_REQUIRE(skel_);
        bpf_map* map = nullptr;
        bpf_object__for_each_map(map, skel_->obj)
        {
            std::string name = bpf_map__name(map);
            for (auto shared : kMapNames)
                if (name == shared)
                    BOOST_REQUIRE_EQUAL(bpf_map__set_pin_path(map, map_pin_path(pin_dir_, name).c_str()), 0);
        }
        BOOST_REQUIRE_MESSAGE(datapath_test__load(skel_.get()) == 0, "load the test programs");
        auto maps = PinnedMaps::open(pin_dir_);
        BOOST_REQUIRE_MESSAGE(maps.ok(), (maps.ok() ? "" : maps.error().message()));
        maps_.emplace(std::move(maps).value());
    }
    ~TestObject()
    {
        maps_.reset();
        skel_.reset();
        std::error_code ec;
        fs::remove_all(pin_dir_, ec);
    }
    TestObject(const TestObject&) = delete;
    TestObject& operator=(const TestObject&) = delete;

    PinnedMaps& maps() { return *maps_; }

    void install(const std::string& toml)
    {
        auto known = maps_->policy_ids();
        BOOST_REQUIRE(known.ok());
        auto compiled = compile_policies(parse_policies_or_fail(toml), Fallback{}, *known);
        BOOST_REQUIRE(compiled.ok());
        BOOST_REQUIRE(maps_->install_policies(*compiled).ok());
        ids_ = compiled->ids;
    }
    uint32_t id(const std::string& policy) const { return ids_.at(policy); }

    int run(bpf_program* prog, Packet& p, int ifindex = 0)
    {
        __sk_buff ctx{};
        ctx.ifindex = static_cast<uint32_t>(ifindex);
        LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = p.bytes().data(),
                    .data_size_in = static_cast<uint32_t>(p.bytes().size()), .ctx_in = ifindex ? &ctx : nullptr,
                    .ctx_size_in = ifindex ? static_cast<uint32_t>(sizeof(ctx)) : 0U);
        int err = bpf_prog_test_run_opts(bpf_program__fd(prog), &opts);
        BOOST_REQUIRE_MESSAGE(err == 0, "BPF_PROG_TEST_RUN: " + std::string(std::strerror(-err)));
        return static_cast<int>(opts.retval);
    }

    ParseResult parse(Packet& p)
    {
        run(skel_->progs.t_parse, p);
        ParseResult r{};
        uint32_t zero = 0;
        BOOST_REQUIRE_EQUAL(bpf_map_lookup_elem(bpf_map__fd(skel_->maps.parse_out), &zero, &r), 0);
        return r;
    }

    DecideResult decide(const DecideCase& c, Packet& p, int ifindex = 0)
    {
        uint32_t zero = 0;
        BOOST_REQUIRE_EQUAL(bpf_map_update_elem(bpf_map__fd(skel_->maps.decide_in), &zero, &c, BPF_ANY), 0);
        run(skel_->progs.t_decide, p, ifindex);
        DecideResult r{};
        BOOST_REQUIRE_EQUAL(bpf_map_lookup_elem(bpf_map__fd(skel_->maps.decide_out), &zero, &r), 0);
        return r;
    }

    // The syscall hooks' memory: remember a flow allowed (outside == 0) or
    // an outside verdict + 1; ask what is remembered.
    void remember(const AskCase& c, Packet& p)
    {
        uint32_t zero = 0;
        BOOST_REQUIRE_EQUAL(bpf_map_update_elem(bpf_map__fd(skel_->maps.ask), &zero, &c, BPF_ANY), 0);
        BOOST_REQUIRE_EQUAL(run(skel_->progs.t_remember, p), 1);
    }
    uint32_t remembered(const AskCase& c, Packet& p)
    {
        uint32_t zero = 0;
        BOOST_REQUIRE_EQUAL(bpf_map_update_elem(bpf_map__fd(skel_->maps.ask), &zero, &c, BPF_ANY), 0);
        BOOST_REQUIRE_EQUAL(run(skel_->progs.t_ask, p), 1);
        AskCase out{};
        BOOST_REQUIRE_EQUAL(bpf_map_lookup_elem(bpf_map__fd(skel_->maps.ask), &zero, &out), 0);
        return out.found;
    }

    // One packet counted in the test's socket memory, as the fast path does.
    void count(const CountCase& c, Packet& p)
    {
        uint32_t zero = 0;
        BOOST_REQUIRE_EQUAL(bpf_map_update_elem(bpf_map__fd(skel_->maps.count_in), &zero, &c, BPF_ANY), 0);
        BOOST_REQUIRE_EQUAL(run(skel_->progs.t_count, p), 1);
    }
    // The socket memory remembered for c.session at c.generation.
    void claim(const CountCase& c, Packet& p)
    {
        uint32_t zero = 0;
        BOOST_REQUIRE_EQUAL(bpf_map_update_elem(bpf_map__fd(skel_->maps.count_in), &zero, &c, BPF_ANY), 0);
        BOOST_REQUIRE_EQUAL(run(skel_->progs.t_claim, p), 1);
    }
    // What closing the socket does.
    void close_socket(Packet& p) { BOOST_REQUIRE_EQUAL(run(skel_->progs.t_fold, p), 1); }
    // The datagram flow remembered in the test's socket memory, as the full
    // path does after an allow.
    void remember_flow(const FlowCase& c, Packet& p)
    {
        uint32_t zero = 0;
        BOOST_REQUIRE_EQUAL(bpf_map_update_elem(bpf_map__fd(skel_->maps.flow_in), &zero, &c, BPF_ANY), 0);
        BOOST_REQUIRE_EQUAL(run(skel_->progs.t_remember_flow, p), 1);
    }
    // Whether the datagram fast path finds c.flow remembered.
    bool flow_allowed(const FlowCase& c, Packet& p)
    {
        uint32_t zero = 0;
        BOOST_REQUIRE_EQUAL(bpf_map_update_elem(bpf_map__fd(skel_->maps.flow_in), &zero, &c, BPF_ANY), 0);
        BOOST_REQUIRE_EQUAL(run(skel_->progs.t_flow_allowed, p), 1);
        FlowCase out{};
        BOOST_REQUIRE_EQUAL(bpf_map_lookup_elem(bpf_map__fd(skel_->maps.flow_in), &zero, &out), 0);
        return out.found != 0;
    }
    // The socket memory's subject word and its flows' sequence count.
    uint64_t word() { return memory_field<uint64_t>(0); }
    uint32_t flow_seq() { return memory_field<uint32_t>(kFlowSeqOffset); }
    // A sequence count as a writer leaves it (odd: halfway through a copy).
    void set_flow_seq(uint32_t seq)
    {
        std::vector<uint8_t> v = memory();
        std::memcpy(v.data() + kFlowSeqOffset, &seq, sizeof(seq));
        uint32_t zero = 0;
        BOOST_REQUIRE_EQUAL(bpf_map_update_elem(bpf_map__fd(skel_->maps.socket_memory), &zero, v.data(), BPF_ANY), 0);
    }
    SessionStats stats(uint64_t session)
    {
        auto st = maps_->session_stats(session);
        BOOST_REQUIRE(st.ok());
        return *st;
    }

  private:
    std::vector<uint8_t> memory()
    {
        std::vector<uint8_t> v(bpf_map__value_size(skel_->maps.socket_memory));
        uint32_t zero = 0;
        BOOST_REQUIRE_EQUAL(bpf_map_lookup_elem(bpf_map__fd(skel_->maps.socket_memory), &zero, v.data()), 0);
        return v;
    }
    template <typename T> T memory_field(size_t offset)
    {
        std::vector<uint8_t> v = memory();
        T x{};
        std::memcpy(&x, v.data() + offset, sizeof(x));
        return x;
    }
    struct Destroy {
        void operator()(datapath_test* s) const { datapath_test__destroy(s); }
    };
    fs::path pin_dir_;
    std::unique_ptr<datapath_test, Destroy> skel_;
    std::optional<PinnedMaps> maps_;
    std::map<std::string, uint32_t> ids_;
};

uint16_t port_of(const Flow& f)
{
    return ntohs(f.port);
}

} // namespace

BOOST_AUTO_TEST_SUITE(bpf_programs)

BOOST_AUTO_TEST_CASE(parser_reads_ipv4_tcp_and_udp)
{
    TestObject t;
    Packet syn(kIPv4);
    syn.ipv4(kTcp, "192.0.2.1", "198.51.100.7").tcp(40000, 22, kSyn);
    auto r = t.parse(syn);
    BOOST_TEST(r.parsed == 1);
    BOOST_TEST(r.is_tcp == 1);
    BOOST_TEST(r.tcp_flags == kSyn);
    BOOST_TEST(port_of(r.src) == 40000);
    BOOST_TEST(port_of(r.dst) == 22);
    BOOST_TEST(r.dst.addr[10] == 0xff); // v4-mapped
    BOOST_TEST(r.dst.addr[15] == 7);

    Packet udp(kIPv4);
    udp.ipv4(kUdp, "192.0.2.1", "198.51.100.7").udp(5353, 53);
    r = t.parse(udp);
    BOOST_TEST(r.parsed == 1);
    BOOST_TEST(r.is_datagram == 1);
    BOOST_TEST(port_of(r.dst) == 53);
}

BOOST_AUTO_TEST_CASE(parser_refuses_what_it_cannot_read)
{
    TestObject t;
    // (BPF_PROG_TEST_RUN itself refuses an IPv4 packet shorter than its
    // fixed header, so "cut" here means cut after it.)
    Packet cut(kIPv4); // the header claims 60 bytes of options, 4 follow
    cut.ipv4(kTcp, "192.0.2.1", "198.51.100.7", 0, 15).ports(1, 22);
    BOOST_TEST(t.parse(cut).parsed == 0);

    Packet short_ihl(kIPv4);
    short_ihl.ipv4(kTcp, "192.0.2.1", "198.51.100.7", 0, 4).tcp(1, 22, kSyn);
    BOOST_TEST(t.parse(short_ihl).parsed == 0);

    Packet no_ports(kIPv4); // a TCP header cut before its ports
    no_ports.ipv4(kTcp, "192.0.2.1", "198.51.100.7").u8(0);
    BOOST_TEST(t.parse(no_ports).parsed == 0);

    Packet later_fragment(kIPv4); // offset 185 x 8 bytes: no transport header
    later_fragment.ipv4(kUdp, "192.0.2.1", "198.51.100.7", 185).udp(1, 53);
    BOOST_TEST(t.parse(later_fragment).parsed == 0);

    Packet first_fragment(kIPv4); // more-fragments set, offset 0: readable
    first_fragment.ipv4(kUdp, "192.0.2.1", "198.51.100.7", 0x2000).udp(1, 53);
    BOOST_TEST(t.parse(first_fragment).parsed == 1);

    Packet arp(0x0806);
    arp.zeros(28);
    BOOST_TEST(t.parse(arp).parsed == 0);
}

BOOST_AUTO_TEST_CASE(parser_walks_ipv6_extension_chains)
{
    TestObject t;
    Packet chain(kIPv6);
    chain.ipv6(kHopOpts, "2001:db8::1", "2001:db8::2")
        .ext(kRouting)
        .ext(kDstOpts)
        .ext(kAh)
        .u8(kTcp) // AH: next header, length 1 = (1 + 2) x 4 bytes
        .u8(1)
        .zeros(10)
        .tcp(50000, 443, kSyn);
    auto r = t.parse(chain);
    BOOST_TEST(r.parsed == 1);
    BOOST_TEST(r.proto == kTcp);
    BOOST_TEST(port_of(r.dst) == 443);
    BOOST_TEST(r.tcp_flags == kSyn);

    Packet first(kIPv6);
    first.ipv6(kFragment, "2001:db8::1", "2001:db8::2").fragment(kUdp, 0).udp(1, 53);
    BOOST_TEST(t.parse(first).parsed == 1);

    Packet later(kIPv6);
    later.ipv6(kFragment, "2001:db8::1", "2001:db8::2").fragment(kUdp, 100).udp(1, 53);
    BOOST_TEST(t.parse(later).parsed == 0);

    Packet too_long(kIPv6); // more extension headers than the parser walks
    too_long.ipv6(kDstOpts, "2001:db8::1", "2001:db8::2");
    for (int i = 0; i < 8; ++i)
        too_long.ext(kDstOpts);
    too_long.ext(kUdp).udp(1, 53);
    BOOST_TEST(t.parse(too_long).parsed == 0);

    Packet cut_chain(kIPv6); // the routing header is announced, not there
    cut_chain.ipv6(kHopOpts, "2001:db8::1", "2001:db8::2").ext(kRouting);
    BOOST_TEST(t.parse(cut_chain).parsed == 0);
}

BOOST_AUTO_TEST_CASE(decision_on_egress_datagrams_follows_the_rules)
{
    TestObject t;
    t.install(R"(
[policy.web]
[policy.web.egress]
default = "deny"
allow = ["198.51.100.0/24 udp"]
deny = ["198.51.100.66 udp 53"]
)");
    uint64_t sid = 777;
    SessionEntry e;
    e.policy_id = t.id("web");
    BOOST_REQUIRE(t.maps().insert_session(sid, 3, e).ok());

    Packet ok(kIPv4);
    ok.ipv4(kUdp, "192.0.2.1", "198.51.100.7").udp(5000, 53);
    auto r = t.decide({sid, 0, 0}, ok);
    BOOST_TEST(r.judged == 1u);
    BOOST_TEST(r.verdict == static_cast<uint32_t>(AW_VERDICT_ALLOW));

    Packet denied(kIPv4);
    denied.ipv4(kUdp, "192.0.2.1", "198.51.100.66").udp(5000, 53);
    r = t.decide({sid, 0, 0}, denied);
    BOOST_TEST(r.verdict == static_cast<uint32_t>(AW_VERDICT_DENY));
    BOOST_TEST(r.reason == static_cast<uint32_t>(AW_REASON_RULE));
    BOOST_TEST(r.layer == static_cast<uint32_t>(AW_LAYER_LOGIN));

    Packet elsewhere(kIPv4);
    elsewhere.ipv4(kUdp, "192.0.2.1", "203.0.113.9").udp(5000, 53);
    r = t.decide({sid, 0, 0}, elsewhere);
    BOOST_TEST(r.reason == static_cast<uint32_t>(AW_REASON_DEFAULT));

    Packet later_fragment(kIPv4);
    later_fragment.ipv4(kUdp, "192.0.2.1", "198.51.100.7", 185).udp(5000, 53);
    r = t.decide({sid, 0, 0}, later_fragment);
    BOOST_TEST(r.parsed == 0);
    BOOST_TEST(r.reason == static_cast<uint32_t>(AW_REASON_MALFORMED));

    BOOST_REQUIRE(t.maps().set_session_flags(sid, AW_SESSION_REVOKED, 0).ok());
    r = t.decide({sid, 0, 0}, ok);
    BOOST_TEST(r.reason == static_cast<uint32_t>(AW_REASON_REVOKED));
}

// Port ranges are blocks of 2^k ports in the trie: every port of the
// egress range is decided as the rules say, on the real kernel (a denied
// block inside an allowed range, a denied port inside that, both ends); an
// inbound range at its edges.
BOOST_AUTO_TEST_CASE(decision_on_port_ranges_follows_the_rules_at_every_port)
{
    TestObject t;
    t.install(R"(
[policy.ranges]
[policy.ranges.egress]
default = "deny"
allow = ["198.51.100.0/24 udp 1024-65535"]
deny = ["198.51.100.0/25 udp 5000-5999", "198.51.100.200 udp 40000"]
[policy.ranges.ingress]
default = "deny"
allow = ["tcp 8000-8999"]
)");
    uint64_t sid = 779;
    SessionEntry e;
    e.policy_id = t.id("ranges");
    BOOST_REQUIRE(t.maps().insert_session(sid, 3, e).ok());

    size_t wrong = 0;
    for (const char* to : {"198.51.100.66", "198.51.100.200"})
        for (uint32_t port = 1; port <= 65535; ++port) {
            bool low = std::string(to) == "198.51.100.66";
            bool denied = (low && port >= 5000 && port <= 5999) || (!low && port == 40000);
            uint32_t want = port >= 1024 && !denied ? AW_VERDICT_ALLOW : AW_VERDICT_DENY;
            Packet p(kIPv4);
            p.ipv4(kUdp, "192.0.2.1", to).udp(40000, static_cast<uint16_t>(port));
            auto r = t.decide({sid, 0, 0}, p);
            if (r.verdict != want && wrong++ < 5)
                BOOST_TEST(r.verdict == want, to << " udp " << port);
        }
    BOOST_TEST(wrong == 0u);

    int ifindex = non_loopback_ifindex();
    BOOST_REQUIRE_MESSAGE(ifindex > 0, "an interface other than lo");
    for (auto [port, want] : {std::pair{7999u, AW_VERDICT_DENY},
                              {8000u, AW_VERDICT_ALLOW},
                              {8512u, AW_VERDICT_ALLOW},
                              {8999u, AW_VERDICT_ALLOW},
                              {9000u, AW_VERDICT_DENY}}) {
        Packet syn(kIPv4);
        syn.ipv4(kTcp, "192.0.2.99", "192.0.2.1").tcp(40000, static_cast<uint16_t>(port), kSyn);
        BOOST_TEST(t.decide({sid, 0, 1}, syn, ifindex).verdict == static_cast<uint32_t>(want), "inbound " << port);
    }
}

BOOST_AUTO_TEST_CASE(decision_on_inbound_flows_pins_to_the_login_address)
{
    int ifindex = non_loopback_ifindex();
    BOOST_REQUIRE_MESSAGE(ifindex > 0, "an interface other than lo");
    TestObject t;
    t.install(R"(
[policy.ssh]
[policy.ssh.ingress]
from_rhost_only = true
[policy.ssh.egress]
default = "deny"
allow = ["192.0.2.53 udp 53"]
)");
    uint64_t sid = 778;
    SessionEntry e;
    e.policy_id = t.id("ssh");
    e.rhost = IpAddress::parse("192.0.2.10");
    BOOST_REQUIRE(t.maps().insert_session(sid, 3, e).ok());

    Packet from_rhost(kIPv4);
    from_rhost.ipv4(kTcp, "192.0.2.10", "192.0.2.1").tcp(40000, 8080, kSyn);
    auto r = t.decide({sid, 0, 1}, from_rhost, ifindex);
    BOOST_TEST(r.verdict == static_cast<uint32_t>(AW_VERDICT_ALLOW));

    Packet from_other(kIPv4);
    from_other.ipv4(kTcp, "192.0.2.99", "192.0.2.1").tcp(40000, 8080, kSyn);
    r = t.decide({sid, 0, 1}, from_other, ifindex);
    BOOST_TEST(r.verdict == static_cast<uint32_t>(AW_VERDICT_DENY));
    BOOST_TEST(r.reason == static_cast<uint32_t>(AW_REASON_NOT_RHOST));
    // The same packet over loopback comes from this host: not judged by ingress.
    r = t.decide({sid, 0, 1}, from_other, 1);
    BOOST_TEST(r.verdict == static_cast<uint32_t>(AW_VERDICT_ALLOW));

    Packet established(kIPv4); // not a new flow: decided at its SYN
    established.ipv4(kTcp, "192.0.2.99", "192.0.2.1").tcp(40000, 8080, kAck);
    r = t.decide({sid, 0, 1}, established, ifindex);
    BOOST_TEST(r.judged == 0u);
    BOOST_TEST(r.verdict == static_cast<uint32_t>(AW_VERDICT_ALLOW));

    Packet reply(kIPv4); // a datagram from a peer the session may send to
    reply.ipv4(kUdp, "192.0.2.53", "192.0.2.1").udp(53, 40000);
    r = t.decide({sid, 0, 1}, reply, ifindex);
    BOOST_TEST(r.verdict == static_cast<uint32_t>(AW_VERDICT_ALLOW));

    Packet stray(kIPv4);
    stray.ipv4(kUdp, "192.0.2.54", "192.0.2.1").udp(53, 40000);
    r = t.decide({sid, 0, 1}, stray, ifindex);
    BOOST_TEST(r.verdict == static_cast<uint32_t>(AW_VERDICT_DENY));
}

// ICMP types (issue #18): the parser reads the type into the port (type +
// 1) and an ICMP reply's source port is the request it answers; egress
// rules by type, in both families; an echo reply from a host the session
// may ping is a reply under an ingress default of deny, other types and
// other hosts are not; an ICMP header cut before its type is unreadable.
BOOST_AUTO_TEST_CASE(icmp_types_are_decided_as_the_rules_say)
{
    int ifindex = non_loopback_ifindex();
    BOOST_REQUIRE_MESSAGE(ifindex > 0, "an interface other than lo");
    TestObject t;
    Packet echo(kIPv4);
    echo.ipv4(kIcmp, "192.0.2.1", "198.51.100.7").icmp(8);
    auto parsed = t.parse(echo);
    BOOST_TEST(parsed.parsed == 1);
    BOOST_TEST(parsed.is_datagram == 1);
    BOOST_TEST(port_of(parsed.dst) == 9); // echo-request (8) + 1
    BOOST_TEST(port_of(parsed.src) == 0);
    Packet echo_reply(kIPv4);
    echo_reply.ipv4(kIcmp, "198.51.100.7", "192.0.2.1").icmp(0);
    parsed = t.parse(echo_reply);
    BOOST_TEST(port_of(parsed.dst) == 1); // echo-reply (0) + 1
    BOOST_TEST(port_of(parsed.src) == 9); // answers echo-request
    Packet cut(kIPv4);
    cut.ipv4(kIcmp, "192.0.2.1", "198.51.100.7");
    BOOST_TEST(t.parse(cut).parsed == 0);

    t.install(R"(
[policy.ping]
[policy.ping.egress]
default = "deny"
allow = ["198.51.100.0/24 icmp echo-request", "2001:db8::/32 icmpv6 echo-request", "any icmpv6 packet-too-big"]
[policy.ping.ingress]
default = "deny"
)");
    uint64_t sid = 780;
    SessionEntry e;
    e.policy_id = t.id("ping");
    BOOST_REQUIRE(t.maps().insert_session(sid, 3, e).ok());

    auto verdict = [&](Packet& p, int ingress) {
        return t.decide({sid, 0, static_cast<uint32_t>(ingress)}, p, ifindex);
    };
    BOOST_TEST(verdict(echo, 0).verdict == static_cast<uint32_t>(AW_VERDICT_ALLOW));
    Packet timestamp(kIPv4); // another type to the same host: the default
    timestamp.ipv4(kIcmp, "192.0.2.1", "198.51.100.7").icmp(13);
    auto r = verdict(timestamp, 0);
    BOOST_TEST(r.verdict == static_cast<uint32_t>(AW_VERDICT_DENY));
    BOOST_TEST(r.reason == static_cast<uint32_t>(AW_REASON_DEFAULT));
    Packet elsewhere(kIPv4);
    elsewhere.ipv4(kIcmp, "192.0.2.1", "203.0.113.9").icmp(8);
    BOOST_TEST(verdict(elsewhere, 0).verdict == static_cast<uint32_t>(AW_VERDICT_DENY));
    Packet echo6(kIPv6);
    echo6.ipv6(kIcmpv6, "2001:db8::1", "2001:db8::7").icmp(128);
    BOOST_TEST(verdict(echo6, 0).verdict == static_cast<uint32_t>(AW_VERDICT_ALLOW));
    Packet too_big6(kIPv6);
    too_big6.ipv6(kIcmpv6, "2001:db8::1", "2001:db9::7").icmp(2);
    BOOST_TEST(verdict(too_big6, 0).verdict == static_cast<uint32_t>(AW_VERDICT_ALLOW));
    Packet unreachable6(kIPv6);
    unreachable6.ipv6(kIcmpv6, "2001:db8::1", "2001:db9::7").icmp(1);
    BOOST_TEST(verdict(unreachable6, 0).verdict == static_cast<uint32_t>(AW_VERDICT_DENY));

    // Inbound: the pinged host's echo reply is a reply; its echo request,
    // and another host's reply, are new flows the default refuses.
    BOOST_TEST(verdict(echo_reply, 1).verdict == static_cast<uint32_t>(AW_VERDICT_ALLOW));
    Packet pinged_back(kIPv4);
    pinged_back.ipv4(kIcmp, "198.51.100.7", "192.0.2.1").icmp(8);
    BOOST_TEST(verdict(pinged_back, 1).verdict == static_cast<uint32_t>(AW_VERDICT_DENY));
    Packet stray_reply(kIPv4);
    stray_reply.ipv4(kIcmp, "203.0.113.9", "192.0.2.1").icmp(0);
    BOOST_TEST(verdict(stray_reply, 1).verdict == static_cast<uint32_t>(AW_VERDICT_DENY));
    Packet echo_reply6(kIPv6);
    echo_reply6.ipv6(kIcmpv6, "2001:db8::7", "2001:db8::1").icmp(129);
    BOOST_TEST(verdict(echo_reply6, 1).verdict == static_cast<uint32_t>(AW_VERDICT_ALLOW));
}

// $rhost rules (bpf/lib/decision.bpf.h, match_rhost_rules) decide for the
// login's own address only, in both families: egress datagrams to it on
// the port named, inbound SYNs from it on theirs, a $rhost deny winning over
// an allow of the whole subnet; the direction's own rules keep deciding for
// every other address. A session without an rhost, and the user layer
// outside any login, match none.
BOOST_AUTO_TEST_CASE(rhost_rules_decide_for_the_login_address_only)
{
    int ifindex = non_loopback_ifindex();
    BOOST_REQUIRE_MESSAGE(ifindex > 0, "an interface other than lo");
    TestObject t;
    t.install(R"(
[policy.back]
[policy.back.egress]
default = "deny"
allow = ["$rhost udp 53", "$rhost udp 5000-5999"]
[policy.back.ingress]
default = "deny"
allow = ["$rhost tcp 8080", "192.0.2.0/24 tcp 8081"]
deny = ["$rhost tcp 8081"]
)");
    SessionEntry e;
    e.policy_id = t.id("back");
    e.rhost = IpAddress::parse("192.0.2.10");
    uint64_t sid = 781, sid6 = 782, no_rhost = 783;
    BOOST_REQUIRE(t.maps().insert_session(sid, 3, e).ok());
    e.rhost = IpAddress::parse("2001:db8::10");
    BOOST_REQUIRE(t.maps().insert_session(sid6, 3, e).ok());
    e.rhost.reset();
    BOOST_REQUIRE(t.maps().insert_session(no_rhost, 3, e).ok());

    auto udp_to = [&](uint64_t session, const char* to, uint16_t port) {
        Packet p(std::string(to).find(':') == std::string::npos ? kIPv4 : kIPv6);
        if (std::string(to).find(':') == std::string::npos)
            p.ipv4(kUdp, "192.0.2.1", to).udp(40000, port);
        else
            p.ipv6(kUdp, "2001:db8::1", to).udp(40000, port);
        return t.decide({session, 0, 0}, p);
    };
    auto r = udp_to(sid, "192.0.2.10", 53);
    BOOST_TEST(r.verdict == static_cast<uint32_t>(AW_VERDICT_ALLOW));
    BOOST_TEST(r.rule == 1u);
    r = udp_to(sid, "192.0.2.10", 5500); // a port block
    BOOST_TEST(r.verdict == static_cast<uint32_t>(AW_VERDICT_ALLOW));
    BOOST_TEST(r.rule == 2u);
    r = udp_to(sid, "192.0.2.10", 6000);
    BOOST_TEST(r.verdict == static_cast<uint32_t>(AW_VERDICT_DENY));
    BOOST_TEST(r.reason == static_cast<uint32_t>(AW_REASON_DEFAULT));
    BOOST_TEST(udp_to(sid, "192.0.2.11", 53).verdict == static_cast<uint32_t>(AW_VERDICT_DENY));
    BOOST_TEST(udp_to(sid6, "2001:db8::10", 53).verdict == static_cast<uint32_t>(AW_VERDICT_ALLOW));
    BOOST_TEST(udp_to(sid6, "2001:db8::11", 53).verdict == static_cast<uint32_t>(AW_VERDICT_DENY));
    BOOST_TEST(udp_to(sid6, "192.0.2.10", 53).verdict == static_cast<uint32_t>(AW_VERDICT_DENY)); // sid's rhost
    BOOST_TEST(udp_to(no_rhost, "192.0.2.10", 53).verdict == static_cast<uint32_t>(AW_VERDICT_DENY));

    auto syn_from = [&](const char* from, uint16_t port) {
        Packet p(kIPv4);
        p.ipv4(kTcp, from, "192.0.2.1").tcp(40000, port, kSyn);
        return t.decide({sid, 0, 1}, p, ifindex);
    };
    r = syn_from("192.0.2.10", 8080);
    BOOST_TEST(r.verdict == static_cast<uint32_t>(AW_VERDICT_ALLOW));
    BOOST_TEST(r.rule == 3u);
    r = syn_from("192.0.2.11", 8080);
    BOOST_TEST(r.verdict == static_cast<uint32_t>(AW_VERDICT_DENY));
    BOOST_TEST(r.reason == static_cast<uint32_t>(AW_REASON_DEFAULT));
    r = syn_from("192.0.2.10", 8081);
    BOOST_TEST(r.verdict == static_cast<uint32_t>(AW_VERDICT_DENY));
    BOOST_TEST(r.reason == static_cast<uint32_t>(AW_REASON_RULE));
    BOOST_TEST(r.rule == 5u);
    r = syn_from("192.0.2.11", 8081);
    BOOST_TEST(r.verdict == static_cast<uint32_t>(AW_VERDICT_ALLOW));
    BOOST_TEST(r.rule == 4u);
    // A datagram from the rhost is a reply by the egress rules of addresses
    // only, as docs/POLICY.md says: "$rhost udp 53" does not admit it.
    Packet reply(kIPv4);
    reply.ipv4(kUdp, "192.0.2.10", "192.0.2.1").udp(53, 40000);
    BOOST_TEST(t.decide({sid, 0, 1}, reply, ifindex).verdict == static_cast<uint32_t>(AW_VERDICT_DENY));

    // The user layer outside any login has no address to compare with.
    constexpr uint32_t uid = 4242202;
    BOOST_REQUIRE(t.maps().set_user(uid, t.id("back")).ok());
    Packet p(kIPv4);
    p.ipv4(kUdp, "192.0.2.1", "192.0.2.10").udp(40000, 53);
    r = t.decide({0, uid, 0}, p);
    BOOST_TEST(r.verdict == static_cast<uint32_t>(AW_VERDICT_DENY));
    BOOST_TEST(r.layer == static_cast<uint32_t>(AW_LAYER_USER));
    // Inside the login, the user layer judges with the login's address.
    BOOST_TEST(t.decide({sid, uid, 0}, p).verdict == static_cast<uint32_t>(AW_VERDICT_ALLOW));
}

BOOST_AUTO_TEST_CASE(decision_asks_the_user_layer_after_the_login)
{
    TestObject t;
    t.install(R"(
[policy.open]
[policy.narrow]
[policy.narrow.egress]
default = "deny"
)");
    uint64_t sid = 779;
    SessionEntry e;
    e.policy_id = t.id("open");
    BOOST_REQUIRE(t.maps().insert_session(sid, 3, e).ok());
    constexpr uint32_t uid = 4242201;
    Packet p(kIPv4);
    p.ipv4(kUdp, "192.0.2.1", "198.51.100.7").udp(5000, 53);
    // Control: the login alone allows it.
    BOOST_TEST(t.decide({sid, uid, 0}, p).verdict == static_cast<uint32_t>(AW_VERDICT_ALLOW));
    BOOST_REQUIRE(t.maps().set_user(uid, t.id("narrow")).ok());
    auto r = t.decide({sid, uid, 0}, p);
    BOOST_TEST(r.verdict == static_cast<uint32_t>(AW_VERDICT_DENY));
    BOOST_TEST(r.layer == static_cast<uint32_t>(AW_LAYER_USER));
    // Outside any login, the user layer alone.
    r = t.decide({0, uid, 0}, p);
    BOOST_TEST(r.layer == static_cast<uint32_t>(AW_LAYER_USER));
    BOOST_TEST(r.reason == static_cast<uint32_t>(AW_REASON_DEFAULT));
}

// What connect(), sendmsg() and bind() found is remembered per subject key
// (bpf/lib/decision_cache.bpf.h): found again only for the same generation,
// cgroup and uid, a confined subject's allow only for the same direction and
// flow; the last four flows are kept; an outside verdict holds for any flow;
// the empty generation never remembers.
BOOST_AUTO_TEST_CASE(a_remembered_decision_is_found_for_the_same_question_only)
{
    TestObject t;
    Packet p(kIPv4);
    p.ipv4(kUdp, "192.0.2.1", "198.51.100.7").udp(5000, 53);
    AskCase c{};
    c.key.generation = kGeneration;
    c.key.cgroup_id = 4711;
    c.key.uid = 1000;
    c.flow.dir = AW_DIR_EGRESS;
    c.flow.proto = kTcp;
    c.flow.port = htons(443);
    c.flow.addr[10] = c.flow.addr[11] = 0xff;
    c.flow.addr[12] = 198, c.flow.addr[13] = 51, c.flow.addr[14] = 100, c.flow.addr[15] = 7;

    BOOST_TEST(t.remembered(c, p) == kRememberedNone);
    t.remember(c, p);
    BOOST_TEST(t.remembered(c, p) == kRememberedAllowed);

    auto found = [&](auto change) {
        AskCase other = c;
        change(other);
        return t.remembered(other, p);
    };
    BOOST_TEST(found([](AskCase& o) { o.key.generation ^= 0x100; }) == kRememberedNone); // a change since
    BOOST_TEST(found([](AskCase& o) { o.key.cgroup_id += 1; }) == kRememberedNone);      // maybe another session
    BOOST_TEST(found([](AskCase& o) { o.key.uid += 1; }) == kRememberedNone);            // another user layer
    BOOST_TEST(found([](AskCase& o) { o.flow.dir = AW_DIR_BIND; }) == kRememberedNone);
    BOOST_TEST(found([](AskCase& o) { o.flow.proto = kUdp; }) == kRememberedNone);
    BOOST_TEST(found([](AskCase& o) { o.flow.port = htons(444); }) == kRememberedNone);
    BOOST_TEST(found([](AskCase& o) { o.flow.addr[15] = 8; }) == kRememberedNone);
    BOOST_TEST(found([](AskCase& o) { o.flow.addr[0] = 0x20; }) == kRememberedNone);

    // Four flows are kept: three more, and the first is still there; a
    // fifth replaces the oldest.
    for (uint16_t port : {444, 445, 446}) {
        AskCase more = c;
        more.flow.port = htons(port);
        t.remember(more, p);
    }
    BOOST_TEST(t.remembered(c, p) == kRememberedAllowed);
    BOOST_TEST(found([](AskCase& o) { o.flow.port = htons(446); }) == kRememberedAllowed);
    AskCase fifth = c;
    fifth.flow.port = htons(447);
    t.remember(fifth, p);
    BOOST_TEST(t.remembered(fifth, p) == kRememberedAllowed);
    BOOST_TEST(t.remembered(c, p) == kRememberedNone);

    // Outside authwall, a subject's verdict holds whatever the flow (the
    // slot no longer lists flows).
    AskCase outside = c;
    outside.outside = 1; // REFUSE (0) + 1
    t.remember(outside, p);
    BOOST_TEST(t.remembered(c, p) == kRememberedRefuse);
    outside.outside = 2; // PASS (1) + 1
    t.remember(outside, p);
    BOOST_TEST(found([](AskCase& o) { o.flow.port = htons(9); }) == kRememberedPass);
    BOOST_TEST(found([](AskCase& o) { o.key.uid += 1; }) == kRememberedNone);

    AskCase none = c; // no generation: nothing is remembered or found
    none.key.generation = 0;
    t.remember(none, p);
    BOOST_TEST(t.remembered(none, p) == kRememberedNone);
}

// A packet's length as the counters see it (skb->len: the test run drops
// the Ethernet header).
uint64_t counted_length(Packet& p)
{
    return p.bytes().size() - 14;
}

BOOST_AUTO_TEST_CASE(a_socket_counts_in_its_memory_and_adds_to_its_session_by_batches)
{
    TestObject t;
    t.install("[policy.web]\n");
    uint64_t sid = 901;
    SessionEntry e;
    e.policy_id = t.id("web");
    BOOST_REQUIRE(t.maps().insert_session(sid, 3, e).ok());
    Packet p(kIPv4);
    p.ipv4(kTcp, "192.0.2.1", "198.51.100.7").tcp(40000, 22, kAck);
    uint64_t len = counted_length(p);

    t.claim({0, sid, kGeneration, kEstablished, 0}, p);
    BOOST_TEST(t.word() == ((kGeneration & ~0xFFULL) | kConfined | kCounted | 4 /* SOCK_TCP */));

    CountCase out{kConfined | kCounted, 0, 0, kEstablished, 0};
    for (int i = 0; i < 63; ++i)
        t.count(out, p);
    BOOST_TEST(t.stats(sid).packets_out == 0u); // in the socket's memory
    t.count(out, p);
    BOOST_TEST(t.stats(sid).packets_out == 64u); // a batch
    BOOST_TEST(t.stats(sid).bytes_out == 64 * len);

    CountCase in = out;
    in.ingress = 1;
    for (int i = 0; i < 5; ++i)
        t.count(in, p);
    t.count(out, p);
    BOOST_TEST(t.stats(sid).packets_in == 0u);
    t.close_socket(p); // the rest, whatever its size
    auto st = t.stats(sid);
    BOOST_TEST(st.packets_out == 65u);
    BOOST_TEST(st.bytes_out == 65 * len);
    BOOST_TEST(st.packets_in == 5u);
    BOOST_TEST(st.bytes_in == 5 * len);
    t.close_socket(p); // nothing twice
    BOOST_TEST(t.stats(sid).packets_out == 65u);
}

BOOST_AUTO_TEST_CASE(a_closing_socket_counts_at_once_and_an_uncounted_one_never)
{
    TestObject t;
    t.install("[policy.web]\n");
    uint64_t sid = 902;
    SessionEntry e;
    e.policy_id = t.id("web");
    BOOST_REQUIRE(t.maps().insert_session(sid, 3, e).ok());
    Packet p(kIPv4);
    p.ipv4(kTcp, "192.0.2.1", "198.51.100.7").tcp(40000, 22, kAck);
    t.claim({0, sid, kGeneration, kEstablished, 0}, p);

    t.count({kConfined | kCounted, 0, 0, kEstablished, 0}, p);
    BOOST_TEST(t.stats(sid).packets_out == 0u);
    t.count({kConfined | kCounted, 0, 0, kFinWait1, 0}, p); // the FIN after close(): this and what is pending
    BOOST_TEST(t.stats(sid).packets_out == 2u);

    t.count({kConfined, 0, 0, kFinWait1, 0}, p); // the user layer alone: no session to count to
    t.close_socket(p);
    BOOST_TEST(t.stats(sid).packets_out == 2u);
}

BOOST_AUTO_TEST_CASE(a_socket_taken_over_by_another_session_leaves_its_counts_to_the_first)
{
    TestObject t;
    t.install("[policy.web]\n");
    uint64_t first = 903, second = 904;
    SessionEntry e;
    e.policy_id = t.id("web");
    BOOST_REQUIRE(t.maps().insert_session(first, 3, e).ok());
    BOOST_REQUIRE(t.maps().insert_session(second, 2, e).ok());
    Packet p(kIPv4);
    p.ipv4(kUdp, "192.0.2.1", "198.51.100.7").udp(5000, 53);

    t.claim({0, first, kGeneration, kEstablished, 0}, p);
    for (int i = 0; i < 3; ++i)
        t.count({kConfined | kCounted, 0, 0, kEstablished, 0}, p);
    t.claim({0, second, kGeneration + 0x100, kEstablished, 0}, p); // a session enrolled around it
    BOOST_TEST(t.stats(first).packets_out == 3u);
    t.count({kConfined | kCounted, 0, 0, kEstablished, 0}, p);
    t.close_socket(p);
    BOOST_TEST(t.stats(first).packets_out == 3u);
    BOOST_TEST(t.stats(second).packets_out == 1u);
}

BOOST_AUTO_TEST_CASE(a_remembered_flow_is_used_only_when_no_writer_was_copying_it)
{
    TestObject t;
    t.install("[policy.web]\n");
    Packet p(kIPv4);
    p.ipv4(kUdp, "192.0.2.1", "198.51.100.7").udp(5000, 53);
    FlowCase a;
    a.flow.generation = kGeneration;
    a.flow.addr[15] = 7;
    a.flow.port = htons(53);
    a.flow.proto = kUdp;

    t.remember_flow(a, p);
    BOOST_TEST(t.flow_seq() == 2u); // odd while it copied, even after
    BOOST_TEST(t.flow_allowed(a, p));
    FlowCase other = a;
    other.flow.port = htons(54);
    BOOST_TEST(!t.flow_allowed(other, p));
    FlowCase inbound = a;
    inbound.ingress = 1;
    BOOST_TEST(!t.flow_allowed(inbound, p)); // remembered for egress only

#if defined(__x86_64__)
    // A writer halfway through its copy: what a lock-free reader (x86)
    // copies now may be torn between two flows, so it is not used, even
    // when it matches. (Elsewhere readers take the writers' lock.)
    t.set_flow_seq(3);
    BOOST_TEST(!t.flow_allowed(a, p));
    t.set_flow_seq(4);
    BOOST_TEST(t.flow_allowed(a, p));
#else
    t.set_flow_seq(4);
#endif

    t.remember_flow(inbound, p);
    BOOST_TEST(t.flow_seq() == 6u);
    BOOST_TEST(t.flow_allowed(inbound, p));
    BOOST_TEST(t.flow_allowed(a, p)); // each direction keeps its own
}

BOOST_AUTO_TEST_SUITE_END()
