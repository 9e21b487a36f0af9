#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Reads an exposition on stdin with the parsers of Debian's
# python3-prometheus-client and prints its samples as JSON for
# tests/privileged/test_metrics.cpp. By default the OpenMetrics parser
# (which refuses anything the format does not allow: a missing "# EOF", a
# counter sample without _total, a unit that is not the name's suffix...);
# with the argument "prometheus", the parser of the Prometheus text format
# (node_exporter's textfile collector's). Exit 1 with the parser's error.
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
from prometheus_client.parser import text_string_to_metric_families as prometheus

parse = prometheus if sys.argv[1:] == ["prometheus"] else openmetrics
try:
    samples = []
    for family in parse(sys.stdin.read()):
        for s in family.samples:
            samples.append({"family": family.name, "type": family.type, "unit": family.unit,
                            "help": family.documentation, "name": s.name, "labels": s.labels,
                            "value": s.value})
except Exception as e:  # the parsers raise ValueError and others
    print("openmetrics_to_json: " + str(e), file=sys.stderr)
    sys.exit(1)
print(json.dumps(samples))
