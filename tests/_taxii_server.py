"""A real TAXII 2.1 server (OASIS ``medallion``) on loopback, in a subprocess, for tests.

medallion keeps its Flask app in a module global and ``load_app()`` may only run once per
process, so every server is its own Python process: this file doubles as the child's entry
point (``python _taxii_server.py CONFIG`` binds port 0 on 127.0.0.1, prints the port, then
serves). The parent writes the configuration — the memory backend with one API root and
its collections, basic-auth users — waits until the server answers an authenticated
discovery request, and kills it on exit.

Usage in a test module (medallion is a dev dependency; without it the tests skip)::

    @pytest.fixture(scope="module")
    def taxii(tmp_path_factory):
        with run_medallion(tmp_path_factory.mktemp("taxii")) as server:
            yield server
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The API root every test server has.
API_ROOT = "api1"
#: Users of every test server (name -> password).
USERS: dict[str, str] = {"provider-a": "secret-a", "provider-b": "secret-b"}
#: Collections of every test server (title -> id); ``readonly`` can be read, not written.
COLLECTIONS: dict[str, str] = {
    "shared": "4d4e1c6b-6f1e-4a37-9a4b-2c1f4f0d7c11",
    "other": "91a7b0f2-3c55-4b8e-8d7e-5e0c9b1a2d22",
    "readonly": "c3f1d2e4-8a9b-4c7d-9e0f-1a2b3c4d5e33",
}
TAXII_ACCEPT = "application/taxii+json;version=2.1"


def have_medallion() -> bool:
    """Whether medallion can be imported here (tests skip cleanly when it cannot)."""
    return importlib.util.find_spec("medallion") is not None


@dataclass
class TaxiiServer:
    """A running medallion: its URLs, users and collection ids."""

    base: str  # http://127.0.0.1:PORT
    proc: subprocess.Popen[bytes]
    log: Path
    users: dict[str, str] = field(default_factory=lambda: dict(USERS))
    collections: dict[str, str] = field(default_factory=lambda: dict(COLLECTIONS))

    @property
    def discovery(self) -> str:
        return f"{self.base}/taxii2/"

    @property
    def api_root(self) -> str:
        return f"{self.base}/{API_ROOT}/"

    def auth(self, user: str = "provider-a") -> dict[str, str]:
        """``user`` / ``password`` keyword arguments for the client."""
        return {"user": user, "password": self.users[user]}

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _data(max_content_length: int) -> dict[str, object]:
    media = ["application/stix+json;version=2.1"]
    collections = [
        {
            "id": cid,
            "title": title,
            "description": f"test collection {title}",
            "can_read": True,
            "can_write": title != "readonly",
            "media_types": media,
            "objects": [],
            "manifest": [],
        }
        for title, cid in COLLECTIONS.items()
    ]
    return {
        "/discovery": {
            "title": "distillshield test TAXII server",
            "description": "medallion on loopback",
            "contact": "tests@localhost",
            "default": f"/{API_ROOT}/",
            "api_roots": [f"/{API_ROOT}/"],
        },
        API_ROOT: {
            "information": {
                "title": "Distillation sharing community",
                "description": "test API root",
                "versions": [TAXII_ACCEPT],
                "max_content_length": max_content_length,
            },
            "status": [],
            "collections": collections,
        },
    }


def _read_port(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    """The first stdout line of the child (its port), or None if it did not come in time."""
    box: list[bytes] = []

    def read() -> None:
        assert proc.stdout is not None
        box.append(proc.stdout.readline())

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(timeout)
    if not box or not box[0].strip().isdigit():
        return None
    return int(box[0])


def _answers(url: str, user: str, password: str) -> bool:
    token = b64encode(f"{user}:{password}".encode()).decode()
    req = urllib.request.Request(url, headers={"Accept": TAXII_ACCEPT, "Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def run_medallion(
    workdir: Path,
    *,
    max_content_length: int = 10_000_000,
    max_page_size: int = 100,
    users: Mapping[str, str] | None = None,
    start_timeout: float = 30.0,
) -> Iterator[TaxiiServer]:
    """Start medallion (memory backend) on a free loopback port; kill it on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "medallion-data.json"
    data.write_text(json.dumps(_data(max_content_length), indent=2))
    config = workdir / "medallion-config.json"
    config.write_text(
        json.dumps(
            {
                "backend": {
                    "module": "medallion.backends.memory_backend",
                    "module_class": "MemoryBackend",
                    "filename": str(data),
                    "session_timeout": 120,
                    "check_interval": 30,
                },
                "users": dict(users or USERS),
                "taxii": {"max_page_size": max_page_size},
            }
        )
    )
    log = workdir / "medallion.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), str(config)],
            stdout=subprocess.PIPE,
            stderr=err,
            cwd=workdir,
        )
    server: TaxiiServer | None = None
    try:
        port = _read_port(proc, start_timeout)
        if port is None:
            raise RuntimeError(f"medallion did not start: {log.read_text(errors='replace')[-4000:]}")
        server = TaxiiServer(f"http://127.0.0.1:{port}", proc, log)
        if users is not None:
            server.users = dict(users)
        user, password = next(iter(server.users.items()))
        deadline = time.monotonic() + start_timeout
        while not _answers(server.discovery, user, password):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"medallion does not answer on {server.base}: {server.log_tail()}")
            time.sleep(0.05)
        yield server
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the child (SIGTERM, then SIGKILL) and reap it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()


def _patch_find_att() -> None:  # pragma: no cover - runs in the child process
    """Work around a medallion 3.0.0 bug: ``find_att`` takes any ``version`` property for the
    version timestamp of an object, but a STIX 2.1 ``extension-definition`` *object* has a
    ``version`` of its own ("1.0.0"), so every Get Objects of a collection holding one fails
    with HTTP 500. Only manifest records (which carry ``date_added``) are versioned by
    ``version``; objects by ``modified``/``created`` as TAXII 2.1 says.
    """
    from medallion import common
    from medallion.backends import memory_backend
    from medallion.filters import basic_filter

    def find_att(obj: dict[str, object]) -> object:
        if "date_added" in obj and "version" in obj:
            return common.string_to_datetime(obj["version"])
        for key in ("modified", "created", "_date_added", "version"):
            if key in obj:
                return common.string_to_datetime(obj[key])
        return None

    for module in (common, memory_backend, basic_filter):
        module.find_att = find_att  # type: ignore[attr-defined]


def _patch_timestamp_parsing() -> None:  # pragma: no cover - runs in the child process
    """Speed, not behaviour: on each Get Objects medallion's memory backend pairs every manifest
    record with every object (to sort, and again for ``added_after``), and every object with
    every other for its spec version, parsing timestamps with ``strptime`` each time —
    quadratic in the collection (a 2,000-object collection times out). The parse is memoised
    (a pure function of the string) and the three pairings are replaced by indexed versions
    that return the same result."""
    import functools

    from medallion import common
    from medallion.filters import basic_filter

    cached = functools.lru_cache(maxsize=None)(common.string_to_datetime)
    common.string_to_datetime = cached
    basic_filter.string_to_datetime = cached  # type: ignore[attr-defined]

    def filter_by_spec_version(data: list[dict[str, Any]], spec_: str | None) -> list[dict[str, Any]]:
        # the original compares every object with every other (same result, linear here)
        def spec(obj: dict[str, Any]) -> str:
            if "media_type" in obj:
                return str(obj["media_type"]).split("version=")[1]
            return str(common.determine_spec_version(obj))

        if spec_:
            wanted = spec_.split(",")
            return [obj for obj in data if spec(obj) in wanted]
        best: dict[str, str] = {}
        for obj in data:
            s = spec(obj)
            if obj["id"] not in best or s > best[obj["id"]]:
                best[obj["id"]] = s
        return [obj for obj in data if spec(obj) == best[obj["id"]]]

    def sort_and_paginate(
        self: Any, data: list[dict[str, Any]], limit: int | None, manifest: list[dict[str, Any]] | None
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, str]]:
        # the original scans all objects for each manifest record (same result, indexed here)
        if not data or not manifest:
            return original_sort(self, data, limit, manifest)
        first: dict[tuple[str, object], dict[str, Any]] = {}
        for check in data:
            first.setdefault((check["id"], basic_filter.find_att(check)), check)
        manifest.sort(key=lambda x: x["date_added"])
        headers: dict[str, str] = {}
        new: list[dict[str, Any]] = []
        temp: dict[str, Any] | None = None
        for man in manifest:
            check = first.get((man["id"], basic_filter.find_att(man)))
            if check is None:
                continue
            if not headers:
                headers["X-TAXII-Date-Added-First"] = man["date_added"]
            new.append(check)
            temp = man
            if len(new) == limit:
                headers["X-TAXII-Date-Added-Last"] = man["date_added"]
        next_save: list[dict[str, Any]] = []
        if limit and limit < len(data):
            next_save, new = new[limit:], new[:limit]
        elif temp is not None:
            headers["X-TAXII-Date-Added-Last"] = temp["date_added"]
        return new, next_save, headers

    def filter_by_added_after(
        data: list[dict[str, Any]], manifest_info: list[dict[str, Any]] | None, added_after_date: str
    ) -> list[dict[str, Any]]:
        # the original scans the manifest for each object (same result, indexed here)
        if manifest_info is None:
            return original_added_after(data, manifest_info, added_after_date)
        after = cached(added_after_date)
        newer = {
            (item["id"], basic_filter.find_att(item))
            for item in manifest_info
            if cached(item["date_added"]) > after
        }
        return [obj for obj in data if (obj["id"], basic_filter.find_att(obj)) in newer]

    original_added_after = basic_filter.BasicFilter.filter_by_added_after
    basic_filter.BasicFilter.filter_by_added_after = staticmethod(filter_by_added_after)
    original_sort = basic_filter.BasicFilter.sort_and_paginate
    basic_filter.BasicFilter.filter_by_spec_version = staticmethod(filter_by_spec_version)
    basic_filter.BasicFilter.sort_and_paginate = sort_and_paginate


def _serve(config: str) -> None:  # pragma: no cover - runs in the child process
    import logging

    from medallion import load_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    _patch_timestamp_parsing()
    _patch_find_att()
    app = load_app(config)
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    print(srv.server_port, flush=True)
    srv.serve_forever()


if __name__ == "__main__":  # pragma: no cover - the child process
    _serve(sys.argv[1])
