"""Dataflow Flex Template entry point: `newsflow run` with the template's arguments.

The launcher (/opt/google/dataflow/python_template_launcher, via FLEX_TEMPLATE_PYTHON_PY_FILE
in deploy/docker/Dockerfile) runs this file with every template parameter as --name=value
plus Dataflow's own pipeline options (--runner, --project, --region, --temp_location,
--sdk_container_image, ...). newsflow parses its own flags and hands the rest to Beam.
"""

from __future__ import annotations

import sys

from pipelines.cli import main

# Cluster defaults, given first so a template parameter can still override them (argparse
# keeps the last value): no Avro files on a worker's local disk (the Kafka topics are the
# sinks), /metrics reachable from outside the worker for Prometheus (ports 9464..9467), and
# return once the job is submitted: the launcher must exit after run(), not wait for the stream.
CLUSTER_DEFAULTS = ["--output-dir=", "--metrics-addr=0.0.0.0", "--no_wait_until_finish"]

if __name__ == "__main__":
    sys.exit(main(["run", *CLUSTER_DEFAULTS, *sys.argv[1:]]))
