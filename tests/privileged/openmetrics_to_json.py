#!/usr/bin/python3
# Reads an OpenMetrics exposition on stdin with the parser of Debian's
# python3-prometheus-client (which refuses anything the format does not
# allow: a missing "# EOF", a counter sample without _total, a unit that is
# not the name's suffix...) and prints its samples as JSON for
# tests/privileged/test_metrics.cpp. Exit 1 with the parser's error.
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

try:
    samples = []
    for family in text_string_to_metric_families(sys.stdin.read()):
        for s in family.samples:
            samples.append({"family": family.name, "type": family.type, "unit": family.unit,
                            "help": family.documentation, "name": s.name, "labels": s.labels,
                            "value": s.value})
except Exception as e:  # the parser raises ValueError and others
    print("openmetrics_to_json: " + str(e), file=sys.stderr)
    sys.exit(1)
print(json.dumps(samples))
