// SPDX-License-Identifier: Apache-2.0
// The loader's DNS names: which names the policies in force use, asking
// the resolver when each is due, and the addresses they stand for now,
// which the loader compiles into the rules (docs/POLICY.md, "DNS names").
// The state is published to <run_dir>/names.json for operators.
#pragma once

#include "core/base/fd.h"
#include "core/base/result.h"
#include "core/policy/names_file.h"
#include "core/policy/policy.h"
#include "loader/dns_client.h"
#include "loader/names.h"

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <vector>

namespace authwall {

// The names the rules of these policies allow (wildcards aside).
std::set<std::string> policy_names(const std::vector<Policy>& policies);

class PolicyNames {
  public:
    static constexpr size_t kMaxInFlight = 64;                  // queries asked and not answered, at most
    static constexpr std::chrono::seconds kAnswersPublished{1}; // see note_session_answers
    // Reads /etc/resolv.conf when [dns] names no server: before confinement.
    static Result<std::unique_ptr<PolicyNames>> create(const DnsSettings& settings, std::filesystem::path run_dir);

    // The names of a new load: those not known yet are asked now, and
    // waited for up to the query timeout, so the first generation that
    // holds a rule already holds its addresses.
    void use(const std::vector<Policy>& policies, const DnsSettings& settings);
    // The addresses in force now; what the next changed() compares with.
    NameAddresses addresses();

    // For the event loop: readable when an answer or a due time came.
    std::vector<int> fds() const { return {client_->fd(), schedule_.get()}; }
    // Handles what is ready; true when the addresses in force changed
    // since the last addresses().
    bool ready();
    // What the sessions' own answers came to, for names.json: published
    // at once, or within a second of the last publication (a session
    // asking a thousand names a second writes the file once a second).
    void note_session_answers(const SessionAnswerCounts& counts);

  private:
    PolicyNames(NameTable table, Fd schedule, std::filesystem::path run_dir)
        : table_(std::move(table)), schedule_(std::move(schedule)), run_dir_(std::move(run_dir))
    {
    }
    void answer(const std::string& name, DnsResult result);
    void ask_due();
    void arm();
    void publish();

    NameTable table_;
    std::unique_ptr<DnsClient> client_;
    Fd schedule_;
    std::filesystem::path run_dir_;
    NameAddresses compiled_; // what the last addresses() returned
    DnsSettings settings_;
    std::optional<SessionAnswerCounts> session_answers_;
    NameTable::Clock::time_point published_at_{};
    bool unpublished_ = false; // session_answers_ changed since publish()
};

} // namespace authwall
