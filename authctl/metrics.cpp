// SPDX-License-Identifier: Apache-2.0
// authctl metrics: the text of core/metrics, OpenMetrics or (--format
// prometheus) the text format of node_exporter's textfile collector
// (authctl metrics --format prometheus > dir/authwall.prom.tmp && mv ...).
// Without a data plane it prints authwall_up 0 and exits 0, so a collector
// always gets a valid exposition.
#include "authctl/context.h"

#include "core/metrics/metrics.h"

#include <iostream>

namespace authctl {

using namespace authwall;

int cmd_metrics(const Context& ctx, const std::string& format)
{
    auto text =
        collect_metrics(ctx.config, format == "prometheus" ? MetricsFormat::Prometheus : MetricsFormat::OpenMetrics);
    if (!text)
        return fail(text.error());
    std::cout << *text << std::flush;
    return std::cout ? 0 : 1;
}

} // namespace authctl
