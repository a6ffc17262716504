"""`bentoml build` reaches no server: every HTTP client it could use (pip, uv, httpx, requests)
is pointed at a local proxy that records connections, and the package index at the same port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


class RecordingProxy:
    """A TCP listener on loopback that accepts, records the first bytes, and hangs up."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.seen: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    self.seen.append(conn.recv(200))
                except OSError:
                    self.seen.append(b"")

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.mark.slow
def test_bentoml_build_makes_no_network_request(tmp_path):
    with RecordingProxy() as proxy:
        url = f"http://127.0.0.1:{proxy.port}"
        env = {**{k: v for k, v in os.environ.items() if k.lower() != "no_proxy"},
               "BENTOML_HOME": str(tmp_path / "bentoml"), "BENTOML_DO_NOT_TRACK": "true",
               "HTTP_PROXY": url, "HTTPS_PROXY": url, "http_proxy": url, "https_proxy": url,
               "ALL_PROXY": url, "PIP_INDEX_URL": f"{url}/simple",
               "UV_INDEX_URL": f"{url}/simple", "UV_DEFAULT_INDEX": f"{url}/simple"}
        bentoml = Path(sys.executable).parent / "bentoml"
        result = subprocess.run([str(bentoml), "build", str(ROOT)], capture_output=True,
                                text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert proxy.seen == [], f"bentoml build made requests: {proxy.seen}"
    built = [b for b in (tmp_path / "bentoml" / "bentos" / "churn").iterdir()
             if b.is_dir() and not b.is_symlink()]
    assert len(built) == 1
    bento = built[0]
    assert (bento / "env" / "docker" / "Dockerfile").exists(), "containerize builds from this"
    requirements = (bento / "env" / "python" / "requirements.txt").read_text()
    assert "bentoml" in requirements and "lightgbm" in requirements, requirements
    assert (bento / "apis" / "openapi.yaml").exists()
