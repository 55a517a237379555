"""Settings of the edge that refuse what cannot work, naming the variable: TLS files that
do not go together, plaintext where other machines listen, Kafka SASL without a password."""

from __future__ import annotations

from pathlib import Path

import pytest

from humiao.config import KafkaSecuritySettings, ServiceSettings
from humiao.edge import (
    EdgeConfigError,
    bearer,
    client_credentials,
    is_loopback,
    server_credentials,
)
from humiao.runtime import listener_credentials


def test_loopback_addresses() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.9.9.9", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.5", "desk.internal", ""))


def test_tls_files_go_together(tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    with pytest.raises(EdgeConfigError, match="HUMIAO_TLS_KEY_FILE"):
        server_credentials(cert, None, None)
    with pytest.raises(EdgeConfigError, match="HUMIAO_TLS_CLIENT_CA_FILE"):
        server_credentials(None, None, cert)
    with pytest.raises(EdgeConfigError, match="HUMIAO_TLS_KEY_FILE: cannot read"):
        server_credentials(cert, tmp_path / "k.pem", None)
    assert server_credentials(None, None, None) is None


def test_plaintext_only_where_nobody_else_listens() -> None:
    assert listener_credentials(ServiceSettings(humiao_grpc_host="127.0.0.1")) is None
    with pytest.raises(SystemExit, match="HUMIAO_GRPC_ALLOW_PLAINTEXT"):
        listener_credentials(ServiceSettings(humiao_grpc_host="0.0.0.0"))
    allowed = ServiceSettings(humiao_grpc_host="0.0.0.0", humiao_grpc_allow_plaintext=True)
    assert listener_credentials(allowed) is None


def test_client_tls_only_when_asked(tmp_path: Path) -> None:
    assert client_credentials({}) is None
    assert client_credentials({"HUMIAO_TLS": "true"}) is not None
    with pytest.raises(EdgeConfigError, match="HUMIAO_TLS_CA_FILE"):
        client_credentials({"HUMIAO_TLS_CA_FILE": str(tmp_path / "missing.pem")})
    with pytest.raises(EdgeConfigError, match="HUMIAO_TLS_CLIENT_KEY_FILE"):
        client_credentials({"HUMIAO_TLS": "1", "HUMIAO_TLS_CLIENT_CERT_FILE": "c.pem"})


def test_bearer_tokens() -> None:
    assert bearer([("authorization", "Bearer abc ")]) == "abc"
    assert bearer([("Authorization", b"bearer xyz")]) == "xyz"
    assert bearer([("authorization", "Basic abc")]) == ""
    assert bearer([]) == ""


def test_kafka_security_options() -> None:
    assert KafkaSecuritySettings().client_config() == {"security_protocol": "PLAINTEXT"}
    sasl = KafkaSecuritySettings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="humiao",
                                 kafka_sasl_password="s3cret",
                                 kafka_ssl_cafile=Path("/etc/kafka/ca.pem"))
    config = sasl.client_config()
    assert config["sasl_mechanism"] == "SCRAM-SHA-512"
    assert config["sasl_plain_password"] == "s3cret"
    assert config["ssl_cafile"] == "/etc/kafka/ca.pem" and config["ssl_check_hostname"]
    with pytest.raises(ValueError, match="KAFKA_SASL_PASSWORD"):
        KafkaSecuritySettings(kafka_security_protocol="SASL_PLAINTEXT").client_config()
    assert "sasl_plain_password" not in repr(sasl)
