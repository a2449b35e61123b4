"""Cluster mode without a cluster: the pipeline builds with a cluster runner's options (and is
not started), the Java KafkaIO switch gives the Python source's records, workers find a
metrics port, and the CLI routes Beam's flags."""

from __future__ import annotations

import socket
import urllib.request
from collections import namedtuple
from typing import Any

import pytest
from apache_beam.options.pipeline_options import StandardOptions
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from pipelines import cli, graph
from pipelines.io.java_kafka import java_client_config, record_from_java
from pipelines.io.kafka import KafkaSettings
from pipelines.local.broker import EmbeddedBroker, free_port
from pipelines.metrics import serve_first_free
from pipelines.options import NewsflowOptions
from pipelines.records import KafkaRecord

PORTABLE = ["--runner=PortableRunner", "--job_endpoint=127.0.0.1:8099", "--artifact_endpoint=127.0.0.1:8098",
            "--environment_type=EXTERNAL", "--environment_config=localhost:50000", "--streaming"]  # fmt: skip
FLINK = ["--runner=FlinkRunner", "--flink_master=127.0.0.1:8081", "--flink_version=1.20", "--streaming"]


def _options(bootstrap: str, *flags: str) -> NewsflowOptions:
    parser = cli._options_parser("test")
    o, _ = parser.parse_known_args(["--kafka-bootstrap-servers", bootstrap, "--output-dir", "", *flags])
    return NewsflowOptions(flags=[], **vars(o))


@pytest.mark.integration
@pytest.mark.parametrize("beam_args", [PORTABLE, FLINK], ids=["portable", "flink"])
def test_pipeline_builds_for_a_cluster_runner_without_starting(broker: EmbeddedBroker, beam_args: list[str]) -> None:
    p = graph.cluster_pipeline(_options(broker.bootstrap), beam_args)
    assert p.options.view_as(StandardOptions).runner == beam_args[0].split("=")[1]
    assert p.options.view_as(StandardOptions).streaming
    proto = p.to_runner_api()
    labels = {t.unique_name for t in proto.components.transforms.values()}
    for label in ("ReadArticles", "Enrich", "Enrich/ExtractEntities", "WriteAvro", "WriteFacts",
                  "DeadLettersDecode", "ReadArticles/ReadPartitions"):  # fmt: skip
        assert label in labels, sorted(labels)[:40]
    # --output-dir '': the Kafka topics are the sinks on a cluster, no worker-local files
    assert not any("ToFiles" in label for label in labels)
    assert any(label.endswith("WriteAvro/ToKafka") for label in labels)


def test_cli_needs_a_runner_for_beam_flags_and_a_broker_for_a_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as no_runner:
        cli.main(["run", "--job_endpoint=127.0.0.1:8099"])
    assert no_runner.value.code == 2 and "need --runner" in capsys.readouterr().err
    with pytest.raises(SystemExit) as no_kafka:
        cli.main(["run", *PORTABLE])
    assert no_kafka.value.code == 2 and "--bootstrap-servers is required" in capsys.readouterr().err


@pytest.mark.integration
def test_java_kafka_rows_become_the_python_sources_records(broker: EmbeddedBroker) -> None:
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    producer.send("news.raw", key=b"k1", value=b'{"text": "one"}')
    producer.send("news.raw", value=b'{"text": "no key"}')
    producer.flush()
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap)
    tp = TopicPartition("news.raw", 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    polled = consumer.poll(timeout_ms=5000)[tp]
    consumer.close()
    # What Java's ReadFromKafka(with_metadata=True) yields per record (its Row's fields).
    row = namedtuple("row", "topic partition offset timestamp timestampTypeId timestampTypeName key value headers")
    assert len(polled) == 2
    for rec in polled:
        java = row(rec.topic, rec.partition, rec.offset, rec.timestamp, 0, "CreateTime", rec.key, rec.value, [])
        python = KafkaRecord(rec.topic, rec.partition, rec.offset, rec.timestamp, rec.key, rec.value)
        assert record_from_java(java) == python
    assert record_from_java(row("t", 0, 1, 2, 0, "", None, None, [])).value == b""


def test_java_client_properties_carry_security() -> None:
    plain = java_client_config(KafkaSettings("a:9092,b:9092", timeout_ms=5000))
    assert plain == {"bootstrap.servers": "a:9092,b:9092", "request.timeout.ms": "5000"}
    client: dict[str, Any] = {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "news",
        "sasl_plain_password": 'p"w',
        "ssl_cafile": "/ca.pem",
    }
    secure = java_client_config(KafkaSettings("a:9093", client=client))
    assert secure["security.protocol"] == "SASL_SSL" and secure["sasl.mechanism"] == "SCRAM-SHA-512"
    assert secure["sasl.jaas.config"] == (
        'org.apache.kafka.common.security.scram.ScramLoginModule required username="news" password="p\\"w";'
    )
    assert secure["ssl.truststore.location"] == "/ca.pem" and secure["ssl.truststore.type"] == "PEM"


def test_a_worker_takes_the_next_free_metrics_port() -> None:
    first = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", first))
        taken.listen()
        import pipelines.metrics as metrics

        saved = metrics._server_port
        metrics._server_port = None  # as in a fresh SDK worker process
        try:
            port = serve_first_free(first, "127.0.0.1", tries=8)
        finally:
            metrics._server_port = saved
    assert port is not None and first < port < first + 8
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        assert b"newsflow_" in r.read()
