"""newsflow: a streaming news ingestion pipeline (Kafka in, Apache Beam through, Avro out)."""

__version__ = "0.1.0"
