"""Every newsflow flag, in one PipelineOptions subclass with help text.

The same names serve ``newsflow run`` and later modes; each flag is accepted with
hyphens or underscores (``--group-id``/``--group_id``), except ``--bootstrap-servers``.
"""

from __future__ import annotations

import argparse

from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.limits import ARTICLE_SECONDS, MAX_BYTES, MAX_JSON_DEPTH


def _flag(parser: argparse.ArgumentParser, name: str, dest: str | None = None, **kwargs: object) -> None:
    names = [f"--{name}"] if dest else [f"--{name}", f"--{name.replace('-', '_')}"]
    parser.add_argument(*names, dest=dest or name.replace("-", "_"), **kwargs)  # type: ignore[arg-type]


class NewsflowOptions(PipelineOptions):  # type: ignore[misc]
    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        # Beam's KafkaStreamsRunnerOptions owns --bootstrap_servers, hence the distinct dest.
        _flag(
            parser,
            "bootstrap-servers",
            dest="kafka_bootstrap_servers",
            default=None,
            help="Kafka HOST:PORT[,HOST:PORT]. Without it, an embedded local broker is started "
            "and the sample articles are published to it.",
        )
        # The same, under a name that cluster templates can pass with either separator.
        _flag(parser, "kafka-bootstrap-servers", default=None, help=argparse.SUPPRESS)
        _flag(
            parser,
            "kafka-io",
            default="python",
            choices=["python", "java"],
            help="python: newsflow's own Kafka source and sinks (kafka-python); java: Beam's cross-language "
            "ReadFromKafka/WriteToKafka, for cluster runners that have Java KafkaIO (same records).",
        )
        _flag(
            parser,
            "expansion-service",
            default=None,
            help="With --kafka-io java: HOST:PORT of a Java expansion service (e.g. the Flink job server's "
            "8097). Default: Beam starts one from its jar (needs Java and Maven Central).",
        )
        _flag(parser, "topics", default="news.raw", help="Comma-separated input topics.")
        _flag(parser, "group-id", default="newsflow", help="Consumer group whose committed offsets are resumed.")
        _flag(
            parser,
            "start-from",
            default="committed",
            choices=["committed", "earliest", "latest"],
            help="committed: resume the group (earliest if it has none); earliest/latest ignore commits.",
        )
        _flag(
            parser,
            "stop-at",
            default=None,
            help="Bounded mode: 'latest' (offsets present at start) or an ISO 8601 timestamp. "
            "Default: run until stopped.",
        )
        _flag(parser, "output-dir", default="out", help="Folder for Avro files ('' for none).")
        _flag(
            parser,
            "files-only",
            action="store_true",
            help="Write only the Avro files, not the Kafka output topics (a kafka: backfill source still reads Kafka).",
        )
        _flag(parser, "enriched-topic", default="news.enriched", help="Topic for enriched Avro records.")
        _flag(parser, "deadletter-topic", default="news.deadletter", help="Topic for dead-letter envelopes.")
        _flag(parser, "facts-topic", default="news.facts", help="Topic for one Avro record per fact (key: article id).")
        _flag(parser, "metrics-port", type=int, default=9464, help="Prometheus /metrics port (0: any free port).")
        _flag(parser, "metrics-addr", default="127.0.0.1", help="Address /metrics binds to.")
        _flag(parser, "max-articles", type=int, default=None, help="Stop cleanly after reading this many records.")
        _flag(parser, "duration", type=float, default=None, help="Stop cleanly after this many seconds.")
        _flag(parser, "batch-size", type=int, default=64, help="Articles per spaCy nlp.pipe batch (at most a bundle).")
        _flag(
            parser,
            "dedup-horizon",
            type=int,
            default=20_000,
            help="Distinct recent articles each worker remembers to find duplicates.",
        )
        _flag(
            parser,
            "dedup-memory-mb",
            type=float,
            default=200.0,
            help="Memory the duplicate index may use per worker (about 8 KB an article); caps the horizon.",
        )
        _flag(
            parser,
            "dedup-threshold",
            type=float,
            default=0.5,
            help="Near duplicate: at least this share of the shorter text's word 5-shingles in the other.",
        )
        _flag(
            parser,
            "skip-duplicates",
            action="store_true",
            help="Do not write duplicates to news.enriched and the files (they are always counted).",
        )
        _flag(
            parser,
            "kafka-timeout-ms",
            type=int,
            default=30_000,
            help="A Kafka request unanswered this long fails; failures are retried with backoff "
            "(0.5 s doubling to 30 s) while the pipeline waits.",
        )
        _flag(
            parser,
            "kafka-max-request-bytes",
            type=int,
            default=16 * 1024 * 1024,
            help="Largest record newsflow sends to Kafka (set it to the broker's message.max.bytes): "
            "a larger output record becomes a dead letter (stage write, reason refused_by_kafka).",
        )
        _flag(
            parser,
            "fail-fast",
            action="store_true",
            help="Exit (status 1) on the first Kafka failure (unreachable, missing topic, failed write) "
            "instead of waiting for Kafka with retries.",
        )
        _flag(parser, "max-message-bytes", type=int, default=MAX_BYTES, help="Larger inputs are dead-lettered.")
        _flag(
            parser,
            "max-json-depth",
            type=int,
            default=MAX_JSON_DEPTH,
            help="JSON nested deeper than this (arrays and objects) is dead-lettered.",
        )
        _flag(
            parser,
            "article-seconds",
            type=float,
            default=ARTICLE_SECONDS,
            help="A record that takes a stage longer than this is dead-lettered (reason timeout); 0: no limit.",
        )
        _flag(
            parser,
            "bad-dates",
            default="dead-letter",
            choices=["dead-letter", "fallback"],
            help="A published_at that is not a date, or is before 1900 or days ahead: dead-letter the "
            "article, or use the Kafka timestamp instead (flagged KAFKA_TIMESTAMP).",
        )
        _flag(parser, "poll-timeout-ms", type=int, default=200, help="Longest blocking poll per partition.")
        _flag(parser, "max-poll-records", type=int, default=64, help="Records per poll (and at most per bundle).")
        _flag(
            parser,
            "process-count",
            type=int,
            default=1,
            help="Processes sharing the input topics (same --group-id): each reads its own partitions.",
        )
        _flag(
            parser,
            "process-index",
            type=int,
            default=0,
            help="This process's number, 0 to --process-count - 1: it reads every process-count-th "
            "partition (topics and partitions sorted) from this one.",
        )
        _flag(parser, "partitions", type=int, default=1, help="Partitions per topic the embedded broker creates.")
        _flag(
            parser,
            "sample",
            default=None,
            help="JSON Lines file the embedded mode publishes first (default: the shipped sample).",
        )
        _flag(
            parser,
            "monitor",
            action="store_true",
            help="Also start Debian's Prometheus (127.0.0.1:9090 if free) scraping this run, with "
            "the rules and alerts of deploy/prometheus/.",
        )
        _flag(
            parser,
            "progress",
            default="auto",
            choices=["auto", "line", "log", "off"],
            help="Live progress: a rewritten line on a terminal, log lines otherwise.",
        )
        # Kafka security
        # Defaults are None, not the NEWSFLOW_KAFKA_* value, so --help never prints a secret;
        # pipelines.io.security.kafka_client_config falls back to the environment.
        _flag(
            parser,
            "security-protocol",
            type=str.upper,
            default=None,
            choices=["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"],
            help="Kafka security protocol (default: $NEWSFLOW_KAFKA_SECURITY_PROTOCOL, else PLAINTEXT).",
        )
        _flag(
            parser,
            "sasl-mechanism",
            type=str.upper,
            default=None,
            choices=["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"],
            help="SASL mechanism for SASL_PLAINTEXT/SASL_SSL (default: $NEWSFLOW_KAFKA_SASL_MECHANISM).",
        )
        _flag(parser, "sasl-username", default=None, help="SASL user (default: $NEWSFLOW_KAFKA_SASL_USERNAME).")
        _flag(
            parser,
            "sasl-password-file",
            default=None,
            help="File holding the SASL password (one line). Without it: $NEWSFLOW_KAFKA_SASL_PASSWORD. "
            "There is no password option: the command line is visible to every local user.",
        )
        _flag(
            parser,
            "ssl-cafile",
            default=None,
            help="PEM CA bundle the broker certificate must chain to, for SSL/SASL_SSL "
            "(default: $NEWSFLOW_KAFKA_SSL_CAFILE, else the system CAs).",
        )
        _flag(
            parser,
            "ssl-certfile",
            default=None,
            help="PEM client certificate for mutual TLS (default: $NEWSFLOW_KAFKA_SSL_CERTFILE).",
        )
        _flag(
            parser,
            "ssl-keyfile",
            default=None,
            help="PEM private key of --ssl-certfile, unencrypted (default: $NEWSFLOW_KAFKA_SSL_KEYFILE).",
        )
        _flag(
            parser,
            "ssl-no-check-hostname",
            action="store_true",
            help="Accept a broker certificate whose name does not match the broker address (unsafe).",
        )
