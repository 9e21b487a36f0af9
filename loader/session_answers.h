// SPDX-License-Identifier: Apache-2.0
// The DNS answers sessions receive to their own queries, which the data
// plane hands over (bpf/lib/dns_watch.bpf.h, the dns_answers ring buffer):
// for a name the session's policy allows (a name of its rules, or one under
// a wildcard "*.example.com"), each answered address goes to names_seen for
// that session only, with what the name's rules allow, until its TTL
// (clamped) and [dns] grace_sec have passed (docs/POLICY.md, "DNS names").
#pragma once

#include "core/base/result.h"
#include "core/base/abi.h"
#include "core/dataplane/maps.h"
#include "core/policy/config.h"
#include "core/policy/names_file.h"
#include "core/policy/policy.h"
#include "loader/names.h"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct ring_buffer;

namespace authwall {

// One name rule of a policy, as names_seen grants it.
struct NameRuleGrant {
    std::string pattern; // "db.example.com", or "*.example.com" for the names under it
    aw_name_grant grant{};
};
// By policy id (the fallback's rules under AW_POLICY_FALLBACK when it
// names a policy).
using PolicyNameRules = std::map<uint32_t, std::vector<NameRuleGrant>>;
PolicyNameRules policy_name_rules(const std::vector<Policy>& policies, const std::map<std::string, uint32_t>& ids,
                                  const Fallback& fallback);

// Whether `name` (lower case, no final dot) is `pattern` or, for
// "*.example.com", a name under example.com (not example.com itself).
bool name_matches(const std::string& pattern, const std::string& name);

// A DNS response: the name asked, and its A and AAAA answers with their TTLs
// (CNAME chains followed, by c-ares' parsers). nullopt for anything but a
// well-formed answer to one question without error.
struct DnsResponse {
    std::string name;
    std::vector<NameAnswer> answer;
};
std::optional<DnsResponse> parse_dns_response(const uint8_t* data, size_t length);

// What names_seen holds for an address after an answer: the grants it had
// (when not expired) and the new ones, without repeats, at most
// AW_NAME_GRANTS (the newest kept), valid until the later of both expiries.
// Returns the grants left out.
size_t merge_grants(aw_name_seen& into, const std::optional<aw_name_seen>& had,
                    const std::vector<aw_name_grant>& grants, uint64_t expires_ns, uint64_t now_ns);

class SessionAnswers {
  public:
    // nullopt (not an error) when the pins have no dns_answers map (an
    // older data plane is in place until the loader installs its own).
    static Result<std::unique_ptr<SessionAnswers>> open(const std::filesystem::path& pin_dir, PinnedMaps& maps);
    ~SessionAnswers();
    SessionAnswers(const SessionAnswers&) = delete;
    SessionAnswers& operator=(const SessionAnswers&) = delete;

    void set_rules(PolicyNameRules rules) { rules_ = std::move(rules); }
    void set_settings(const DnsSettings& settings) { settings_ = settings; }
    int epoll_fd() const;
    void poll(); // hands every waiting answer over

    using Counts = SessionAnswerCounts; // published in names.json (core/policy/names_file.h)
    const Counts& counts() const { return counts_; }

  private:
    SessionAnswers(PinnedMaps& maps) : maps_(maps) {}
    static int on_sample(void* self, void* data, size_t size);
    void answer(const aw_dns_answer& a);

    PinnedMaps& maps_;
    ring_buffer* rb_ = nullptr;
    int map_fd_ = -1;
    PolicyNameRules rules_;
    DnsSettings settings_;
    Counts counts_;
};

} // namespace authwall
