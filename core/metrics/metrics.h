// SPDX-License-Identifier: Apache-2.0
// authwall's metrics in the OpenMetrics text format (https://openmetrics.io)
// or the Prometheus text format of node_exporter's textfile collector:
// `authctl metrics` prints them and authwall-cgroupd can write them to a
// file ([metrics] in authwall.toml).
// One function makes the text for both; docs/INTEGRATIONS.md ("Metrics")
// lists every metric.
#pragma once

#include "core/base/result.h"
#include "core/dataplane/maps.h"
#include "core/metrics/reloads.h"
#include "core/policy/config.h"
#include "core/policy/names_file.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace authwall {

// What one scrape read, before it is written as text.
struct MetricsSnapshot {
    struct Policy {
        std::string name;
        uint64_t logins = 0, containers = 0; // open sessions
        SessionStats counters;               // open sessions' and ended ones' (policy_totals)
    };
    bool up = false;                     // maps pinned and programs attached
    std::map<uint32_t, Policy> policies; // by policy id
    uint64_t events_suppressed = 0;
    RefusalCounts refusals; // the host's, by hook and reason
    std::optional<ReloadRecord> reloads;
    PinnedMaps::Fill sessions_fill, users_fill;
    struct NftDrift {
        bool table_present = false;
        uint64_t missing = 0, stray = 0;
    };
    std::optional<NftDrift> nft; // only with nft_mirror on
    // The DNS names of the rules in force, from the loader's names.json:
    // how many are resolved, failing (their last good addresses stay until
    // dns.stale_sec) or without an address, and the addresses in force.
    struct DnsNames {
        uint64_t resolved = 0, failing = 0, no_address = 0, addresses = 0;
        std::optional<SessionAnswerCounts> session_answers; // since the loader started
    };
    std::optional<DnsNames> dns; // only when the loader published names.json
};

// Reads everything from the pins under config.pin_dir and the loader's
// reload record and DNS names in config.run_dir. No pins at all is not an
// error: the snapshot says up = false. Errors: pins that exist but cannot
// be read.
Result<MetricsSnapshot> read_metrics(const Config& config);

// The text of a snapshot: OpenMetrics (ending with "# EOF"), or the
// Prometheus text format (the same samples; a counter's TYPE and HELP name
// its _total samples, no UNIT, no EOF).
std::string render_metrics(const MetricsSnapshot& snapshot, MetricsFormat format = MetricsFormat::OpenMetrics);

// Both: what `authctl metrics` prints and cgroupd writes.
Result<std::string> collect_metrics(const Config& config, MetricsFormat format = MetricsFormat::OpenMetrics);

} // namespace authwall
