// SPDX-License-Identifier: Apache-2.0
// Structured records for the journal, sent over its native protocol
// (systemd.journal-fields(7); "Native Journal Protocol" in systemd's docs):
// one datagram of fields to /run/systemd/journal/socket, which is what
// sd_journal_send() does. Written here so that the processes that log a
// session event — pam_authwall.so inside login, su and cron, which do not
// link libsystemd — need not load libsystemd for it.
#pragma once

#include "core/base/result.h"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace authwall {

inline constexpr const char* kJournalSocket = "/run/systemd/journal/socket";

// FIELD=value pairs; names are upper case letters, digits and '_', not
// starting with '_' (the journal's rule; such fields are dropped by it).
using JournalFields = std::vector<std::pair<std::string_view, std::string>>;

// The datagram for `fields`: "NAME=value\n" each, or, for a value holding a
// newline, "NAME\n", its length as 64-bit little endian, the value, "\n".
std::string journal_datagram(const JournalFields& fields);

// Sends one record to `socket` (the journal's, unless a test names another).
// An error when the journal cannot be reached or refuses the datagram: the
// caller decides where else the record goes.
Status journal_send(const JournalFields& fields, const std::string& socket = kJournalSocket);

} // namespace authwall
