"""TAXII 2.1 push/pull against a real server: OASIS medallion in a subprocess on loopback.

Paging with small pages, the remembered ``added_after`` mark (a second pull gets only what is
new, a crash before the mark is saved pulls again), state files bound to one collection,
byte-limited API roots, and the errors a user sees (bad credentials, unknown or read-only
collection, server down, the server's own message for refused content).
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stix2

from _taxii_server import TaxiiServer, have_medallion, run_medallion
from distillshield.intel import taxii
from distillshield.intel.taxii import PullReport, TaxiiError, pull, push

pytestmark = pytest.mark.skipif(not have_medallion(), reason="medallion (a dev dependency) is not installed")

NS = uuid.UUID("6f0b7a52-3f0c-4a5e-9d43-0c6f1d2b9e10")


def _indicator(
    i: int, *, modified: str = "2026-02-03T00:00:00.000Z", name: str | None = None
) -> dict[str, Any]:
    ind = stix2.Indicator(
        id=f"indicator--{uuid.uuid5(NS, str(i))}",
        created="2026-02-03T00:00:00.000Z",
        modified=modified,
        valid_from="2026-02-03T00:00:00Z",
        name=name or f"egress {i}",
        pattern=f"[ipv4-addr:value = '198.51.100.{i % 250}']",
        pattern_type="stix",
    )
    out: dict[str, Any] = json.loads(ind.serialize())
    return out


def _bundle(objects: list[dict[str, Any]], tag: str = "b") -> dict[str, Any]:
    return {"type": "bundle", "id": f"bundle--{uuid.uuid5(NS, tag)}", "objects": objects}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TaxiiServer]:
    with run_medallion(tmp_path_factory.mktemp("taxii"), max_page_size=50) as srv:
        yield srv


@pytest.fixture()
def collection(server: TaxiiServer) -> str:
    """The shared collection; each test pushes its own objects and pulls from a mark taken
    just before (``_mark``), so tests do not see each other's objects."""
    return server.collections["shared"]


def _mark(server: TaxiiServer, state: Path) -> PullReport:
    """Catch up: pull (and commit) everything already there so the test sees only its own objects."""
    rep = pull(server.discovery, server.collections["shared"], state, **server.auth("provider-b"))
    rep.commit()
    return rep


def _ids(objs: list[dict[str, Any]]) -> list[str]:
    return sorted(o["id"] for o in objs)


def test_push_in_chunks_and_pull_in_small_pages(server: TaxiiServer, collection: str, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    _mark(server, state)
    objs = [_indicator(i) for i in range(1000, 1025)]
    rep = push(_bundle(objs), server.discovery, collection, **server.auth(), chunk=10)
    assert (rep.requests, rep.total, rep.succeeded, rep.failed, rep.pending) == (3, 25, 25, 0, 0)
    assert rep.ok and len(rep.status_ids) == 3 and rep.api_root == server.api_root

    got = pull(
        server.discovery, collection, state, dest=tmp_path / "in", **server.auth("provider-b"), page_size=4
    )
    assert _ids(got.objects) == _ids(objs)
    assert got.pages >= 7  # 25 objects, 4 a page
    assert got.committed and got.path is not None and got.path.parent == tmp_path / "in"
    written = json.loads(got.path.read_text())
    assert written["type"] == "bundle" and _ids(written["objects"]) == _ids(objs)
    saved = json.loads(state.read_text())
    assert saved["added_after"] == got.new_added_after
    assert saved["collection"] == collection and saved["api_root"] == server.api_root
    assert saved["format"] == taxii.STATE_FORMAT


def test_added_after_is_remembered(server: TaxiiServer, collection: str, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    first = _mark(server, state)
    push(_bundle([_indicator(i) for i in range(2000, 2006)]), server.api_root, collection, **server.auth())
    a = pull(
        server.api_root, collection, state, dest=tmp_path / "in", **server.auth("provider-b"), page_size=3
    )
    assert len(a.objects) == 6
    assert a.previous_added_after == first.new_added_after
    assert a.new_added_after is not None and a.new_added_after != first.new_added_after

    push(_bundle([_indicator(i) for i in range(2006, 2009)]), server.api_root, collection, **server.auth())
    b = pull(
        server.discovery, collection, state, dest=tmp_path / "in", **server.auth("provider-b"), page_size=3
    )
    assert _ids(b.objects) == _ids([_indicator(i) for i in range(2006, 2009)])
    assert b.previous_added_after == a.new_added_after

    c = pull(server.discovery, collection, state, dest=tmp_path / "in", **server.auth("provider-b"))
    assert c.objects == [] and c.bundles == [] and c.path is None
    assert c.new_added_after == b.new_added_after
    saved = json.loads(state.read_text())
    assert saved["objects_pulled"] >= 9 and saved["pulls"] >= 4
    assert len(list((tmp_path / "in").glob("*.json"))) == 2  # nothing written for an empty pull


def test_a_new_version_of_an_object_is_pulled_again(
    server: TaxiiServer, collection: str, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    _mark(server, state)
    push(_bundle([_indicator(3000)]), server.api_root, collection, **server.auth())
    assert len(pull(server.api_root, collection, state, dest=tmp_path / "in", **server.auth()).objects) == 1
    newer = _indicator(3000, modified="2026-02-05T00:00:00.000Z", name="egress 3000 (revised)")
    push(_bundle([newer]), server.api_root, collection, **server.auth())
    again = pull(server.api_root, collection, state, dest=tmp_path / "in", **server.auth())
    assert [o["name"] for o in again.objects] == ["egress 3000 (revised)"]


def test_a_crash_before_the_mark_is_saved_pulls_again(
    server: TaxiiServer, collection: str, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    first = _mark(server, state)
    before = state.read_text()
    objs = [_indicator(i) for i in range(4000, 4004)]
    push(_bundle(objs), server.api_root, collection, **server.auth())

    def crash(bundle: dict[str, Any]) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        pull(server.api_root, collection, state, dest=crash, **server.auth())
    assert state.read_text() == before  # not remembered

    # without a destination, nothing is remembered until the caller commits
    uncommitted = pull(server.api_root, collection, state, **server.auth())
    assert _ids(uncommitted.objects) == _ids(objs) and not uncommitted.committed
    assert state.read_text() == before

    delivered: list[dict[str, Any]] = []
    ok = pull(server.api_root, collection, state, dest=delivered.append, **server.auth())
    assert _ids(ok.objects) == _ids(objs) and ok.committed
    assert [b["id"] for b in delivered] == [ok.bundle["id"]]
    assert pull(server.api_root, collection, state, **server.auth()).objects == []
    stale = json.loads(state.read_text())
    stale["added_after"] = "2026-01-01T00:00:00.000000Z"
    (tmp_path / "old.json").write_text(json.dumps(stale))
    first.state_path = tmp_path / "old.json"
    first.committed = False
    first.commit()  # moves an older mark forward ...
    assert json.loads((tmp_path / "old.json").read_text())["added_after"] == first.new_added_after
    uncommitted.committed = False
    uncommitted.state_path = state
    stale_report = PullReport(**{**uncommitted.__dict__, "new_added_after": first.new_added_after})
    stale_report.commit()  # ... but a stale report never moves a later mark back
    assert json.loads(state.read_text())["added_after"] == ok.new_added_after


def test_state_for_another_collection_or_server_is_refused(
    server: TaxiiServer, collection: str, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    _mark(server, state)
    with pytest.raises(TaxiiError, match=r"remembers collection .* not collection") as err:
        pull(server.api_root, server.collections["other"], state, **server.auth())
    assert server.collections["other"] in str(err.value) and collection in str(err.value)

    moved = json.loads(state.read_text())
    moved["api_root"] = "http://taxii.peer.example/api1/"
    state.write_text(json.dumps(moved))
    with pytest.raises(TaxiiError, match=r"taxii\.peer\.example"):
        pull(server.api_root, collection, state, **server.auth())

    state.write_text("{not json")
    with pytest.raises(TaxiiError, match="cannot be read"):
        pull(server.api_root, collection, state, **server.auth())
    state.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(TaxiiError, match="not a distillshield TAXII state"):
        pull(server.api_root, collection, state, **server.auth())


def test_bad_credentials_are_named(server: TaxiiServer, collection: str, tmp_path: Path) -> None:
    with pytest.raises(TaxiiError, match=r"refused the credentials of user 'provider-a' \(HTTP 401") as err:
        push(_bundle([_indicator(1)]), server.discovery, collection, user="provider-a", password="wrong")
    assert "Unauthorized" in str(err.value)  # the server's words
    with pytest.raises(TaxiiError, match="anonymous request"):
        pull(server.discovery, collection, tmp_path / "s.json")
    with pytest.raises(TaxiiError, match="both a TAXII user and a password"):
        pull(server.discovery, collection, tmp_path / "s.json", user="provider-a")
    assert not (tmp_path / "s.json").exists()


def test_server_down_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/taxii2/"
    with pytest.raises(TaxiiError, match=rf"cannot reach the TAXII server at .*:{port}.* \(.*refused"):
        push(_bundle([_indicator(1)]), url, "any", user="u", password="p")
    with pytest.raises(TaxiiError, match="cannot reach the TAXII server"):
        pull(url, "any", tmp_path / "state.json", user="u", password="p")
    assert not (tmp_path / "state.json").exists()
    with pytest.raises(TaxiiError, match="not an http"):
        pull("taxii.example/api1", "any", tmp_path / "state.json")


def test_unknown_and_read_only_collections(server: TaxiiServer) -> None:
    with pytest.raises(TaxiiError, match=r"no collection 'nope' .* collections: .*\(shared\)"):
        push(_bundle([_indicator(1)]), server.discovery, "nope", **server.auth())
    with pytest.raises(TaxiiError, match=r"\(readonly\) .* not writable"):
        push(_bundle([_indicator(1)]), server.discovery, server.collections["readonly"], **server.auth())
    # a collection may be named by its alias too — and the bundle must be a bundle
    with pytest.raises(TaxiiError, match="STIX bundle"):
        push({"objects": []}, server.discovery, server.collections["shared"], **server.auth())
    with pytest.raises(TaxiiError, match="object 0 is not a STIX object"):
        push(_bundle([{"id": "x"}]), server.discovery, server.collections["shared"], **server.auth())


def test_refused_content_carries_the_servers_message(
    tmp_path: Path, server: TaxiiServer, collection: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    objs = [_indicator(i) for i in range(5100, 5140)]
    with run_medallion(tmp_path / "small", max_content_length=4 * len(json.dumps(objs[0]))) as small:
        # a client that ignored max_content_length: the server answers 413 and says why
        monkeypatch.setattr(taxii, "_envelopes", lambda objects, chunk, max_len: iter([{"objects": objects}]))
        with pytest.raises(TaxiiError, match=r"HTTP 413 .*Content-Length header not valid or exceeds"):
            push(_bundle(objs), small.api_root, small.collections["shared"], **small.auth())

    # objects the server already holds at that version are refused one by one, not as an error
    objs = [_indicator(i) for i in range(5001, 5004)]
    assert push(_bundle(objs), server.api_root, collection, **server.auth()).ok
    again = push(_bundle(objs), server.api_root, collection, **server.auth())
    assert not again.ok and (again.succeeded, again.failed) == (0, 3)
    assert {i for i, _ in again.failures} == {o["id"] for o in objs}
    assert all(msg == "Unable to process object" for _, msg in again.failures)


def test_byte_limited_api_root_splits_requests(tmp_path: Path) -> None:
    objs = [_indicator(i) for i in range(40)]
    size = len(json.dumps(objs[0]))
    with run_medallion(tmp_path / "srv", max_content_length=5 * size) as srv:
        rep = push(_bundle(objs), srv.api_root, srv.collections["shared"], **srv.auth())
        assert rep.ok and rep.succeeded == 40 and rep.requests >= 10
        got = pull(srv.api_root, srv.collections["shared"], tmp_path / "s.json", **srv.auth(), page_size=1000)
        assert _ids(got.objects) == _ids(objs)  # the server caps pages at its max_page_size
        huge = _indicator(99, name="x" * (6 * size))
        with pytest.raises(TaxiiError, match=r"bytes; the API root accepts at most"):
            push(_bundle([huge]), srv.api_root, srv.collections["shared"], **srv.auth())


def test_paging_by_date_when_the_server_gives_no_cursor(
    server: TaxiiServer, collection: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Servers without ``next``: pages move by X-TAXII-Date-Added-Last, and a page ending inside
    a group of objects stamped with one date (one request) neither skips nor repeats them."""
    state = tmp_path / "state.json"
    _mark(server, state)
    group = [_indicator(i) for i in range(6000, 6009)]  # one request: one date_added for all 9
    single = [_indicator(i) for i in range(6009, 6012)]
    push(_bundle(group), server.api_root, collection, **server.auth())
    for obj in single:
        push(_bundle([obj]), server.api_root, collection, **server.auth())

    original = taxii._Session._remember

    def no_cursor(self: Any, resp: Any, *args: Any, **kwargs: Any) -> Any:
        if resp.headers.get("Content-Type", "").startswith("application/taxii+json") and resp.content:
            body = json.loads(resp.content)
            if isinstance(body, dict) and "next" in body:
                del body["next"]
                resp._content = json.dumps(body).encode()
        return original(self, resp, *args, **kwargs)

    monkeypatch.setattr(taxii._Session, "_remember", no_cursor)
    got = pull(server.api_root, collection, state, **server.auth(), page_size=4)
    assert sorted(o["id"] for o in got.objects) == _ids(group + single)  # each exactly once
    got.commit()
    assert pull(server.api_root, collection, state, **server.auth(), page_size=4).objects == []


def test_mark_from_the_manifest_when_no_date_headers(
    server: TaxiiServer, collection: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state.json"
    _mark(server, state)
    push(_bundle([_indicator(i) for i in range(7000, 7003)]), server.api_root, collection, **server.auth())
    monkeypatch.setattr(taxii, "_HEADER_LAST", "X-Not-Sent")
    got = pull(server.api_root, collection, state, dest=tmp_path / "in", **server.auth())
    assert len(got.objects) == 3 and got.new_added_after is not None
    assert pull(server.api_root, collection, state, **server.auth()).objects == []
