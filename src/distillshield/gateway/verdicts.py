"""Batch verdicts as the gateway consumes them: per-account verdicts and campaign indicators.

``distillshield scan`` finds campaigns hours after they start; the gateway acts on every
request. This module is the bridge: :func:`build_verdicts` turns a detection directory
(``DET/accounts.parquet``, ``DET/campaigns.json``) — and, when the prepared data is given,
the traffic itself — into an immutable :class:`VerdictSet`, which ``distillshield gateway
publish`` writes to the shared store and every gateway worker picks up without a restart.

The indicator index is what lets the gateway protect a hydra's *new* heads before batch
detection sees them: for every campaign, the values of each indicator kind its members used
(payment fingerprint, client fingerprint = user agent + TLS, template id, metadata clue,
/24 prefix), kept only when they are **specific**: used by at least ``min_members``
members and by (almost) no account outside the campaign. A campus NAT or a popular SDK's
TLS fingerprint is shared with legitimate customers and is dropped here by measurement,
not by a hand-made allowlist (docs/gateway.md).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from distillshield.errors import DistillShieldError

__all__ = [
    "INDICATOR_KINDS",
    "AccountVerdict",
    "Indicator",
    "VerdictSet",
    "build_verdicts",
    "specific_values",
]

#: Indicator kinds the gateway can check on a live request (and where the value comes from).
INDICATOR_KINDS: tuple[str, ...] = ("payment", "client", "template", "meta", "prefix")


@dataclass(frozen=True, slots=True)
class AccountVerdict:
    """Batch verdict on one account: ``campaign`` (member of a campaign), ``flagged``
    (suspicious alone), ``suspect`` (scored at least ``suspect_score`` by the account model
    but below its flag threshold), ``block`` (an analyst's decision) or ``allow`` (an analyst
    cleared it: no online evidence overrides that). ``requests``, on ``suspect`` and
    ``flagged`` verdicts: how many requests batch detection had seen from the account when it
    scored it (0 = not known), which tells the gateway when the verdict has gone stale."""

    verdict: str
    campaign_id: str | None = None
    score: float = 0.0
    campaign_score: float = 0.0
    requests: int = 0


@dataclass(frozen=True, slots=True)
class Indicator:
    """A specific indicator of one campaign: ``members`` of its accounts used it, and
    ``specificity`` is the share of all accounts using it that are members."""

    kind: str
    value: str
    campaign_id: str
    members: int
    specificity: float


@dataclass(frozen=True)
class VerdictSet:
    """Everything the gateway knows from batch detection, immutable and content-addressed."""

    accounts: Mapping[str, AccountVerdict] = field(default_factory=dict)
    campaigns: Mapping[str, float] = field(default_factory=dict)
    indicators: Mapping[tuple[str, str], Indicator] = field(default_factory=dict)
    source: str = ""
    #: The data horizon: batch detection saw exchanges before this instant (ISO 8601; ``""``
    #: unknown). The online risk model uses it to tell accounts the batch could judge.
    until: str = ""

    @property
    def version(self) -> str:
        """Content hash: publishing the same verdicts twice is a no-op for the fleet."""
        return hashlib.sha256(self.to_bytes()).hexdigest()[:16]

    def account(self, account_id: str) -> AccountVerdict | None:
        return self.accounts.get(account_id)

    def link(self, kind: str, value: str | None) -> Indicator | None:
        return None if value is None else self.indicators.get((kind, value))

    def to_bytes(self) -> bytes:
        doc = {
            "source": self.source,
            "accounts": {
                # the request count only when known, so sets without it keep their version
                k: [v.verdict, v.campaign_id, round(v.score, 6), round(v.campaign_score, 6)]
                + ([v.requests] if v.requests else [])
                for k, v in sorted(self.accounts.items())
            },
            "campaigns": {k: round(v, 6) for k, v in sorted(self.campaigns.items())},
            "indicators": [
                [i.kind, i.value, i.campaign_id, i.members, round(i.specificity, 6)]
                for _, i in sorted(self.indicators.items())
            ],
        }
        if self.until:
            doc["until"] = self.until
        return zlib.compress(json.dumps(doc, separators=(",", ":")).encode(), 6)

    @classmethod
    def from_bytes(cls, blob: bytes) -> VerdictSet:
        try:
            doc = json.loads(zlib.decompress(blob))
            accounts = {
                k: AccountVerdict(v[0], v[1], float(v[2]), float(v[3]), int(v[4]) if len(v) > 4 else 0)
                for k, v in doc["accounts"].items()
            }
            indicators = {
                (r[0], r[1]): Indicator(r[0], r[1], r[2], int(r[3]), float(r[4])) for r in doc["indicators"]
            }
            source, until = str(doc.get("source", "")), str(doc.get("until", ""))
            return cls(accounts, dict(doc["campaigns"]), indicators, source, until)
        except (zlib.error, ValueError, KeyError, IndexError, TypeError) as exc:
            raise DistillShieldError(f"published verdicts are unreadable: {exc}") from exc

    def with_overrides(self, overrides: Mapping[str, str]) -> VerdictSet:
        """Analyst decisions (``account -> block|allow``) laid over the detector's."""
        accounts = dict(self.accounts)
        for acct, verdict in overrides.items():
            if verdict not in ("block", "allow"):
                raise DistillShieldError(f"override for {acct!r}: {verdict!r} is not block or allow")
            old = accounts.get(acct)
            accounts[acct] = AccountVerdict(
                verdict, old.campaign_id if old else None, old.score if old else 0.0
            )
        return VerdictSet(accounts, self.campaigns, self.indicators, self.source, self.until)


def _read_detections(
    det: Path, suspect_score: float | None = None
) -> tuple[dict[str, AccountVerdict], dict[str, float], list[dict[str, Any]]]:
    acc_path, camp_path = det / "accounts.parquet", det / "campaigns.json"
    if not acc_path.is_file() or not camp_path.is_file():
        raise DistillShieldError(
            f"{det}: not a detection directory (needs accounts.parquet and campaigns.json)"
        )
    try:
        campaigns_doc = json.loads(camp_path.read_text())
    except (OSError, ValueError) as exc:
        raise DistillShieldError(f"{camp_path}: unreadable: {exc}") from exc
    campaigns_list: list[dict[str, Any]] = (
        campaigns_doc["campaigns"] if isinstance(campaigns_doc, dict) else campaigns_doc
    )
    campaign_score = {str(c["id"]): float(c.get("score", 0.0)) for c in campaigns_list}
    columns = ["account_id", "score", "flagged", "campaign_id"]
    try:
        has_held = "held" in pq.read_schema(acc_path).names  # older detection directories lack it
    except (OSError, ValueError) as exc:
        raise DistillShieldError(f"{acc_path}: unreadable: {exc}") from exc
    table = pq.read_table(acc_path, columns=[*columns, "held"] if has_held else columns)
    held_col = table.column("held").to_pylist() if has_held else [None] * table.num_rows
    seen = _requests_seen(det / "fingerprints.parquet")
    accounts: dict[str, AccountVerdict] = {}
    for acct, score, flagged, cid, held in zip(
        *(table.column(c).to_pylist() for c in columns), held_col, strict=True
    ):
        if cid is not None:
            accounts[acct] = AccountVerdict(
                "campaign", cid, float(score), campaign_score.get(cid, float(score))
            )
        elif flagged or held:
            # a flag alone, on fewer requests than the engine's evidence floor, lapses (Engine);
            # a flag the batch held (its own floor, detect/floor.py) is such a thin flag: the
            # gateway still protects it until the account has sent 10 more requests
            accounts[acct] = AccountVerdict("flagged", None, float(score), 0.0, seen.get(acct, 0))
        elif suspect_score is not None and score is not None and float(score) >= suspect_score:
            # a campaign membership never lapses, so only these two carry the count
            accounts[acct] = AccountVerdict("suspect", None, float(score), 0.0, seen.get(acct, 0))
    return accounts, campaign_score, campaigns_list


def _requests_seen(path: Path) -> dict[str, int]:
    """``account -> n_requests`` from a scan's ``fingerprints.parquet`` (empty when absent:
    a detection directory without it gives verdicts that never go stale)."""
    if not path.is_file():
        return {}
    try:
        t = pq.read_table(path, columns=["account_id", "n_requests"])
    except (OSError, ValueError, KeyError) as exc:
        raise DistillShieldError(f"{path}: unreadable: {exc}") from exc
    return {
        str(a): int(n or 0)
        for a, n in zip(t.column("account_id").to_pylist(), t.column("n_requests").to_pylist(), strict=True)
    }


#: Per indicator kind: SQL yielding (account_id, value) pairs from a prepared dataset.
_INDICATOR_SQL: dict[str, str] = {
    "payment": (
        "SELECT account_id, payment_fingerprint AS value FROM acc WHERE payment_fingerprint IS NOT NULL"
    ),
    "client": (
        "SELECT DISTINCT account_id, user_agent || ' | ' || coalesce(tls_fingerprint, '') AS value "
        "FROM ex WHERE user_agent IS NOT NULL"
    ),
    "template": "SELECT DISTINCT ex.account_id, sig.template_id AS value FROM ex JOIN sig USING (request_id) "
    "WHERE sig.template_id IS NOT NULL",
    "meta": (
        "SELECT DISTINCT account_id, metadata AS value FROM ex WHERE metadata IS NOT NULL AND metadata <> ''"
    ),
    "prefix": "SELECT DISTINCT ex.account_id, enr.ip_prefix AS value FROM ex JOIN enr USING (request_id) "
    "WHERE enr.ip_prefix IS NOT NULL",
}


def _specific_indicators(
    data: Path,
    members: Mapping[str, str],
    *,
    kinds: Iterable[str],
    min_members: int,
    min_specificity: float,
    until: str | None,
) -> dict[tuple[str, str], Indicator]:
    """Indicators used by >= ``min_members`` members of one campaign and whose users are
    at least ``min_specificity`` members of that campaign (computed on the whole traffic and
    every account record before ``until``)."""
    import pyarrow as pa

    from distillshield.backends import open_backend
    from distillshield.features.account import register_dataset

    out: dict[tuple[str, str], Indicator] = {}
    with open_backend("duckdb") as backend:
        register_dataset(backend, data, exchanges="ex_all", accounts="acc_all")
        # what was known at ``until``: requests sent and accounts created before it (a card's
        # holders registered later would lower its specificity with knowledge of the future)
        for view, table, column in (("ex", "ex_all", "ts"), ("acc", "acc_all", "created_at")):
            cut = "" if until is None else f" WHERE {column} < CAST('{until}' AS TIMESTAMPTZ)"
            backend.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {table}{cut}")
        backend.register(
            "members",
            pa.table({"account_id": list(members), "campaign_id": list(members.values())}),
        )
        for kind in kinds:
            best = specific_values(
                backend,
                _INDICATOR_SQL[kind],
                "members",
                min_members=min_members,
                min_specificity=min_specificity,
            )
            for value, (cid, n, spec) in best.items():
                out[(kind, value)] = Indicator(kind, value, cid, n, spec)
    return out


def specific_values(
    backend: Any, pairs_sql: str, members: str, *, min_members: int, min_specificity: float
) -> dict[str, tuple[str, int, float]]:
    """value -> (campaign id, members, specificity) for the values of ``pairs_sql``
    (``account_id, value`` rows) used by >= ``min_members`` members of one campaign and whose
    users are at least ``min_specificity`` members of it. ``members``: a registered table
    ``(account_id, campaign_id)``. A value specific to two campaigns goes to the one with more
    members using it (ties: the smaller campaign id), so the answer is deterministic.
    Shared by the gateway's verdicts and the intel export: one rule for "specific"."""
    sql = f"""
        WITH pairs AS ({pairs_sql}),
        users AS (SELECT p.value, p.account_id, m.campaign_id FROM pairs p
                  LEFT JOIN {members} m USING (account_id)),
        per AS (SELECT value, campaign_id, count(DISTINCT account_id) AS n FROM users
                WHERE campaign_id IS NOT NULL GROUP BY 1, 2),
        tot AS (SELECT value, count(DISTINCT account_id) AS n FROM users GROUP BY 1)
        SELECT per.value, per.campaign_id, per.n AS members, per.n / tot.n AS specificity
        FROM per JOIN tot USING (value)
        WHERE per.n >= {int(min_members)} AND per.n / tot.n >= {float(min_specificity)}
        ORDER BY 1, 2
    """
    best: dict[str, tuple[str, int, float]] = {}
    for value, cid, n, spec in _rows(backend.query(sql)):
        if str(value) not in best or int(n) > best[str(value)][1]:
            best[str(value)] = (str(cid), int(n), float(spec))
    return best


def _rows(table: Any) -> list[tuple[Any, ...]]:
    cols = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return list(zip(*cols, strict=True))


def _scan_until(det: Path) -> str:
    """The ``until`` of the scan that wrote ``det`` (its ``scan.json``), or ``""``."""
    try:
        doc = json.loads((det / "scan.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    until = doc.get("summary", {}).get("until") if isinstance(doc, dict) else None
    return str(until) if until else ""


def build_verdicts(
    det_dir: str | Path,
    *,
    data: str | Path | None = None,
    overrides: Mapping[str, str] | None = None,
    kinds: Iterable[str] = INDICATOR_KINDS,
    min_members: int = 3,
    min_specificity: float = 0.95,
    until: str | None = None,
    suspect_score: float | None = 0.5,
) -> VerdictSet:
    """The verdict set for detection directory ``det_dir``.

    Accounts the model scored at least ``suspect_score`` (its calibrated probability: more
    likely than not a campaign account) without flagging them get the verdict ``suspect``;
    ``None`` leaves them out (the default policy only withholds their raw reasoning).

    With ``data`` (the prepared dataset the detections came from), the indicator index is
    computed from the traffic (``until`` restricts it to what was known at that time — the
    replay evaluation passes it so nothing from the future leaks in). Without it, only the
    payment fingerprints and metadata clues named in the campaign dossiers are indexed:
    they are specific by construction of the dossier (docs/gateway.md).
    """
    det = Path(det_dir)
    accounts, campaign_score, campaigns_list = _read_detections(det, suspect_score)
    kinds = tuple(kinds)
    unknown = set(kinds) - set(INDICATOR_KINDS)
    if unknown:
        raise DistillShieldError(f"unknown indicator kind(s) {sorted(unknown)}; known: {INDICATOR_KINDS}")
    indicators: dict[tuple[str, str], Indicator] = {}
    if data is not None:
        members = {a: v.campaign_id for a, v in accounts.items() if v.campaign_id is not None}
        if members:
            indicators = _specific_indicators(
                Path(data),
                members,
                kinds=kinds,
                min_members=min_members,
                min_specificity=min_specificity,
                until=until,
            )
    else:
        for camp in campaigns_list:
            cid = str(camp["id"])
            infra = camp.get("infrastructure", {})
            if "payment" in kinds:
                for item in infra.get("payment_fingerprints", []):
                    if int(item.get("accounts", 0)) >= min_members:
                        key = ("payment", str(item["value"]))
                        indicators[key] = Indicator("payment", key[1], cid, int(item["accounts"]), 1.0)
    verdicts = VerdictSet(accounts, campaign_score, indicators, str(det), until or _scan_until(det))
    return verdicts.with_overrides(overrides) if overrides else verdicts
