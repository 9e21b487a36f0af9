// SPDX-License-Identifier: Apache-2.0
// authctl watch without an event log: authwall's events from the journal.
// Every event authwall writes (pam_authwall, cgroupd, authctl, the loader)
// carries AUTHWALL_EVENT and its facts as AUTHWALL_<NAME> fields; this
// turns them back into the event log's JSON objects, so one printer and one
// set of filters serve both sources.
#pragma once

#include "core/base/result.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace authctl {

// Every event name authwall writes: the session events, then the loader's
// decision events.
const std::vector<std::string>& journal_event_names();

// The event of one journal entry: its AUTHWALL_<NAME> fields ("NAME=value")
// as the event log's keys (lower case), with the event log's types (numbers
// for counts and ids, null for an absent rhost), and `time` from the
// entry's realtime stamp. Other fields are ignored. A numeric field that is
// not a number is left out rather than guessed.
nlohmann::json journal_event(const std::vector<std::string>& fields, uint64_t realtime_us);

// Follows the system journal's authwall events (only `events`, when not
// empty), from its start or from now, calling `on_event` for each until it
// returns false. An error when the journal cannot be read.
authwall::Status follow_journal(const std::vector<std::string>& events, bool from_start,
                                const std::function<bool(const nlohmann::json&)>& on_event);

} // namespace authctl
