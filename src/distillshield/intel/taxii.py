"""TAXII 2.1 exchange with peers: push bundles to a collection, pull what is new since last time.

Built on the OASIS ``taxii2-client`` (``taxii2client.v21``); any TAXII 2.1 server works, the
tests run the OASIS reference server (``medallion``) on loopback.

Where to connect
    ``url`` is a TAXII server's discovery URL (``…/taxii2/``: its default API root is used,
    or its only one) or an API root URL. ``collection_id`` is the collection's ``id`` (or its
    ``alias``); an unknown one is an error that lists the collections this user can see.

Push
    The bundle's objects are sent as TAXII envelopes (``Add Objects``), at most ``chunk``
    objects per request and never more bytes than the API root's ``max_content_length``;
    each request's status is polled until ``complete``. Objects the server refuses are
    reported with its message (:attr:`PushReport.failures`) — a server that already holds
    an object at that version refuses it, so pushing the same bundle twice is harmless.

Pull and the high-water mark
    A pull asks for objects ``added_after`` the collection's high-water mark — the
    ``X-TAXII-Date-Added-Last`` of the last page pulled before — and pages with the server's
    ``next`` cursor (or, from a server without one, by moving ``added_after`` to each page's
    ``X-TAXII-Date-Added-Last``, as TAXII 2.1 prescribes). The mark lives in a small JSON state
    file bound to one API root and collection (a state file for another server or collection
    is refused, so two feeds never share a mark). It is written atomically, and only after
    the pulled objects reached their destination (``dest``, or the caller's own storage
    followed by :meth:`PullReport.commit`): a crash in between pulls the same objects again
    rather than skipping them. Pulled bundles are written atomically too.

Errors
    Everything this module raises on purpose is a :class:`TaxiiError` with the server's own
    words when it gave any: unreachable server, refused credentials, unknown collection,
    read-only collection, an object larger than the server accepts, a status that never
    completes.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from taxii2client.common import _HTTPConnection  # type: ignore[import-untyped, unused-ignore]
from taxii2client.exceptions import (  # type: ignore[import-untyped, unused-ignore]
    AccessError,
    TAXIIServiceException,
)
from taxii2client.v21 import ApiRoot  # type: ignore[import-untyped, unused-ignore]

from distillshield.errors import DistillShieldError

__all__ = [
    "DEFAULT_CHUNK",
    "DEFAULT_PAGE_SIZE",
    "STATE_FORMAT",
    "PullReport",
    "PushReport",
    "TaxiiError",
    "pull",
    "push",
]

#: Objects per ``Add Objects`` request (further split to respect ``max_content_length``).
DEFAULT_CHUNK = 500
#: Objects asked for per ``Get Objects`` page (servers may cap it lower).
DEFAULT_PAGE_SIZE = 100
#: ``format`` of the pull state file.
STATE_FORMAT = "distillshield-taxii-state/1"
#: Seconds before an unanswered HTTP request fails.
DEFAULT_TIMEOUT = 30.0
#: Seconds a push waits for its status to become ``complete``.
DEFAULT_STATUS_TIMEOUT = 120.0

_HEADER_LAST = "X-TAXII-Date-Added-Last"
_ENVELOPE_OVERHEAD = len(b'{"objects": []}')


class TaxiiError(DistillShieldError):
    """A TAXII exchange failed; the message says where and, when it said, what the server said."""


@dataclass(frozen=True)
class PushReport:
    """What a push did: requests sent and the server's per-object verdicts, summed."""

    api_root: str
    collection_id: str
    requests: int
    total: int
    succeeded: int
    failed: int
    pending: int
    status_ids: tuple[str, ...]
    #: ``(object id, server message)`` of every object the server did not accept.
    failures: tuple[tuple[str, str], ...] = ()

    @property
    def ok(self) -> bool:
        """Every object was accepted."""
        return self.failed == 0 and self.pending == 0


@dataclass
class PullReport:
    """What a pull brought: the new objects, and the high-water mark to remember.

    The mark is remembered (the state file written) by :meth:`commit` — which :func:`pull`
    calls itself after delivering to ``dest``; without ``dest`` the caller stores
    :attr:`bundle` and then calls :meth:`commit`.
    """

    api_root: str
    collection_id: str
    state_path: Path
    objects: list[dict[str, Any]]
    pages: int
    previous_added_after: str | None
    new_added_after: str | None
    #: Where the bundle was written (a ``dest`` directory pull with new objects), else None.
    path: Path | None = None
    committed: bool = False
    _pulls: int = field(default=0, repr=False)
    _objects_before: int = field(default=0, repr=False)

    @property
    def bundle(self) -> dict[str, Any]:
        """The pulled objects as one STIX 2.1 bundle (id derived from the collection and marks)."""
        name = f"{self.api_root}|{self.collection_id}|{self.previous_added_after}|{self.new_added_after}"
        return {
            "type": "bundle",
            "id": f"bundle--{uuid.uuid5(uuid.NAMESPACE_URL, name)}",
            "objects": self.objects,
        }

    @property
    def bundles(self) -> list[dict[str, Any]]:
        """``[bundle]`` when anything new was pulled, else ``[]``."""
        return [self.bundle] if self.objects else []

    def commit(self) -> None:
        """Remember the new high-water mark (atomic write of the state file); idempotent.

        The state keeps the later of this report's mark and the one already saved.
        """
        if self.committed:
            return
        mark = self.new_added_after
        try:  # a stale report (or a concurrent pull) never moves the mark back
            current = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            current = None
        if (
            isinstance(current, dict)
            and current.get("api_root") == self.api_root
            and current.get("collection") == self.collection_id
            and isinstance(current.get("added_after"), str)
        ):
            mark = _later(mark, current["added_after"])
        state = {
            "format": STATE_FORMAT,
            "api_root": self.api_root,
            "collection": self.collection_id,
            "added_after": mark,
            "pulls": self._pulls + 1,
            "objects_pulled": self._objects_before + len(self.objects),
        }
        _atomic_write(self.state_path, (json.dumps(state, indent=2, sort_keys=True) + "\n").encode())
        self.committed = True


# ---------------------------------------------------------------------------------------------
# push
# ---------------------------------------------------------------------------------------------
def push(
    bundle: dict[str, Any],
    url: str,
    collection_id: str,
    *,
    user: str | None = None,
    password: str | None = None,
    chunk: int = DEFAULT_CHUNK,
    timeout: float = DEFAULT_TIMEOUT,
    status_timeout: float = DEFAULT_STATUS_TIMEOUT,
    poll_interval: float = 1.0,
) -> PushReport:
    """Add ``bundle``'s objects to the collection; returns the summed status of every request.

    Raises :class:`TaxiiError` when the server cannot be reached, refuses the request (its
    message is included), the collection is not writable, one object alone exceeds the API
    root's ``max_content_length``, or a status is not ``complete`` within ``status_timeout``.
    Objects the server refuses individually are not errors: see :attr:`PushReport.failures`.
    """
    if chunk < 1:
        raise TaxiiError(f"chunk must be at least 1 object, got {chunk}")
    objects = _bundle_objects(bundle)
    with _Session(url, user, password, timeout) as s:
        api_root, collection, max_len = s.open(collection_id, need_write=True)
        envelopes = list(_envelopes(objects, chunk, max_len))
        total = succeeded = failed = pending = 0
        status_ids: list[str] = []
        failures: list[tuple[str, str]] = []
        for env in envelopes:
            with s.guard(f"adding {len(env['objects'])} objects to collection {collection_id}"):
                status = collection.add_objects(
                    env, wait_for_completion=True, poll_interval=poll_interval, timeout=status_timeout
                )
            if status.status != "complete":
                raise TaxiiError(
                    f"TAXII status {status.id} at {api_root} is still {status.status!r} after "
                    f"{status_timeout:g} s ({status.success_count} added, {status.pending_count} pending)"
                )
            status_ids.append(str(status.id))
            total += int(status.total_count)
            succeeded += int(status.success_count)
            failed += int(status.failure_count)
            pending += int(status.pending_count)
            for f in status.failures or []:
                failures.append((str(f.get("id")), str(f.get("message") or "refused")))
    return PushReport(
        api_root=api_root,
        collection_id=collection_id,
        requests=len(envelopes),
        total=total,
        succeeded=succeeded,
        failed=failed,
        pending=pending,
        status_ids=tuple(status_ids),
        failures=tuple(failures),
    )


def _bundle_objects(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    if not isinstance(bundle, dict) or bundle.get("type") != "bundle":
        raise TaxiiError("push expects a STIX bundle (a JSON object with type 'bundle')")
    objects = bundle.get("objects") or []
    if not isinstance(objects, list):
        raise TaxiiError("the bundle's 'objects' is not a list")
    for i, obj in enumerate(objects):
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), str) or "type" not in obj:
            raise TaxiiError(f"bundle object {i} is not a STIX object (needs 'type' and 'id')")
    return objects


def _envelopes(
    objects: list[dict[str, Any]], chunk: int, max_len: int | None
) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """TAXII envelopes of at most ``chunk`` objects and ``max_len`` bytes of JSON each."""
    batch: list[dict[str, Any]] = []
    size = _ENVELOPE_OVERHEAD
    for obj in objects:
        # the client serialises with ensure_ascii=False, ", " separators: measure the same way
        n = len(json.dumps(obj, ensure_ascii=False).encode()) + 2
        if max_len is not None and n + _ENVELOPE_OVERHEAD > max_len:
            raise TaxiiError(
                f"object {obj['id']} is {n} bytes; the API root accepts at most {max_len} bytes per request"
            )
        if batch and (len(batch) >= chunk or (max_len is not None and size + n > max_len)):
            yield {"objects": batch}
            batch, size = [], _ENVELOPE_OVERHEAD
        batch.append(obj)
        size += n
    if batch:
        yield {"objects": batch}


# ---------------------------------------------------------------------------------------------
# pull
# ---------------------------------------------------------------------------------------------
def pull(
    url: str,
    collection_id: str,
    state_path: str | Path,
    *,
    dest: str | Path | Callable[[dict[str, Any]], object] | None = None,
    user: str | None = None,
    password: str | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    timeout: float = DEFAULT_TIMEOUT,
) -> PullReport:
    """Pull the objects added to the collection since the mark in ``state_path``.

    ``dest``: a directory (the bundle is written there atomically as
    ``taxii-<collection>-<mark>.json``) or a callable given the bundle; either way the state is
    committed once it returned. With ``dest=None`` nothing is remembered until the caller,
    having stored :attr:`PullReport.bundle`, calls :meth:`PullReport.commit`. A missing state
    file means "everything"; one for another API root or collection raises :class:`TaxiiError`.
    """
    if page_size < 1:
        raise TaxiiError(f"page_size must be at least 1, got {page_size}")
    state_path = Path(state_path)
    with _Session(url, user, password, timeout) as s:
        api_root, collection, _ = s.open(collection_id, need_write=False)
        state = _read_state(state_path, api_root, collection_id)
        previous = cast("str | None", state.get("added_after"))
        objects, pages, last = _pull_pages(s, collection, collection_id, previous, page_size)
        if objects and last is None:
            last = _mark_from_manifest(s, collection, collection_id, previous, objects)
    report = PullReport(
        api_root=api_root,
        collection_id=collection_id,
        state_path=state_path,
        objects=objects,
        pages=pages,
        previous_added_after=previous,
        new_added_after=_later(previous, last),
        _pulls=int(state.get("pulls", 0)),
        _objects_before=int(state.get("objects_pulled", 0)),
    )
    if dest is None:
        return report
    if callable(dest):
        if report.objects:
            dest(report.bundle)
    elif report.objects:
        out = Path(dest)
        out.mkdir(parents=True, exist_ok=True)
        name = f"taxii-{_slug(collection_id)}-{_slug(report.new_added_after or 'start')}.json"
        report.path = out / name
        _atomic_write(report.path, (json.dumps(report.bundle, indent=1, sort_keys=True) + "\n").encode())
    report.commit()
    return report


def _pull_pages(
    s: _Session, collection: Any, collection_id: str, added_after: str | None, page_size: int
) -> tuple[list[dict[str, Any]], int, str | None]:
    """Every object added after ``added_after`` (deduplicated by id and version), pages, last mark.

    Pages follow the server's ``next`` cursor. A server without cursors is paged by date: the
    next request asks for objects added after the page's ``X-TAXII-Date-Added-Last`` *minus
    one microsecond*, because a server may stamp a whole request's objects with one date and a
    page may end inside such a group; the overlap is deduplicated, and a page that brings
    nothing new doubles the page size (a group larger than the page).
    """
    objects: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    last: str | None = None
    cursor: str | None = None
    window = added_after
    limit = page_size
    pages = 0
    while True:
        kwargs: dict[str, Any] = {"limit": limit}
        if window:
            kwargs["added_after"] = window
        if cursor:
            kwargs["next"] = cursor
        with s.guard(f"reading collection {collection_id}"):
            envelope = collection.get_objects(**kwargs)
        pages += 1
        if not isinstance(envelope, dict):
            raise TaxiiError(f"collection {collection_id} answered with something other than an envelope")
        got = envelope.get("objects") or []
        new = 0
        for obj in got:
            if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
                raise TaxiiError(f"collection {collection_id} sent an object without an id: {obj!r:.200}")
            key = (obj["id"], str(obj.get("modified") or obj.get("created") or ""))
            if key not in seen:
                seen.add(key)
                objects.append(obj)
                new += 1
        page_last = s.last_headers.get(_HEADER_LAST)
        last = _later(last, page_last)
        if not envelope.get("more"):
            return objects, pages, last
        if not got:
            raise TaxiiError(f"collection {collection_id}: the server says 'more' but sent an empty page")
        if envelope.get("next"):
            cursor = str(envelope["next"])
            continue
        mark = _ts(page_last)
        if mark is None:
            raise TaxiiError(
                f"collection {collection_id}: the server says 'more' "
                f"but gives neither 'next' nor {_HEADER_LAST}"
            )
        if new == 0:
            if len(got) < limit or limit >= 1 << 16:
                raise TaxiiError(
                    f"collection {collection_id}: more than {len(got)} objects share the date "
                    f"{page_last} and the server pages neither by cursor nor beyond that many"
                )
            limit *= 2
        earlier = _stamp(mark - timedelta(microseconds=1))
        # never move the window back before where this pull started
        window = earlier if _later(added_after, earlier) == earlier else added_after


def _mark_from_manifest(
    s: _Session, collection: Any, collection_id: str, added_after: str | None, objects: list[dict[str, Any]]
) -> str:
    """The latest ``date_added`` of the pulled objects, from the manifest (no date headers sent)."""
    # objects with a modified/created time match their manifest record's version; the others
    # (versioned by their date_added) match by id
    versioned = {(o["id"], _ts(o.get("modified") or o.get("created"))) for o in objects}
    unversioned = {o["id"] for o in objects if not (o.get("modified") or o.get("created"))}
    best: str | None = None
    cursor: str | None = None
    while True:
        kwargs: dict[str, Any] = {"limit": DEFAULT_PAGE_SIZE}
        if added_after:
            kwargs["added_after"] = added_after
        if cursor:
            kwargs["next"] = cursor
        with s.guard(f"reading the manifest of collection {collection_id}"):
            page = collection.get_manifest(**kwargs)
        for rec in page.get("objects") or []:
            if (rec.get("id"), _ts(rec.get("version"))) in versioned or rec.get("id") in unversioned:
                best = _later(best, rec.get("date_added"))
        if not page.get("more") or not page.get("next"):
            break
        cursor = str(page["next"])
    if best is None:
        raise TaxiiError(
            f"collection {collection_id}: the server sends no {_HEADER_LAST} and no manifest dates, "
            "so what was pulled cannot be remembered"
        )
    return best


def _read_state(path: Path, api_root: str, collection_id: str) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise TaxiiError(f"TAXII state file {path} cannot be read: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise TaxiiError(f"{path} is not a distillshield TAXII state file (format {STATE_FORMAT})")
    if state.get("api_root") != api_root or state.get("collection") != collection_id:
        raise TaxiiError(
            f"TAXII state file {path} remembers collection {state.get('collection')} at "
            f"{state.get('api_root')}, not collection {collection_id} at {api_root}; "
            "use one state file per server and collection"
        )
    mark = state.get("added_after")
    if mark is not None and (not isinstance(mark, str) or _ts(mark) is None):
        raise TaxiiError(f"TAXII state file {path}: added_after {mark!r} is not a timestamp")
    return state


# ---------------------------------------------------------------------------------------------
# connection
# ---------------------------------------------------------------------------------------------
class _TimeoutAdapter(HTTPAdapter):
    """Every request gets a timeout (``requests`` has none by default, taxii2-client sets none)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, **kwargs)


class _Session:
    """One connection to a TAXII server: resolves the API root and collection, maps errors."""

    def __init__(self, url: str, user: str | None, password: str | None, timeout: float) -> None:
        if (user is None) != (password is None):
            raise TaxiiError("give both a TAXII user and a password, or neither")
        self.url = _normalise(url)
        self.conn = _HTTPConnection(user, password, version="2.1")
        adapter = _TimeoutAdapter(timeout)
        self.conn.session.mount("http://", adapter)
        self.conn.session.mount("https://", adapter)
        self.conn.session.hooks["response"].append(self._remember)
        self.last_headers: CaseInsensitiveDict[str] = CaseInsensitiveDict()
        self.user = user

    def __enter__(self) -> _Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.close()

    def _remember(self, resp: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        self.last_headers = resp.headers
        return resp

    def open(self, collection_id: str, *, need_write: bool) -> tuple[str, Any, int | None]:
        """(API root URL, the collection, the API root's max_content_length or None)."""
        with self.guard("reading the server's description"):
            body = self.conn.get(self.url)
        if not isinstance(body, dict):
            raise TaxiiError(f"{self.url} is not a TAXII 2.1 discovery or API root URL")
        if "api_roots" in body or ("title" in body and "versions" not in body):
            roots = [urljoin(self.url, str(r)) for r in body.get("api_roots") or []]
            default = urljoin(self.url, str(body["default"])) if body.get("default") else None
            if default in roots:
                root_url = default
            elif len(roots) == 1:
                root_url = roots[0]
            else:
                raise TaxiiError(
                    f"{self.url} is a TAXII server with API roots {roots or 'none'} and no default; "
                    "give the API root's URL"
                )
        else:
            root_url = self.url
        root_url = _normalise(root_url)
        api = ApiRoot(root_url, conn=self.conn)
        with self.guard(f"listing the collections of {root_url}"):
            cols = list(api.collections)
            max_len = api.max_content_length
        match = [c for c in cols if collection_id in (c.id, c.alias)]
        if not match:
            seen = ", ".join(f"{c.id} ({c.title})" for c in cols) or "none"
            raise TaxiiError(
                f"no collection {collection_id!r} at {root_url}"
                f"{' for user ' + repr(self.user) if self.user else ''}; collections: {seen}"
            )
        col = match[0]
        if need_write and not col.can_write:
            raise TaxiiError(f"collection {col.id} ({col.title}) at {root_url} is not writable for this user")
        if not need_write and not col.can_read:
            raise TaxiiError(f"collection {col.id} ({col.title}) at {root_url} is not readable for this user")
        return root_url, col, int(max_len) if isinstance(max_len, int) and max_len > 0 else None

    @contextmanager
    def guard(self, what: str) -> Iterator[None]:
        """Turn transport and protocol failures into one :class:`TaxiiError` naming ``what``."""
        try:
            yield
        except requests.exceptions.HTTPError as exc:
            raise TaxiiError(_http_message(exc, what, self.user)) from exc
        except requests.exceptions.Timeout as exc:
            raise TaxiiError(f"TAXII server {self.url} did not answer in time while {what}") from exc
        except requests.exceptions.ConnectionError as exc:
            raise TaxiiError(f"cannot reach the TAXII server at {self.url} ({_root_cause(exc)})") from exc
        except requests.exceptions.RequestException as exc:
            raise TaxiiError(f"TAXII request to {self.url} failed while {what}: {exc}") from exc
        except AccessError as exc:
            raise TaxiiError(f"TAXII server {self.url} refused {what}: {exc}") from exc
        except TAXIIServiceException as exc:
            raise TaxiiError(f"TAXII server {self.url} answered unexpectedly while {what}: {exc}") from exc


def _http_message(exc: requests.exceptions.HTTPError, what: str, user: str | None) -> str:
    resp = exc.response
    code = resp.status_code if resp is not None else "?"
    said = ""
    if resp is not None:
        try:
            body = resp.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and (body.get("title") or body.get("description")):
            said = ": " + " — ".join(str(body[k]) for k in ("title", "description") if body.get(k))
        elif resp.text.strip():
            said = ": " + re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", resp.text)).strip()[:300]
    url = resp.url if resp is not None else ""
    if code == 401:
        who = f"user {user!r}" if user else "an anonymous request"
        return f"TAXII server refused the credentials of {who} (HTTP 401 at {url}){said}"
    if code == 403:
        return f"TAXII server forbids {what} (HTTP 403 at {url}){said}"
    return f"TAXII server refused {what} (HTTP {code} at {url}){said}"


def _root_cause(exc: BaseException) -> str:
    """The innermost reason of a connection error ("Connection refused", a DNS failure…)."""
    seen: BaseException | None = exc
    text = str(exc)
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return str(seen.strerror)
        m = re.search(r"\[Errno [-\d]+\] ([^')\]]+)", str(seen))
        if m:
            text = m.group(1)
        nxt = seen.__cause__ or seen.__context__
        if nxt is None and seen.args and isinstance(seen.args[0], BaseException):
            nxt = seen.args[0]
        seen = nxt
    return text


# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------
def _normalise(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise TaxiiError(f"not an http(s) TAXII URL: {url!r}")
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return urlunsplit((parts.scheme, parts.netloc.lower(), path, parts.query, ""))


def _ts(value: object) -> datetime | None:
    """A TAXII/STIX timestamp (``…Z``, any sub-second precision) as an aware datetime."""
    if not isinstance(value, str):
        return None
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z", value.strip())
    if not m:
        return None
    base = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    frac = (m.group(2) or "").ljust(6, "0")[:6]
    return base + timedelta(microseconds=int(frac))


def _later(a: str | None, b: str | None) -> str | None:
    """The later of two timestamps (as given, so the server's own text is sent back)."""
    ta, tb = _ts(a), _ts(b)
    if tb is None:
        return a
    if ta is None or tb > ta:
        return b
    return a


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", text).strip("_") or "x"


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so a crash leaves the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    try:
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
