"""The HTML triage report: robustness to partial input, escaping, self-containment, determinism."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from distillshield.report import render_report, write_report

HOSTILE = '<script>alert("x")</script>'
_VOID = {"meta", "br", "hr", "img", "input", "link", "wbr", "col", "area", "base", "source", "track"}


class _Balance(HTMLParser):
    """Records start/end tags and fails on any mismatch: stricter than html.parser itself."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.starts: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.starts.append((tag, dict(attrs)))
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.starts.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
            return
        self.stack.pop()


def _parse(html: str) -> _Balance:
    parser = _Balance()
    parser.feed(html)
    parser.close()
    assert parser.errors == []
    assert parser.stack == []
    return parser


def _svgs(parser: _Balance, cls: str) -> int:
    return sum(1 for tag, attrs in parser.starts if tag == "svg" and attrs.get("class") == cls)


def _campaign(cid: str = "cmp-3f2a9c1b", n: int = 12, score: float = 0.97) -> dict[str, Any]:
    accounts = [f"acct-{cid}-{i:03d}" for i in range(n)]
    kinds = ["payment", "ip", "prefix", "signup", "metadata", "client", "template", "sync"]
    edges = [
        {
            "src": accounts[i],
            "dst": accounts[(i * 7 + 3) % n],
            "kind": kinds[i % len(kinds)],
            "weight": 0.5 + i / (2 * n),
        }
        for i in range(n)
    ]
    edges.append({"src": accounts[0], "dst": "acct-outside-1", "kind": "ip", "weight": 0.3})
    return {
        "id": cid,
        "actor": "op-1a2b3c4d",
        "accounts": accounts,
        "size": n,
        "score": score,
        "first_seen": "2026-02-03T01:00:00+00:00",
        "last_seen": "2026-02-06T22:00:00+00:00",
        "exchanges": 12000,
        "capability_mix": {"reasoning": 0.45, "coding": 0.2, "math": 0.25, "tool_use": 0.1},
        "cot_elicitation_share": 0.62,
        "infrastructure": {
            "ips": [{"value": "203.0.113.7", "accounts": 40, "exchanges": 5000}],
            "prefixes": [{"value": "203.0.113.0/24", "accounts": 55, "exchanges": 9000}],
            "asns": [{"value": "AS64500 Example Hosting", "accounts": 60, "exchanges": 12000}],
            "user_agents": [{"value": "python-requests/2.31", "accounts": 60, "exchanges": 12000}],
            "tls_fingerprints": [{"value": "t13d1516h2_8daaf6152771", "accounts": 60, "exchanges": 12000}],
            "payment_fingerprints": [{"value": "card:9f2c", "accounts": 20, "exchanges": 4000}],
            "template_ids": [{"value": "tpl-88c1", "accounts": 58, "exchanges": 11000}],
        },
        "metadata_clues": [{"key": "user", "value": "lw.eval", "accounts": 40, "exchanges": 90}],
        "release_pivot": {
            "model": "atlas-3",
            "released_at": "2026-02-04T12:00:00+00:00",
            "share_before": 0.0,
            "share_24h": 0.2,
            "share_48h": 0.5,
        },
        "timeline": {
            "start": "2026-02-02T00:00:00+00:00",
            "bin_hours": 1,
            "counts": [(i * 37) % 23 for i in range(24 * 6)],
        },
        "link_edges": edges,
        "top_reasons": ["cot_expose_share=0.62", "shared_payment=20"],
        "summary": f"{n} accounts sharing payment and TLS fingerprints, pivoting to atlas-3 within 48 h.",
    }


def _accounts(campaigns: list[dict[str, Any]], extra: list[dict[str, Any]] | None = None) -> pa.Table:
    rows: list[dict[str, Any]] = []
    for c in campaigns:
        for i, acc in enumerate(c.get("accounts") or []):
            rows.append(
                {
                    "account_id": acc,
                    "score": round(0.99 - i / 100, 4),
                    "flagged": True,
                    "campaign_id": c["id"],
                    "top_reasons": ["cot_expose_share=0.6", "burst=3.1"],
                    "novelty": 0.4,
                    "campaign_share": 1 / max(1, len(c["accounts"])),
                    "first_flagged_at": datetime(2026, 2, 3, 4, i % 60, tzinfo=UTC),
                }
            )
    rows += extra or []
    rows.append(
        {
            "account_id": "acct-benign",
            "score": 0.05,
            "flagged": False,
            "campaign_id": None,
            "top_reasons": None,
            "novelty": None,
            "campaign_share": None,
            "first_flagged_at": None,
        }
    )
    schema = pa.schema(
        [
            ("account_id", pa.string()),
            ("score", pa.float64()),
            ("flagged", pa.bool_()),
            ("campaign_id", pa.string()),
            ("top_reasons", pa.list_(pa.string())),
            ("novelty", pa.float64()),
            ("campaign_share", pa.float64()),
            ("first_flagged_at", pa.timestamp("us", tz="UTC")),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


_LONE = {
    "account_id": "acct-lone-wolf",
    "score": 0.91,
    "flagged": True,
    "campaign_id": None,
    "top_reasons": ["cot_expose_share=0.9"],
    "novelty": 0.8,
    "campaign_share": None,
    "first_flagged_at": datetime(2026, 2, 5, tzinfo=UTC),
}


def _render_full(campaigns: list[dict[str, Any]] | None = None) -> tuple[str, list[dict[str, Any]]]:
    if campaigns is None:
        campaigns = [_campaign("cmp-low", 5, 0.71), _campaign("cmp-3f2a9c1b", 12, 0.97)]
    html = render_report(
        campaigns,
        _accounts(campaigns, [_LONE]),
        title="scan 2026-02",
        source="DET/",
        generated_at="2026-02-07T00:00:00Z",
        summary={
            "accounts_scanned": 12345,
            "accounts_flagged": 18,
            "exchanges": 987654,
            "period": ["2026-02-01T00:00:00+00:00", "2026-02-07T00:00:00+00:00"],
            "backend": "duckdb",
            "rules_version": "r7",
        },
    )
    return html, campaigns


def test_full_render_structure() -> None:
    html, _ = _render_full()
    parser = _parse(html)
    assert _svgs(parser, "timeline") == 2
    assert _svgs(parser, "graph") == 2
    assert "http" not in html.lower()
    # header figures, known and generic
    for text in ("12,345", "987,654", "duckdb", "Rules version", "r7", "2026-02-07T00:00:00Z", "DET/"):
        assert text in html
    # overview sorted by score, anchors resolve to sections
    assert html.index('href="#c1-cmp-3f2a9c1b"') < html.index('href="#c2-cmp-low"')
    ids = {attrs.get("id") for _, attrs in parser.starts}
    assert {"c1-cmp-3f2a9c1b", "c2-cmp-low"} <= ids
    # release marker, pivot sentence, capability, indicators, members, ungrouped
    assert "release: atlas-3" in html
    assert "0.0% before release to 50.0% within 48 h" in html
    assert "reasoning (45.0%)" in html
    assert "AS64500 Example Hosting" in html and "lw.eval" in html
    assert "acct-cmp-3f2a9c1b-011" in html
    assert "acct-lone-wolf" in html and "acct-benign" not in html
    assert "linked, not in campaign" in html
    assert "<script" not in html


def test_deterministic() -> None:
    first, campaigns = _render_full()
    again, _ = _render_full(copy.deepcopy(campaigns))
    assert first == again


def test_minimal_campaign_and_no_accounts_columns() -> None:
    html = render_report([{"id": "x", "accounts": []}], pa.table({"account_id": pa.array([], pa.string())}))
    parser = _parse(html)
    assert _svgs(parser, "timeline") == 0
    assert _svgs(parser, "graph") == 0
    assert '<a href="#c1-x"><code>x</code></a>' in html and 'id="c1-x"' in html


def test_required_account_columns_only() -> None:
    campaigns = [_campaign("cmp-a", 3)]
    full = _accounts(campaigns, [_LONE])
    table = full.select(["account_id", "score", "flagged", "campaign_id", "top_reasons"])
    html = render_report(campaigns, table)
    _parse(html)
    assert "acct-cmp-a-002" in html and "acct-lone-wolf" in html
    assert "Novelty" not in html and "First flagged" not in html and "Campaign share" not in html


def test_zero_campaigns() -> None:
    html = render_report([], _accounts([], [_LONE]))
    _parse(html)
    assert "No campaigns detected." in html
    assert "acct-lone-wolf" in html
    assert "http" not in html.lower()
    assert "Generated" not in html  # no generated_at given: no wall clock substituted


@pytest.mark.parametrize(
    "campaign",
    [
        {},
        {"id": None, "score": "nan", "size": True, "accounts": None, "timeline": {"counts": "oops"}},
        {"id": 7, "capability_mix": [1, 2], "infrastructure": {"ips": "1.2.3.4", "odd": [None, 5, {"x": 1}]}},
        {"id": "t", "timeline": {"counts": [1, None, "2", -3], "start": "not a date", "bin_hours": 0}},
        {"id": "r", "release_pivot": {"released_at": "2030-01-01T00:00:00Z"}, "timeline": {"counts": [1, 2]}},
        {"id": "e", "link_edges": [{"src": "a", "dst": "a"}, {"src": "a"}, "junk", {"src": "a", "dst": "b"}]},
        {
            "id": "m",
            "metadata_clues": ["loose", {"key": None}],
            "top_reasons": [None, 3],
            "extra": {"k": [1]},
        },
    ],
)
def test_malformed_campaigns_never_crash(campaign: dict[str, Any]) -> None:
    _parse(render_report([campaign, "not a dict"], None))  # type: ignore[list-item]


def test_hostile_strings_escaped() -> None:
    c = _campaign("cmp-evil", 4)
    c["accounts"][0] = HOSTILE
    c["link_edges"].append({"src": HOSTILE, "dst": c["accounts"][1], "kind": HOSTILE, "weight": 0.9})
    c["infrastructure"]["user_agents"] = [
        {"value": HOSTILE, "accounts": 1, "exchanges": 2},
        {
            "value": 'Mozilla/5.0 (compatible; +http://evil.example/bot" onload="x)',
            "accounts": 1,
            "exchanges": 1,
        },
    ]
    c["metadata_clues"] = [{"key": "<img src=x onerror=alert(1)>", "value": "'\"&", "accounts": 1}]
    c["actor"] = HOSTILE
    c["summary"] = HOSTILE
    c["release_pivot"]["model"] = HOSTILE
    c["id"] = 'cmp-"><script>'
    lone = dict(_LONE, account_id=HOSTILE, top_reasons=[HOSTILE])
    html = render_report([c], _accounts([c], [lone]), title=HOSTILE, source=HOSTILE, generated_at=HOSTILE)
    parser = _parse(html)
    assert "<script" not in html.lower()
    assert "<img" not in html.lower()
    assert "&lt;script&gt;" in html
    assert "http" not in html.lower()
    assert "hxxp://evil.example" in html
    assert not any(tag in {"script", "img", "iframe", "object"} for tag, _ in parser.starts)
    assert not any(name.startswith("on") for _, attrs in parser.starts for name in attrs)


def test_graph_and_timeline_caps() -> None:
    n = 400
    accounts = [f"a{i:04d}" for i in range(n)]
    edges = [
        {"src": accounts[i], "dst": accounts[(i + 1) % n], "kind": "sync", "weight": 1.0} for i in range(n)
    ]
    c = {
        "id": "big",
        "accounts": accounts,
        "link_edges": edges,
        "timeline": {"start": "2026-01-01T00:00:00+00:00", "bin_hours": 1, "counts": list(range(24 * 90))},
    }
    html = render_report([c], None)
    parser = _parse(html)
    assert _svgs(parser, "graph") == 1
    assert "Showing 150 of 400 accounts" in html
    assert sum(1 for tag, _ in parser.starts if tag == "circle") == 150
    assert "merged" in html
    area = next(attrs["d"] for tag, attrs in parser.starts if tag == "path" and attrs.get("class") == "area")
    assert area is not None and len(area) < 40_000
    for tag, attrs in parser.starts:
        if tag == "circle":
            assert 0 <= float(attrs["cx"] or -1) <= 760 and 0 <= float(attrs["cy"] or -1) <= 460


def test_member_rows_capped() -> None:
    c = _campaign("cmp-many", 260)
    html = render_report([c], _accounts([c]))
    _parse(html)
    assert "Showing 200 of 260 member accounts" in html
    member_cells = re.findall(r"<code>acct-cmp-many-\d{3}</code></td>", html)
    assert len(member_cells) == 200


def test_write_report_atomic(tmp_path: Path) -> None:
    target = tmp_path / "DET" / "report.html"
    campaigns = [_campaign()]
    write_report(target, campaigns, _accounts(campaigns), generated_at="fixed")
    assert target.read_text(encoding="utf-8") == render_report(
        campaigns, _accounts(campaigns), generated_at="fixed"
    )
    write_report(target, [], None)  # overwrite in place
    assert "No campaigns detected." in target.read_text(encoding="utf-8")
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]


def test_write_report_failure_leaves_previous(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "report.html"
    write_report(target, [], None)
    before = target.read_bytes()

    def boom(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("distillshield.report._html.os.replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_report(target, [_campaign()], None)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
