"""``--kafka-io java``: Beam's cross-language Java ReadFromKafka / WriteToKafka.

For clusters whose runner has the Java KafkaIO (Dataflow, Flink with a Java expansion
service): the runner then owns partition assignment, offsets (committed in finalize, as
the Python source does) and backpressure. The records are the same ``KafkaRecord``s the
Python source yields, so Decode and everything after it do not know which source ran.

Expanding these transforms needs a Java expansion service: ``--expansion-service HOST:PORT``
(the Flink job server's port 8097), or Beam's default, which starts one from a jar and so
needs Java and the jar (downloaded from Maven Central at submit time).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import apache_beam as beam
from apache_beam.transforms.window import TimestampedValue

from pipelines.io.kafka import KafkaSettings
from pipelines.records import KafkaRecord

# kafka-python setting -> Java client property
_JAVA_NAMES = {
    "security_protocol": "security.protocol",
    "sasl_mechanism": "sasl.mechanism",
    "ssl_cafile": "ssl.truststore.location",
    "ssl_certfile": "ssl.keystore.certificate.chain",
    "ssl_keyfile": "ssl.keystore.key",
}
_JAAS = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}


def java_client_config(kafka: KafkaSettings) -> dict[str, str]:
    """The Java client properties equivalent to newsflow's Kafka settings.

    The SASL password goes into ``sasl.jaas.config``, which becomes part of the submitted
    pipeline: where that matters, use a Kafka that authenticates workers another way.
    """
    c = kafka.client
    config = {"bootstrap.servers": kafka.bootstrap_servers, "request.timeout.ms": str(kafka.timeout_ms)}
    config.update({_JAVA_NAMES[k]: str(v) for k, v in c.items() if k in _JAVA_NAMES})
    if "ssl_cafile" in c:
        config["ssl.truststore.type"] = "PEM"
    if "ssl_keyfile" in c:
        config["ssl.keystore.type"] = "PEM"
    if c.get("ssl_check_hostname") is False:
        config["ssl.endpoint.identification.algorithm"] = ""
    if "sasl_mechanism" in c:
        user = c["sasl_plain_username"].replace('"', '\\"')
        password = c["sasl_plain_password"].replace('"', '\\"')
        config["sasl.jaas.config"] = f'{_JAAS[c["sasl_mechanism"]]} required username="{user}" password="{password}";'
    return config


def record_from_java(row: Any) -> KafkaRecord:
    """A row of ReadFromKafka(with_metadata=True) as the Python source's KafkaRecord."""
    value = row.value if row.value is not None else b""
    return KafkaRecord(row.topic, int(row.partition), int(row.offset), int(row.timestamp), row.key, bytes(value))


def _timestamped(record: KafkaRecord) -> TimestampedValue:
    return TimestampedValue(record, record.timestamp_ms / 1000.0)


class ReadArticlesJava(beam.PTransform):  # type: ignore[misc]
    """KafkaRecords from ``topics`` through Beam's Java KafkaIO."""

    def __init__(self, kafka: KafkaSettings, topics: list[str], group_id: str, start_from: str,
                 expansion_service: str | None) -> None:  # fmt: skip
        super().__init__()
        self._config = {
            **java_client_config(kafka),
            "group.id": group_id,
            # "committed" resumes the group, earliest if it has none, as the Python source does.
            "auto.offset.reset": "latest" if start_from == "latest" else "earliest",
        }
        self._topics = topics
        self._expansion_service = expansion_service

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        from apache_beam.io.kafka import ReadFromKafka

        read = ReadFromKafka(
            consumer_config=self._config,
            topics=self._topics,
            with_metadata=True,
            commit_offset_in_finalize=True,
            expansion_service=self._expansion_service,
        )
        return (
            pbegin
            | "ReadFromKafka" >> read
            | "ToKafkaRecord" >> beam.Map(record_from_java).with_output_types(KafkaRecord)
            | "EventTime" >> beam.Map(_timestamped).with_output_types(KafkaRecord)
        )


class WriteKafkaJava(beam.PTransform):  # type: ignore[misc]
    """(key, value) bytes made by ``encode`` to ``topic`` through Beam's Java KafkaIO.

    A record with no key (a dead letter of a keyless input) is written with an empty key:
    the cross-language coder has no null bytes.
    """

    def __init__(self, kafka: KafkaSettings, topic: str, encode: Callable[[Any], tuple[bytes, bytes]],
                 expansion_service: str | None) -> None:  # fmt: skip
        super().__init__()
        self._config = java_client_config(kafka)
        self._topic = topic
        self._encode = encode
        self._expansion_service = expansion_service

    def expand(self, pcoll: beam.PCollection) -> None:
        from apache_beam.io.kafka import WriteToKafka

        pairs = pcoll | "Encode" >> beam.Map(self._encode).with_output_types(tuple[bytes, bytes])
        pairs | "WriteToKafka" >> WriteToKafka(
            producer_config=self._config, topic=self._topic, expansion_service=self._expansion_service
        )
