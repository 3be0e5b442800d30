"""The lab's certificate authority: one CA, one server certificate per TLS endpoint.

Clients verify the simulators against ``.lab/ca/ca.pem`` (validate_certs stays true, as it should
at a real site). The CA is made once and reused, so a CA bundle handed to a browser or a
``REQUESTS_CA_BUNDLE`` stays valid across ``lab down``/``lab up``.
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .state import State

VALID_DAYS = 825


def _write_key(path: Path, key) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    path.chmod(0o600)


def ensure_ca(state: State) -> tuple[Path, Path]:
    """Return (ca.pem, ca.key), creating them on first use."""
    cert_path, key_path = state.ca / "ca.pem", state.ca / "ca.key"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "twinsite lab CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write_key(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def server_cert(state: State, name: str, hosts: list[str]) -> tuple[Path, Path]:
    """Issue (or reuse) a certificate for ``name`` valid for ``hosts`` (DNS names or IPs).

    Returns (cert.pem, key.pem); cert.pem holds the leaf then the CA, as most servers expect.
    """
    cert_path, key_path = state.ca / f"{name}.pem", state.ca / f"{name}.key"
    ca_pem, ca_key_path = ensure_ca(state)
    ca_cert = x509.load_pem_x509_certificate(ca_pem.read_bytes())
    if cert_path.exists() and key_path.exists() and _covers(cert_path, hosts, ca_cert):
        return cert_path, key_path
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + ca_pem.read_bytes())
    return cert_path, key_path


def _covers(cert_path: Path, hosts: list[str], ca_cert) -> bool:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    if cert.issuer != ca_cert.subject:
        return False
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    have = {str(v) for v in san.get_values_for_type(x509.DNSName)}
    have |= {str(v) for v in san.get_values_for_type(x509.IPAddress)}
    remaining = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    return set(hosts) <= have and remaining > datetime.timedelta(days=30)
