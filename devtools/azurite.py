"""Start the real Azure Storage emulator (Azurite, from the repo's node_modules) on free ports.

Used by `make run` (fixed data folder, survives restarts) and by the test suite (a temporary
folder per session). Never an in-memory fake: this is the emulator Azure's own docs point to.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
AZURITE_BIN = REPO_ROOT / "node_modules" / ".bin" / "azurite"

# The well-known development account: public, documented, not a secret.
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Certificate:
    """A self-signed TLS certificate for 127.0.0.1 (PEM files); it is its own CA."""

    cert: Path
    key: Path


def self_signed_certificate(folder: Path) -> Certificate:
    """Make a certificate for https on loopback, valid for a day; clients trust `cert` as the CA."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    paths = Certificate(folder / "azurite-cert.pem", folder / "azurite-key.pem")
    paths.cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


@dataclass
class Azurite:
    process: subprocess.Popen
    blob_port: int
    queue_port: int
    table_port: int
    # Set when started with https (and OAuth): the certificate clients must trust.
    certificate: Certificate | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.certificate else "http"

    def service_uri(self, service: str) -> str:
        """The account's endpoint of one service ("blob", "queue", "table"), as
        AzureWebJobsStorage__<service>ServiceUri takes it."""
        port = {"blob": self.blob_port, "queue": self.queue_port, "table": self.table_port}[service]
        return f"{self.scheme}://127.0.0.1:{port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        host = f"{self.scheme}://127.0.0.1"
        return (
            f"DefaultEndpointsProtocol={self.scheme};AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={host}:{self.blob_port}/{ACCOUNT};"
            f"QueueEndpoint={host}:{self.queue_port}/{ACCOUNT};"
            f"TableEndpoint={host}:{self.table_port}/{ACCOUNT};"
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def _wait_listening(port: int, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Azurite exited early with code {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"Azurite did not listen on port {port} within {timeout} s")


def start(
    location: Path,
    *,
    ports: tuple[int, int, int] | None = None,
    log=None,
    in_memory: bool = False,
    oauth: Certificate | None = None,
) -> Azurite:
    """Start Azurite storing its data under `location`; ports default to free ones.

    `in_memory` keeps data only in memory: Azurite otherwise rewrites its whole table database to
    disk every 5 s, which at hundreds of thousands of rows stalls it for seconds (benchmarks).
    `oauth`: serve https with this certificate and accept Entra bearer tokens (`--oauth basic`:
    issuer, audience and lifetime are checked, the signature is not), as well as the account key."""
    if not AZURITE_BIN.exists():
        raise RuntimeError(f"{AZURITE_BIN} is missing: run `npm ci` (make does it for you)")
    location.mkdir(parents=True, exist_ok=True)
    blob, queue, table = ports or (free_port(), free_port(), free_port())
    # Azurite refuses --location with --inMemoryPersistence; then `location` is only its working
    # directory, so nothing it might write lands in the caller's.
    storage = ["--inMemoryPersistence"] if in_memory else ["--location", str(location)]
    process = subprocess.Popen(
        [
            str(AZURITE_BIN),
            *storage,
            "--silent",
            # The Python SDKs speak a newer API version than Azurite 3.35 knows.
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(blob),
            "--queueHost",
            "127.0.0.1",
            "--queuePort",
            str(queue),
            "--tableHost",
            "127.0.0.1",
            "--tablePort",
            str(table),
            *(["--oauth", "basic", "--cert", str(oauth.cert), "--key", str(oauth.key)] if oauth else []),
        ],
        stdout=log or subprocess.DEVNULL,
        stderr=log or subprocess.DEVNULL,
        start_new_session=True,  # its own process group, so stop() ends node and children
        cwd=location if in_memory else None,
    )
    azurite = Azurite(process, blob, queue, table, oauth)
    try:
        for port in (blob, queue, table):
            _wait_listening(port, process, timeout=30)
    except BaseException:
        azurite.stop()
        raise
    return azurite
