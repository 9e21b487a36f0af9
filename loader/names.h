// SPDX-License-Identifier: Apache-2.0
// The DNS names of the rules in force and the addresses each stands for
// now (docs/POLICY.md, "DNS names"). NameTable is the bookkeeping alone,
// driven by a clock it is given (unit-tested without a network); the
// resolver that feeds it is loader/dns_client.h.
//
// An address a name returned with TTL t (clamped to [min_ttl, max_ttl]) at
// time a is in force until a + t + grace: a client may use an answer for
// its TTL, and a connection made then may run for a while. A name is asked
// again at three quarters of the shortest TTL of its last answer, so an
// address that moves is followed within that TTL. When the server fails
// (timeout, refusal, SERVFAIL) the last good answer's addresses stay until
// its time + stale; an answer that the name does not exist (or has no
// address) is an answer: what it held before goes after its grace.
#pragma once

#include "core/base/net.h"
#include "core/policy/compiler.h"
#include "core/policy/config.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace authwall {

struct NameAnswer {
    IpAddress address;
    std::chrono::seconds ttl{0};
};

class NameTable {
  public:
    using Clock = std::chrono::steady_clock;

    explicit NameTable(const DnsSettings& settings) : settings_(settings) {}
    void set_settings(const DnsSettings& settings) { settings_ = settings; }

    // The names the rules use now: a new one is due at once, one no rule
    // uses any more is forgotten with its addresses.
    void want(const std::set<std::string>& names, Clock::time_point now);
    // The names to ask now: due and not already asked.
    std::vector<std::string> due(Clock::time_point now) const;
    void asked(const std::string& name);
    bool pending() const; // a name asked and not answered yet

    // The outcomes of a query. An empty answer is not_found.
    void answered(const std::string& name, const std::vector<NameAnswer>& answer, Clock::time_point now);
    void not_found(const std::string& name, Clock::time_point now);
    void failed(const std::string& name, const std::string& why, Clock::time_point now);

    // The addresses in force at `now`, every wanted name listed (a name
    // with none allows nothing); forgets what is no longer in force.
    NameAddresses in_force(Clock::time_point now);
    // When something is next due: a query, or an address leaving.
    std::optional<Clock::time_point> next_event(Clock::time_point now) const;

    // For <run_dir>/names.json and the log: each name, its addresses in
    // force and until when, its last error.
    nlohmann::json state(Clock::time_point now) const;

    struct Entry {
        std::map<IpAddress, Clock::time_point> valid_until; // the TTL's end (grace comes after)
        std::set<IpAddress> last_answer;                    // of the last good answer
        std::optional<Clock::time_point> last_good;
        Clock::time_point refresh_at{};
        bool in_flight = false;
        unsigned failures = 0; // in a row, since the last answer
        std::string error;     // the last failure's reason, while failing
    };
    const Entry* entry(const std::string& name) const;

  private:
    bool address_in_force(const Entry& e, const IpAddress& a, Clock::time_point until, Clock::time_point now) const;
    Clock::time_point leaves_at(const Entry& e, const IpAddress& a, Clock::time_point until) const;

    DnsSettings settings_;
    std::map<std::string, Entry> names_;
};

} // namespace authwall
