// SPDX-License-Identifier: Apache-2.0
// Session lifecycle events: journald records with AUTHWALL_EVENT=open|close|
// revoke|reaped|expired and the session's correlation id; a syslog line
// (LOG_AUTHPRIV) where there is no journal. Fields: docs/INTEGRATIONS.md.
#pragma once

#include "core/base/journal.h"
#include "core/dataplane/maps.h"
#include "core/session/record.h"

#include <string>

namespace authwall {

// What a session did, for the events that end or revoke it (authpf-style
// accounting): how long it lasted and its counters at that moment.
struct SessionTally {
    uint64_t duration_s = 0;
    SessionStats counters;
};

class EventSink {
  public:
    virtual ~EventSink() = default;
    // `event` is open, close, revoke, reaped, expired; `detail` free text;
    // `tally` with close, revoke, reaped and expired when the counters could
    // be read.
    virtual void session_event(const std::string& event, const SessionRecord& record, const std::string& detail,
                               const SessionTally* tally = nullptr) = 0;
};

// Journal when /run/systemd/journal/socket exists, else syslog; and, when
// `event_log` is set (authwall.toml), one JSON line per event appended there.
class JournalSink final : public EventSink {
  public:
    // `journal_socket`: the journal's socket (another one in tests).
    explicit JournalSink(std::string identifier, std::filesystem::path event_log = {},
                         std::string journal_socket = kJournalSocket)
        : identifier_(std::move(identifier)), event_log_(std::move(event_log)),
          journal_socket_(std::move(journal_socket))
    {
    }
    void session_event(const std::string& event, const SessionRecord& record, const std::string& detail,
                       const SessionTally* tally = nullptr) override;

  private:
    std::string identifier_;
    std::filesystem::path event_log_;
    std::string journal_socket_;
};

// Whether this process's stderr is a journal stream (systemd's
// $JOURNAL_STREAM names its device:inode): a daemon that sends structured
// records to the journal then skips the plain stderr line, so each event
// is in the journal once.
bool stderr_is_journal();

} // namespace authwall
