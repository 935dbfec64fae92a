"""Throw-away X.509 material for DICOM TLS tests, made with the ``openssl`` command line.

:func:`make_pki` builds a CA with a server and a client certificate it signed, and a second,
unrelated CA with its own server certificate (for "signed by another CA" failures).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pki:
    """PEM files in one folder."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca_cert: Path
    other_server_cert: Path
    other_server_key: Path


def openssl_available() -> bool:
    return shutil.which("openssl") is not None


def _run(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {result.stderr.strip()}")


def _ca(folder: Path, stem: str, cn: str) -> tuple[Path, Path]:
    key, cert = folder / f"{stem}.key", folder / f"{stem}.pem"
    _run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(cert),
        "-days",
        "2",
        "-subj",
        f"/CN={cn}",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        cwd=folder,
    )
    return cert, key


def _leaf(folder: Path, stem: str, cn: str, ca: tuple[Path, Path], usage: str) -> tuple[Path, Path]:
    key, csr, cert = folder / f"{stem}.key", folder / f"{stem}.csr", folder / f"{stem}.pem"
    ext = folder / f"{stem}.ext"
    ext.write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        f"extendedKeyUsage={usage}\n"
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
    )
    _run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(csr),
        "-subj",
        f"/CN={cn}",
        cwd=folder,
    )
    _run(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca[0]),
        "-CAkey",
        str(ca[1]),
        "-CAcreateserial",
        "-out",
        str(cert),
        "-days",
        "2",
        "-extfile",
        str(ext),
        cwd=folder,
    )
    return cert, key


def make_pki(folder: Path) -> Pki:
    """Create the CAs and certificates in ``folder`` (a few hundred ms of RSA key generation)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca = _ca(folder, "ca", "tuiviewer test CA")
    server = _leaf(folder, "server", "localhost", ca, "serverAuth,clientAuth")
    client = _leaf(folder, "client", "TUIVIEWER", ca, "clientAuth")
    other_ca = _ca(folder, "other-ca", "some other CA")
    other_server = _leaf(folder, "other-server", "localhost", other_ca, "serverAuth,clientAuth")
    return Pki(
        ca_cert=ca[0],
        ca_key=ca[1],
        server_cert=server[0],
        server_key=server[1],
        client_cert=client[0],
        client_key=client[1],
        other_ca_cert=other_ca[0],
        other_server_cert=other_server[0],
        other_server_key=other_server[1],
    )
