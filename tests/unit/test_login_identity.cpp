// SPDX-License-Identifier: Apache-2.0
// What a login says about itself and how much of it is believed: the
// values an earlier PAM module hands through the PAM environment
// (sanitize_auth_tag), and rhost=kernel's comparison with PAM_RHOST.
#include <boost/test/unit_test.hpp>

#include "core/base/identity.h"
#include "core/base/fd.h"
#include "core/host/tcp_peer.h"
#include "core/nft/elements.h"
#include "core/session/events.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

using namespace authwall;

namespace {

AuthTag tag(const std::string& raw, size_t max = kAuthCorrelationMax)
{
    return sanitize_auth_tag(kAuthCorrelationVar, raw, max);
}

socklen_t sockaddr_of(const std::string& address, uint16_t port, sockaddr_storage& ss)
{
    ss = {};
    if (address.find(':') != std::string::npos) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        inet_pton(AF_INET6, address.c_str(), &a->sin6_addr);
        return sizeof(*a);
    }
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    inet_pton(AF_INET, address.c_str(), &a->sin_addr);
    return sizeof(*a);
}

// A listening socket on `address` (any port); the connections made to it
// stay in its queue, established, without an accept.
struct Listener {
    Fd fd;
    std::string address;
    uint16_t port = 0;
    explicit Listener(std::string on) : address(std::move(on))
    {
        sockaddr_storage ss{};
        socklen_t len = sockaddr_of(address, 0, ss);
        fd.reset(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!fd || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd.get(), 8) != 0 ||
            ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
            fd.reset();
            return;
        }
        port = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                              : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    }
    Fd connect() const
    {
        sockaddr_storage ss{};
        socklen_t len = sockaddr_of(address, port, ss);
        Fd s(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (s && ::connect(s.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0)
            s.reset();
        return s;
    }
};

} // namespace

BOOST_AUTO_TEST_SUITE(login_identity)

BOOST_AUTO_TEST_CASE(tokens_and_claims_tags_are_recorded_as_given)
{
    for (const std::string& good : std::vector<std::string>{
             "8f14e45f-ceea-467f-a0e6-ab1f2c3d4e5f", "dGhpcyBpcyBhIHRva2Vu+/=", "amr=pwd+otp,acr=urn:mfa:2",
             "sub=alice@example.org", "x", std::string(kAuthCorrelationMax, 'a')}) {
        auto t = tag(good);
        BOOST_TEST_INFO(good);
        BOOST_TEST(t.value.value_or("(none)") == good);
        BOOST_TEST(t.note.empty());
    }
}

BOOST_AUTO_TEST_CASE(unset_or_empty_is_nothing_and_says_nothing)
{
    auto unset = sanitize_auth_tag(kAuthClaimsVar, std::nullopt, kAuthClaimsMax);
    BOOST_TEST(!unset.value);
    BOOST_TEST(unset.note.empty());
    auto empty = tag("");
    BOOST_TEST(!empty.value);
    BOOST_TEST(empty.note.empty());
}

BOOST_AUTO_TEST_CASE(hostile_values_are_rejected_whole_and_the_note_is_printable)
{
    const std::string hostile[] = {
        std::string("abc\ndef"),                    // a forged second log line
        std::string("abc\rAUTHWALL_EVENT=close"),   // a forged journal field after a carriage return
        std::string("tok\x1b[31mred"),              // a terminal escape
        std::string("a\x7f"),                       // DEL
        std::string("tok\"}, {\"event\": \"close"), // JSON and nft comment quoting
        std::string("back\\slash"),
        std::string("two words"),    // a space splits key=value log lines
        std::string("caf\xc3\xa9"),  // valid UTF-8, still not ASCII
        std::string("bad\xc3"),      // truncated UTF-8
        std::string("\xff\xfe"),     // never UTF-8
        std::string("\xc0\xaf"),     // an overlong encoding of '/'
        std::string("\xed\xa0\x80"), // a UTF-16 surrogate
        std::string("x\x00y", 3),    // an embedded NUL (never from pam_getenv, but the type allows it)
        std::string("$(reboot)"),    // shell
        std::string("a;b"),
    };
    for (const auto& raw : hostile) {
        auto t = tag(raw);
        BOOST_TEST_INFO(raw);
        BOOST_TEST(!t.value);
        BOOST_TEST(t.note.find(kAuthCorrelationVar) == 0);
        BOOST_TEST(t.note.find("not recorded") != std::string::npos);
        for (unsigned char c : t.note)
            BOOST_TEST((c >= 0x20 && c < 0x7f));
    }
    auto t = tag("abc\ndef");
    BOOST_TEST(t.note.find("byte 0x0a at position 4") != std::string::npos);
    BOOST_TEST(t.note.find("abc\\x0adef") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(an_overlong_value_is_rejected_not_cut)
{
    auto t = tag(std::string(kAuthCorrelationMax + 1, 'a'));
    BOOST_TEST(!t.value);
    BOOST_TEST(t.note.find("is 65 bytes, more than 64") != std::string::npos);
    BOOST_TEST(t.note.size() < 200u); // the note itself stays short
    auto claims = sanitize_auth_tag(kAuthClaimsVar, std::string(kAuthClaimsMax, 'c'), kAuthClaimsMax);
    BOOST_TEST(claims.value.value_or("").size() == kAuthClaimsMax);
    auto huge = sanitize_auth_tag(kAuthClaimsVar, std::string(1 << 20, '\n'), kAuthClaimsMax);
    BOOST_TEST(!huge.value);
    BOOST_TEST(huge.note.size() < 400u); // 64 bytes shown, each at most \xNN
}

BOOST_AUTO_TEST_CASE(rhost_kernel_uses_the_peer_and_names_a_different_pam_rhost)
{
    auto peer = *IpAddress::parse("192.0.2.7");
    auto same = rhost_from_peer(peer, "192.0.2.7");
    BOOST_TEST(same.address->str() == "192.0.2.7");
    BOOST_TEST(same.note.empty());
    BOOST_TEST(rhost_from_peer(peer, "::ffff:192.0.2.7").note.empty());   // the same address, v4-mapped
    BOOST_TEST(rhost_from_peer(peer, "").note.empty());                   // no PAM_RHOST: nothing to compare
    BOOST_TEST(rhost_from_peer(peer, "client.example.org").note.empty()); // a name: no DNS on a login
    auto other = rhost_from_peer(peer, "198.51.100.1");
    BOOST_TEST(other.address->str() == "192.0.2.7");
    BOOST_TEST(other.note == "PAM_RHOST 198.51.100.1 is not the peer of the login's connection, 192.0.2.7, "
                             "which is used (rhost=kernel)");
    auto v6 = rhost_from_peer(*IpAddress::parse("2001:db8::7"), "[2001:db8::8]");
    BOOST_TEST(v6.address->str() == "2001:db8::7");
    BOOST_TEST(v6.note.find("2001:db8::8") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(the_nft_comment_carries_whole_tags_within_128_bytes)
{
    MirrorSession s;
    s.id = 12345;
    s.user = "alice";
    s.policy = "ops";
    BOOST_TEST(nft::comment_of(s) == "user=alice policy=ops session=12345");
    s.auth_correlation = "8f14e45f-ceea-467f-a0e6-ab1f2c3d4e5f";
    s.auth_claims = "amr=otp";
    BOOST_TEST(nft::comment_of(s) ==
               "user=alice policy=ops session=12345 auth=8f14e45f-ceea-467f-a0e6-ab1f2c3d4e5f claims=amr=otp");
    // Claims that do not fit whole are left out, never cut.
    s.auth_claims = std::string(kAuthClaimsMax, 'c');
    BOOST_TEST(nft::comment_of(s) == "user=alice policy=ops session=12345 auth=8f14e45f-ceea-467f-a0e6-ab1f2c3d4e5f");
    s.auth_correlation = std::string(kAuthCorrelationMax, 'a');
    s.auth_claims = "amr=otp";
    s.policy = std::string(40, 'p');
    auto c = nft::comment_of(s);
    BOOST_TEST(c.size() <= 127u);
    BOOST_TEST(c.find("auth=") == std::string::npos);
    BOOST_TEST(c.ends_with(" claims=amr=otp"));
}

// The open and close events carry the tags: the JSON event log's keys, the
// journal's fields and the message; a session without them has none.
BOOST_AUTO_TEST_CASE(the_events_carry_the_tags_in_the_log_and_the_journal)
{
    char tmpl[] = "/tmp/authwall-identity-XXXXXX";
    BOOST_REQUIRE(mkdtemp(tmpl));
    const std::filesystem::path dir = tmpl;
    const std::string socket_path = (dir / "journal").string();
    Fd journal(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, socket_path.c_str());
    BOOST_REQUIRE(::bind(journal.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    JournalSink sink("test", dir / "events.jsonl", socket_path);

    SessionRecord r;
    r.id = 7;
    r.correlation = "0123456789abcdef0123456789abcdef";
    r.user = "alice";
    r.auth_correlation = "sso-4711";
    r.auth_claims = "amr=pwd+otp";
    sink.session_event("open", r, "");
    r.auth_correlation.clear();
    r.auth_claims.clear();
    sink.session_event("close", r, "");

    std::string datagrams[2];
    for (auto& d : datagrams) {
        char buf[8192];
        ssize_t n = ::recv(journal.get(), buf, sizeof(buf), MSG_DONTWAIT);
        d.assign(buf, n > 0 ? static_cast<size_t>(n) : 0);
    }
    BOOST_TEST(datagrams[0].find("\nAUTHWALL_AUTH_CORRELATION=sso-4711\n") != std::string::npos);
    BOOST_TEST(datagrams[0].find("\nAUTHWALL_AUTH_CLAIMS=amr=pwd+otp\n") != std::string::npos);
    BOOST_TEST(datagrams[0].find(" auth_correlation=sso-4711 auth_claims=amr=pwd+otp") != std::string::npos);
    BOOST_TEST(datagrams[1].find("AUTHWALL_EVENT=close") != std::string::npos);
    BOOST_TEST(datagrams[1].find("AUTH_C") == std::string::npos);

    std::ifstream log(dir / "events.jsonl");
    std::string open_line, close_line;
    std::getline(log, open_line);
    std::getline(log, close_line);
    auto open = nlohmann::json::parse(open_line);
    BOOST_TEST(open.at("auth_correlation") == "sso-4711");
    BOOST_TEST(open.at("auth_claims") == "amr=pwd+otp");
    auto close = nlohmann::json::parse(close_line);
    BOOST_TEST(close.at("event") == "close");
    BOOST_TEST(!close.contains("auth_correlation"));
    std::filesystem::remove_all(dir);
}

// rhost=kernel's lookup on this very process: what it holds, through
// sock_diag. The listening and the not yet accepted sockets are no
// connection of ours; the connected ones are.
BOOST_AUTO_TEST_CASE(the_peer_of_the_process_connection_is_found_through_sock_diag)
{
    auto none = login_peer_address(getpid());
    BOOST_REQUIRE(!none);
    BOOST_TEST(none.error().message().find("holds no established TCP connection") != std::string::npos);

    Listener v4("127.0.0.1");
    BOOST_REQUIRE(v4.fd);
    Fd c4 = v4.connect();
    BOOST_REQUIRE(c4);
    auto inodes = socket_inodes(getpid());
    BOOST_REQUIRE(inodes);
    BOOST_TEST(inodes->size() >= 2u); // the listener and the connection at least
    auto connections = established_tcp(*inodes);
    BOOST_REQUIRE(connections);
    BOOST_REQUIRE_EQUAL(connections->size(), 1u);
    BOOST_TEST(connections->front().peer.str() == "127.0.0.1");
    BOOST_TEST(connections->front().peer_port == v4.port);
    // The exact lookups (this process) find what the dump finds.
    auto own = own_established_tcp();
    BOOST_REQUIRE(own);
    BOOST_REQUIRE_EQUAL(own->size(), 1u);
    BOOST_TEST(own->front().inode == connections->front().inode);
    BOOST_TEST(own->front().peer_port == v4.port);
    auto peer = login_peer_address(getpid());
    BOOST_REQUIRE_MESSAGE(peer.ok(), (peer ? std::string() : peer.error().message()));
    BOOST_TEST(peer->str() == "127.0.0.1");

    // Two connections to two addresses: which one is the login's is not known.
    Listener other("127.0.0.2");
    BOOST_REQUIRE(other.fd);
    Fd c2 = other.connect();
    BOOST_REQUIRE(c2);
    auto ambiguous = login_peer_address(getpid());
    BOOST_REQUIRE(!ambiguous);
    const std::string why = ambiguous.error().message();
    BOOST_TEST((why.find("lead to 127.0.0.1 and 127.0.0.2") != std::string::npos ||
                why.find("lead to 127.0.0.2 and 127.0.0.1") != std::string::npos),
               why);
}

BOOST_AUTO_TEST_CASE(an_ipv6_peer_is_found_too)
{
    Listener v6("::1");
    if (!v6.fd) {
        BOOST_TEST_MESSAGE("skipped: no IPv6 loopback here");
        return;
    }
    Fd c6 = v6.connect();
    BOOST_REQUIRE(c6);
    auto peer = login_peer_address(getpid());
    BOOST_REQUIRE_MESSAGE(peer.ok(), (peer ? std::string() : peer.error().message()));
    BOOST_TEST(peer->str() == "::1");
}

BOOST_AUTO_TEST_SUITE_END()
