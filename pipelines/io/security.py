"""Kafka security settings: SASL (PLAIN, SCRAM) and TLS, as kafka-python keyword arguments.

Each setting comes from its option, else from an environment variable:

==========================  ==================================  ==============================
option                      environment variable                kafka-python setting
==========================  ==================================  ==============================
``--security-protocol``     ``NEWSFLOW_KAFKA_SECURITY_PROTOCOL``  ``security_protocol``
``--sasl-mechanism``        ``NEWSFLOW_KAFKA_SASL_MECHANISM``     ``sasl_mechanism``
``--sasl-username``         ``NEWSFLOW_KAFKA_SASL_USERNAME``      ``sasl_plain_username``
``--sasl-password-file``    ``NEWSFLOW_KAFKA_SASL_PASSWORD``      ``sasl_plain_password``
``--ssl-cafile``            ``NEWSFLOW_KAFKA_SSL_CAFILE``         ``ssl_cafile``
``--ssl-certfile``          ``NEWSFLOW_KAFKA_SSL_CERTFILE``       ``ssl_certfile``
``--ssl-keyfile``           ``NEWSFLOW_KAFKA_SSL_KEYFILE``        ``ssl_keyfile``
``--ssl-no-check-hostname``                                     ``ssl_check_hostname=False``
==========================  ==================================  ==============================

The password is never an option value (argv is visible to every user in ``ps``): it
is read from ``--sasl-password-file`` or taken from ``NEWSFLOW_KAFKA_SASL_PASSWORD``
(how container platforms hand secrets over). No error message here contains it, and
``redact`` masks it for logs; ``protect_kafka_logs`` keeps it out of kafka-python's DEBUG
request dumps (SASL PLAIN sends it in clear, and kafka-python logs the request).

PLAINTEXT with nothing else gives ``{}``: kafka-python's defaults, as before.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
ENV_PREFIX = "NEWSFLOW_KAFKA_"
PASSWORD_ENV = ENV_PREFIX + "SASL_PASSWORD"
REDACTED = "***"
_SECRET_MARKERS = ("password", "secret", "token")


def kafka_client_config(o: Any, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """kafka-python keyword arguments for the security settings of ``o`` (NewsflowOptions or
    any object with the same attributes; a missing attribute counts as not given), falling
    back to ``environ`` (default ``os.environ``). Raises ValueError on an inconsistent or
    incomplete configuration; the message names options and variables, never the password.
    """
    env = os.environ if environ is None else environ

    def setting(attr: str) -> str | None:
        value = getattr(o, attr, None)
        if value is None or value == "":
            value = env.get(ENV_PREFIX + attr.upper()) or None
        return None if value is None else str(value).strip()

    protocol = (setting("security_protocol") or "PLAINTEXT").upper()
    if protocol not in PROTOCOLS:
        raise ValueError(
            f"unknown Kafka security protocol {protocol!r} (--security-protocol or "
            f"{ENV_PREFIX}SECURITY_PROTOCOL): expected one of {', '.join(PROTOCOLS)}"
        )
    sasl = protocol.startswith("SASL_")
    tls = protocol.endswith("SSL")
    config: dict[str, Any] = {} if protocol == "PLAINTEXT" else {"security_protocol": protocol}

    mechanism = setting("sasl_mechanism")
    username = setting("sasl_username")
    password_file = getattr(o, "sasl_password_file", None) or None
    if sasl:
        if mechanism is None:
            raise ValueError(_missing(protocol, "a SASL mechanism", "--sasl-mechanism", "SASL_MECHANISM"))
        mechanism = mechanism.upper()
        if mechanism not in MECHANISMS:
            raise ValueError(
                f"unknown SASL mechanism {mechanism!r} (--sasl-mechanism or {ENV_PREFIX}SASL_MECHANISM): "
                f"expected one of {', '.join(MECHANISMS)}"
            )
        if not username:
            raise ValueError(_missing(protocol, "a SASL username", "--sasl-username", "SASL_USERNAME"))
        password = _read_password(password_file) if password_file else env.get(PASSWORD_ENV)
        if not password:
            raise ValueError(_missing(protocol, "a SASL password", "--sasl-password-file", "SASL_PASSWORD"))
        if mechanism == "PLAIN" and not tls:
            log.warning("SASL PLAIN over SASL_PLAINTEXT sends the Kafka password unencrypted; prefer SASL_SSL")
        config.update(sasl_mechanism=mechanism, sasl_plain_username=username, sasl_plain_password=password)
    else:
        given = [
            name
            for name, value in (
                ("a SASL mechanism", mechanism),
                ("a SASL username", username),
                ("a SASL password file", password_file),
                ("a SASL password", env.get(PASSWORD_ENV)),
            )
            if value
        ]
        if given:
            raise ValueError(
                f"{' and '.join(given)} given, but security protocol {protocol} does not use SASL: "
                "use --security-protocol SASL_SSL (or SASL_PLAINTEXT)"
            )

    files = {key: setting(key) for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile")}
    no_check_hostname = bool(getattr(o, "ssl_no_check_hostname", False))
    if not tls:
        given = [_source(k) for k, v in files.items() if v]
        given += ["--ssl-no-check-hostname"] if no_check_hostname else []
        if given:
            raise ValueError(
                f"{', '.join(given)} given, but security protocol {protocol} does not use TLS: "
                "use --security-protocol SSL (or SASL_SSL)"
            )
        return config
    for key, path in files.items():
        if path:
            _check_readable(key, path)
    if files["ssl_keyfile"] and not files["ssl_certfile"]:
        raise ValueError("--ssl-keyfile needs --ssl-certfile (the client certificate it belongs to)")
    if files["ssl_cafile"]:
        try:
            ssl.create_default_context().load_verify_locations(cafile=files["ssl_cafile"])
        except (ssl.SSLError, ValueError) as exc:
            path = files["ssl_cafile"]
            raise ValueError(f"{_source('ssl_cafile')} {path!r} holds no PEM CA certificate: {exc}") from None
    config.update({k: v for k, v in files.items() if v})
    if no_check_hostname:
        log.warning("Kafka TLS without hostname verification: any certificate the CA signed is accepted")
        config["ssl_check_hostname"] = False
    return config


def redact(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with every password (any key naming a password, secret or token) as ``***``."""
    return {
        key: REDACTED if value is not None and any(m in key.lower() for m in _SECRET_MARKERS) else value
        for key, value in config.items()
    }


class SaslRequestFilter(logging.Filter):
    """Drops kafka-python's DEBUG dumps of SaslAuthenticateRequest: with PLAIN they hold the
    password in clear (``auth_bytes=b"user\\x00user\\x00password"``), with SCRAM the
    transcript a password can be guessed against offline."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "SaslAuthenticateRequest" not in record.getMessage()


# The kafka-python 3.0 loggers that dump requests at DEBUG.
KAFKA_REQUEST_LOGGERS = ("kafka.protocol.parser", "kafka.net.connection")


def protect_kafka_logs() -> None:
    """Install SaslRequestFilter on the kafka-python loggers that dump requests (idempotent).
    Costs nothing unless they log at DEBUG."""
    for name in KAFKA_REQUEST_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, SaslRequestFilter) for f in logger.filters):
            logger.addFilter(SaslRequestFilter())


def _missing(protocol: str, what: str, option: str, variable: str) -> str:
    return f"security protocol {protocol} needs {what}: {option} or {ENV_PREFIX}{variable}"


def _read_password(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        # Name the file and the reason, not its content.
        raise ValueError(f"cannot read --sasl-password-file {path!r}: {type(exc).__name__}") from None
    return text.rstrip("\r\n")


def _source(key: str) -> str:
    """How a setting is given: ``--ssl-cafile/NEWSFLOW_KAFKA_SSL_CAFILE``."""
    return f"--{key.replace('_', '-')}/{ENV_PREFIX}{key.upper()}"


def _check_readable(key: str, path: str) -> None:
    option = _source(key)
    if not os.path.isfile(path):
        raise ValueError(f"{option} {path!r} is not a file")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ValueError(f"{option} {path!r} is not readable: {exc.strerror}") from None
