// SPDX-License-Identifier: Apache-2.0
#include <boost/test/unit_test.hpp>

#include "core/base/fd.h"
#include "core/base/journal.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

using namespace authwall;

BOOST_AUTO_TEST_SUITE(journal)

BOOST_AUTO_TEST_CASE(fields_are_name_equals_value_lines)
{
    BOOST_TEST(journal_datagram({{"MESSAGE", "authwall: open"}, {"PRIORITY", "5"}, {"AUTHWALL_DETAIL", ""}}) ==
               "MESSAGE=authwall: open\nPRIORITY=5\nAUTHWALL_DETAIL=\n");
}

BOOST_AUTO_TEST_CASE(a_value_with_a_newline_carries_its_length)
{
    std::string expected = "MESSAGE\n";
    expected += std::string("\x05\0\0\0\0\0\0\0", 8);
    expected += "a\nb=c\nPRIORITY=5\n";
    BOOST_TEST(journal_datagram({{"MESSAGE", "a\nb=c"}, {"PRIORITY", "5"}}) == expected);
}

BOOST_AUTO_TEST_CASE(one_datagram_reaches_the_socket)
{
    char tmpl[] = "/tmp/authwall-journal-XXXXXX";
    BOOST_REQUIRE(mkdtemp(tmpl));
    std::string path = std::string(tmpl) + "/socket";
    Fd server(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, path.c_str());
    BOOST_REQUIRE(::bind(server.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);

    BOOST_REQUIRE(journal_send({{"MESSAGE", "hello"}, {"AUTHWALL_EVENT", "open"}}, path).ok());
    char buf[256];
    ssize_t n = ::recv(server.get(), buf, sizeof(buf), MSG_DONTWAIT);
    BOOST_TEST(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0) == "MESSAGE=hello\nAUTHWALL_EVENT=open\n");

    // No journal there: an error naming the socket, for the caller to fall back.
    std::filesystem::remove_all(tmpl);
    auto st = journal_send({{"MESSAGE", "hello"}}, path);
    BOOST_REQUIRE(!st.ok());
    BOOST_TEST(st.error().message().find(path) != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
