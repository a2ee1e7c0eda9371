"""The files of deploy/ are valid: the nginx site for nginx itself, the systemd units for systemd."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A throwaway self-signed certificate (nginx -t opens the files it names)."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pipedeck.example.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed here (apt install nginx)")
def test_the_nginx_site_passes_nginx_t(tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    site = (DEPLOY / "nginx-pipedeck.conf").read_text()
    site = site.replace("/etc/letsencrypt/live/pipedeck.example.com/fullchain.pem", str(cert))
    site = site.replace("/etc/letsencrypt/live/pipedeck.example.com/privkey.pem", str(key))
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  include {tmp_path}/site.conf;\n}}\n"
    )
    done = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "syntax is ok" in done.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
@pytest.mark.parametrize("unit", ["pipedeck-web.service", "pipedeck-worker@.service"])
def test_the_systemd_units_pass_systemd_analyze_verify(tmp_path: Path, unit: str) -> None:
    text = (DEPLOY / unit).read_text()
    # the units name the production paths and user; here, ones that exist
    bin_dir = Path(sys.executable).parent  # the virtual environment's bin/, with daphne
    text = text.replace("/srv/pipedeck/app/.venv/bin/", f"{bin_dir}/")
    text = text.replace("/srv/pipedeck/app", str(tmp_path)).replace("/srv/pipedeck/data", str(tmp_path))
    text = text.replace("/etc/pipedeck/pipedeck.env", str(tmp_path / "pipedeck.env"))
    text = text.replace("User=pipedeck", "User=root").replace("Group=pipedeck", "Group=root")
    (tmp_path / "pipedeck.env").write_text((DEPLOY / "pipedeck.env.example").read_text())
    target = tmp_path / unit.replace("@.", "@1.")
    target.write_text(text)
    done = subprocess.run(["systemd-analyze", "verify", str(target)], capture_output=True, text=True)
    problems = [
        line
        for line in done.stderr.splitlines()
        if unit.split("@")[0] in line and "Failed to" not in line  # no systemd running as PID 1 here
    ]
    assert done.returncode == 0 or not problems, done.stderr
    assert not [line for line in done.stderr.splitlines() if "Unknown key" in line or "Invalid" in line]


def test_the_production_environment_example_names_every_required_setting() -> None:
    names = {
        line.split("=", 1)[0]
        for line in (DEPLOY / "pipedeck.env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    required = {
        "DJANGO_DEBUG",
        "DJANGO_SECRET_KEY",
        "DJANGO_ALLOWED_HOSTS",
        "DJANGO_CSRF_TRUSTED_ORIGINS",
        "DATABASE_URL",
        "REDIS_URL",
        "PIPEDECK_SECRET_KEYS",
        "PIPEDECK_HTTPS",
        "PIPEDECK_INPROCESS_WORKER",
        "PIPEDECK_STATIC_COLLECTED",
        "PIPEDECK_DATA_ROOT",
    }
    assert required <= names
