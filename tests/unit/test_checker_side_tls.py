"""TLS to the restored instance: always required, verified when the RDS CA bundle is deployed."""

from pathlib import Path

from pydantic import SecretStr
from restoredrill.checksuite import ConnectionTarget
from restoredrill.domain.checker_side import with_ca_bundle

TARGET = ConnectionTarget(host="db.example", user="admin", password=SecretStr("x" * 12))


def test_without_a_bundle_tls_is_required_but_not_verified(tmp_path: Path) -> None:
    # Given no bundle deployed (the file is absent)
    target = with_ca_bundle(TARGET, str(tmp_path / "rds-ca-bundle.pem"))
    # Then the connection is encrypted, without verification
    assert target.ssl == "require" and target.ca_bundle_pem is None


def test_a_request_cannot_turn_tls_off() -> None:
    target = with_ca_bundle(TARGET.model_copy(update={"ssl": "disable"}), None)
    assert target.ssl == "require"


def test_with_the_bundle_the_certificate_and_host_are_verified(tmp_path: Path) -> None:
    # Given the RDS CA bundle deployed beside the policy
    bundle = tmp_path / "rds-ca-bundle.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    # When the checker builds its connection target
    target = with_ca_bundle(TARGET, str(bundle))
    # Then it verifies the certificate chain and the host name against that bundle
    assert target.ssl == "verify-full"
    assert target.ca_bundle_pem == bundle.read_text()
