"""Measure a verification policy on a labelled account population (the simulator's).

:func:`evaluate_signups` replays every account's sign-up in ``created_at`` order through one
:class:`~distillshield.access.verify.Verifier` (assess, then learn: the velocity windows see
exactly the sign-ups before each one) and sets the step each would have been asked for
against the labels: per pathway, the share of fraudulent accounts stopped (``deny``) or
escalated (any step above ``none``) against the share of legitimate sign-ups given friction
(any step) or denied; the same per persona (each campaign tactic and each legitimate
look-alike); and how often each piece of evidence fired on each side.

What the account table does not hold is taken as a sign-up would have seen it:

* the sign-up request's fields are the account's ``pathway``, ``email_domain``,
  ``signup_ip``, ``declared_country``, ``payment_fingerprint`` and ``created_at``;
* the client fingerprint (``user agent | TLS``, the gateway's ``client`` indicator) is that
  of the account's first exchange (``client_from_traffic``): the simulator models no sign-up
  client, and an operator's tooling signs up with the harness it then uses. Turn it off to
  measure without client evidence.

``verdicts`` (campaign indicators from batch detection) must come from data *before* the
sign-ups replayed, or the measure leaks the answer (a scan of the same traffic knows which
payment cards the campaign used); ``peers`` likewise.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distillshield.access.verify import (
    STEPS,
    PeerIndicators,
    SignupRequest,
    Verifier,
    VerifyPolicy,
)
from distillshield.enrich.ip import InfraLists, IpEnricher
from distillshield.gateway.verdicts import VerdictSet
from distillshield.schema import ACCOUNT_LABELS, ACCOUNTS, EXCHANGES, read_table, table_paths

__all__ = ["SignupReport", "evaluate_signups", "first_clients"]


def _share(k: int, n: int) -> float | None:
    return k / n if n else None


@dataclass(frozen=True)
class SignupReport:
    """The result of :func:`evaluate_signups` (:meth:`to_dict` is JSON-safe, :meth:`render`
    a Markdown table)."""

    source: str
    scenario: str | None
    seed: int | None
    accounts: int
    pathways: list[dict[str, Any]]
    personas: list[dict[str, Any]]
    evidence: dict[str, dict[str, int]]
    overall: dict[str, Any]
    decisions: list[dict[str, Any]] = field(default_factory=list)

    def pathway(self, name: str) -> dict[str, Any]:
        return next(r for r in self.pathways if r["pathway"] == name)

    def persona(self, name: str) -> dict[str, Any]:
        return next(r for r in self.personas if r["persona"] == name)

    def to_dict(self, *, decisions: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source": self.source,
            "scenario": self.scenario,
            "seed": self.seed,
            "accounts": self.accounts,
            "overall": self.overall,
            "pathways": self.pathways,
            "personas": self.personas,
            "evidence": self.evidence,
        }
        if decisions:
            out["decisions"] = self.decisions
        return out

    def render(self) -> str:
        """Markdown: per pathway, per persona, evidence counts."""

        def pct(x: float | None) -> str:
            return "—" if x is None else f"{100 * x:.1f} %"

        head = f"scenario {self.scenario or '?'}, seed {self.seed if self.seed is not None else '?'}"
        lines = [
            f"Sign-up verification on {self.accounts} accounts ({head})",
            "",
            "| pathway | fraud | escalated | stopped (deny) | legit | friction | denied |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in [*self.pathways, {**self.overall, "pathway": "**all**"}]:
            lines.append(
                f"| {r['pathway']} | {r['fraud']} | {pct(r['fraud_escalated_share'])} | "
                f"{pct(r['fraud_stopped_share'])} | {r['legit']} | {pct(r['legit_friction_share'])} | "
                f"{pct(r['legit_denied_share'])} |"
            )
        lines += [
            "",
            "| persona | accounts | escalated | denied | steps |",
            "|---|---:|---:|---:|---|",
        ]
        for r in self.personas:
            steps = ", ".join(f"{s} {n}" for s, n in r["steps"].items() if s != "none" and n)
            lines.append(
                f"| {r['persona']} | {r['accounts']} | {pct(r['escalated_share'])} | "
                f"{pct(r['denied_share'])} | {steps or '—'} |"
            )
        lines += ["", "| evidence | fraud | legit |", "|---|---:|---:|"]
        for name, c in self.evidence.items():
            lines.append(f"| {name} | {c['fraud']} | {c['legit']} |")
        return "\n".join(lines) + "\n"


def first_clients(data_dir: str | Path) -> dict[str, str]:
    """Each account's first client fingerprint (``user agent | TLS``) from its exchanges."""
    from distillshield.backends import open_backend

    paths = table_paths(data_dir, EXCHANGES, optional=True)
    if not paths:
        return {}
    out: dict[str, str] = {}
    with open_backend("duckdb") as backend:
        source = paths[0] if len(paths) == 1 else Path(data_dir) / EXCHANGES.name
        backend.register("ds_verify_ex", source)
        cols = set(backend.query("SELECT * FROM ds_verify_ex LIMIT 0").column_names)
        if "user_agent" not in cols:
            return {}
        tls = "coalesce(tls_fingerprint, '')" if "tls_fingerprint" in cols else "''"
        got = backend.query(
            f"SELECT account_id, arg_min(user_agent || ' | ' || {tls}, ts) AS client "
            "FROM ds_verify_ex WHERE user_agent IS NOT NULL GROUP BY 1"
        )
        for acct, client in zip(
            got.column("account_id").to_pylist(), got.column("client").to_pylist(), strict=True
        ):
            out[str(acct)] = str(client)
    return out


def _scenario(data: Path) -> tuple[str | None, int | None]:
    try:
        doc = json.loads((data / "scenario.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, None
    seed = doc.get("seed")
    return doc.get("name"), int(seed) if isinstance(seed, int) else None


def _row(fraud: Counter[str], legit: Counter[str]) -> dict[str, Any]:
    nf, nl = sum(fraud.values()), sum(legit.values())
    fe, fs = nf - fraud["none"], fraud["deny"]
    le, ld = nl - legit["none"], legit["deny"]
    return {
        "fraud": nf,
        "fraud_escalated": fe,
        "fraud_stopped": fs,
        "fraud_escalated_share": _share(fe, nf),
        "fraud_stopped_share": _share(fs, nf),
        "legit": nl,
        "legit_friction": le,
        "legit_denied": ld,
        "legit_friction_share": _share(le, nl),
        "legit_denied_share": _share(ld, nl),
        "fraud_steps": {s: fraud[s] for s in STEPS},
        "legit_steps": {s: legit[s] for s in STEPS},
    }


def evaluate_signups(
    data_dir: str | Path,
    *,
    policy: VerifyPolicy | None = None,
    verdicts: VerdictSet | None = None,
    peers: PeerIndicators | None = None,
    peer_key: bytes | None = None,
    infra: IpEnricher | InfraLists | None = None,
    client_from_traffic: bool = True,
    keep_decisions: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> SignupReport:
    """Replay the sign-ups of dataset ``data_dir`` (with ``labels/accounts``) and measure.

    Counts reconcile by construction: per pathway ``fraud + legit`` is the pathway's accounts,
    and the pathways (and the personas) add up to all accounts. ``keep_decisions`` keeps one
    row per account (id, pathway, persona, campaign, risk, step, reasons).
    """
    data = Path(data_dir)
    accounts = read_table(data, ACCOUNTS).to_pylist()
    labels = {r["account_id"]: r for r in read_table(data, ACCOUNT_LABELS).to_pylist()}
    missing = [a["account_id"] for a in accounts if a["account_id"] not in labels]
    if missing:
        from distillshield.errors import DistillShieldError

        raise DistillShieldError(
            f"{data}: {len(missing)} accounts have no label (e.g. {missing[0]}); labels/accounts is needed"
        )
    clients = first_clients(data) if client_from_traffic else {}
    verifier = Verifier(policy, verdicts=verdicts, peers=peers, infra=infra, peer_key=peer_key)
    verifier.prime(a["signup_ip"] for a in accounts if a["signup_ip"])
    accounts.sort(key=lambda a: (a["created_at"], a["account_id"]))

    by_path: dict[str, tuple[Counter[str], Counter[str]]] = defaultdict(lambda: (Counter(), Counter()))
    by_persona: dict[str, Counter[str]] = defaultdict(Counter)
    persona_fraud: dict[str, bool] = defaultdict(bool)
    evidence: dict[str, Counter[str]] = defaultdict(Counter)
    decisions: list[dict[str, Any]] = []
    skipped = 0
    for i, acc in enumerate(accounts):
        lab = labels[acc["account_id"]]
        fraud = lab.get("campaign_id") is not None
        if not acc["signup_ip"] or not acc["email_domain"]:
            skipped += 1  # nothing to assess a sign-up on: counted apart, never as "none"
            continue
        req = SignupRequest(
            pathway=acc["pathway"],
            email_domain=str(acc["email_domain"]).lower(),
            ip=acc["signup_ip"],
            ts=acc["created_at"].timestamp(),
            account_id=None,
            declared_country=(acc["declared_country"] or None) and str(acc["declared_country"]).upper(),
            payment_fingerprint=acc["payment_fingerprint"],
            client_fingerprint=clients.get(acc["account_id"]),
        )
        res = verifier.verify(req)
        fc, lc = by_path[req.pathway]
        (fc if fraud else lc)[res.step] += 1
        by_persona[lab["persona"]][res.step] += 1
        persona_fraud[lab["persona"]] |= fraud
        for name in res.evidence["fired"]:
            evidence[name]["fraud" if fraud else "legit"] += 1
        if keep_decisions:
            decisions.append(
                {
                    "account_id": acc["account_id"],
                    "pathway": req.pathway,
                    "persona": lab["persona"],
                    "campaign_id": lab.get("campaign_id"),
                    "risk": res.risk,
                    "step": res.step,
                    "reasons": list(res.reasons),
                }
            )
        if progress is not None and (i + 1) % 1000 == 0:
            progress(i + 1, len(accounts))

    order = {p: i for i, p in enumerate(("education", "research_program", "startup_program", "self_serve"))}
    pathways = [
        {"pathway": p, "abused": by_path[p][0].total() > 0, **_row(*by_path[p])}
        for p in sorted(by_path, key=lambda p: (order.get(p, 99), p))
    ]
    all_f: Counter[str] = Counter()
    all_l: Counter[str] = Counter()
    for f, lg in by_path.values():
        all_f.update(f)
        all_l.update(lg)
    overall = {**_row(all_f, all_l), "skipped": skipped}
    personas = []
    for name in sorted(by_persona):
        c = by_persona[name]
        n = c.total()
        personas.append(
            {
                "persona": name,
                "fraud": persona_fraud[name],
                "accounts": n,
                "escalated": n - c["none"],
                "denied": c["deny"],
                "escalated_share": _share(n - c["none"], n),
                "denied_share": _share(c["deny"], n),
                "steps": {s: c[s] for s in STEPS},
            }
        )
    scenario, seed = _scenario(data)
    return SignupReport(
        source=str(data),
        scenario=scenario,
        seed=seed,
        accounts=len(accounts),
        pathways=pathways,
        personas=personas,
        evidence={k: {"fraud": v["fraud"], "legit": v["legit"]} for k, v in sorted(evidence.items())},
        overall=overall,
        decisions=decisions,
    )
