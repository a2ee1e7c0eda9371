"""Static files in production: ``collectstatic`` writes compressed files with content-hashed names, and the
app serves them itself (WhiteNoise) with far-future cache headers; pages link the hashed names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SERVE = """
import json, django
django.setup()
from django.test import Client
from django.templatetags.static import static
client = Client()
url = static("runs/run.js")
response = client.get(url)
print(json.dumps({"url": url, "status": response.status_code,
                  "cache": response.get("Cache-Control", ""),
                  "gzip": client.get(url, headers={"accept-encoding": "gzip"}).get("Content-Encoding", "")}))
"""


def test_collected_static_files_are_hashed_compressed_and_served(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PIPEDECK_STATIC_COLLECTED": "true",
        "PIPEDECK_STATIC_ROOT": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    manifest = json.loads((tmp_path / "staticfiles.json").read_text())["paths"]
    hashed = manifest["runs/run.js"]
    assert hashed != "runs/run.js" and (tmp_path / hashed).exists() and (tmp_path / f"{hashed}.gz").exists()

    served = subprocess.run(
        [sys.executable, "-c", SERVE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert served.returncode == 0, served.stderr[-2000:]
    answer = json.loads(served.stdout.strip().splitlines()[-1])
    assert answer["url"] == f"/static/{hashed}"
    assert answer["status"] == 200
    assert "max-age=315360000" in answer["cache"] and "immutable" in answer["cache"]
    assert answer["gzip"] == "gzip"
