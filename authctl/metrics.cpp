// authctl metrics: the OpenMetrics text of core/metrics, for node_exporter's
// textfile collector (authctl metrics > dir/authwall.prom.tmp && mv ...) or
// a look by hand. Without a data plane it prints authwall_up 0 and exits 0,
// so a collector always gets a valid exposition.
#include "authctl/context.h"

#include "core/metrics/metrics.h"

#include <iostream>

namespace authctl {

using namespace authwall;

int cmd_metrics(const Context& ctx)
{
    auto text = collect_metrics(ctx.config);
    if (!text)
        return fail(text.error());
    std::cout << *text << std::flush;
    return std::cout ? 0 : 1;
}

} // namespace authctl
