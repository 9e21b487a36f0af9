// SPDX-License-Identifier: Apache-2.0
// What authwall-loader writes for each decision event it drains from the
// ring buffer: who (user, uid, session, correlation id, process), what
// (direction, protocol, address, port), and why (verdict, reason, policy
// name, the deciding rule as file:line and its text), to the journal (or
// stderr) and the JSON event log. Field list: docs/INTEGRATIONS.md.
#pragma once

#include "core/dataplane/events.h"
#include "core/policy/catalog.h"
#include "core/session/record.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <unordered_map>

namespace authwall {

class DecisionLog {
  public:
    DecisionLog(bool journal, std::filesystem::path event_log, std::filesystem::path run_dir)
        : journal_(journal), event_log_(std::move(event_log)), run_dir_(std::move(run_dir))
    {
    }

    // The policies now in force: their names by kernel id and their rules.
    void policies_changed(std::map<uint32_t, std::string> names, RuleCatalog catalog);

    void write(const DecisionEvent& e);

  private:
    struct SessionFacts {
        std::string user, correlation;
    };
    const SessionFacts& session(uint64_t id);
    // The event as the JSON event log holds it; the journal gets each field.
    nlohmann::json fields(const DecisionEvent& e);

    bool journal_;
    std::filesystem::path event_log_;
    std::filesystem::path run_dir_;
    std::map<uint32_t, std::string> names_;
    RuleCatalog catalog_;
    std::unordered_map<uint64_t, SessionFacts> sessions_; // from the session records, bounded
};

} // namespace authwall
