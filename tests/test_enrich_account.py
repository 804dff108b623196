"""Account enrichment: e-mail domain classes, and the per-account SQL on a hand-built dataset."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pytest

from distillshield.backends import Backend, get_backend
from distillshield.enrich import (
    EMAIL_CLASSES,
    EmailClassifier,
    account_age_sql,
    account_enrichment,
    email_domain_class,
)
from distillshield.schema import ACCOUNT_ENRICHMENT, ACCOUNTS, EXCHANGES, conform


# ---- e-mail domains --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("mailinator.com", "disposable"),
        ("MAILINATOR.COM", "disposable"),
        ("eu.mailinator.com", "disposable"),  # subdomains inherit
        ("guerrillamail.com", "disposable"),
        ("stanford.edu", "academic"),
        ("cs.stanford.edu", "academic"),
        ("ox.ac.uk", "academic"),
        ("u-tokyo.ac.jp", "academic"),
        ("nus.edu.sg", "academic"),
        ("tsinghua.edu.cn", "academic"),
        ("ethz.ch", "academic"),
        ("student.ethz.ch", "academic"),
        ("tum.de", "academic"),
        ("uni-heidelberg.de", "academic"),
        ("tu-berlin.de", "academic"),
        ("univ-lyon1.fr", "academic"),
        ("usp.br", "academic"),
        ("utoronto.ca", "academic"),
        ("hku.hk", "academic"),
        ("gmail.com", "free-mail"),
        ("Gmail.com.", "free-mail"),
        ("alice@gmail.com", "free-mail"),  # a whole address: its domain counts
        ("qq.com", "free-mail"),
        ("proton.me", "free-mail"),
        ("helixdata.io", "corporate"),
        ("unicredit.it", "corporate"),  # "uni" alone is not a university
        ("education.com", "corporate"),
        (None, None),
        ("", None),
    ],
)
def test_email_domain_class(domain: str | None, expected: str | None) -> None:
    got = email_domain_class(pa.array([domain], pa.string())).to_pylist()[0]
    assert got == expected
    assert got is None or got in EMAIL_CLASSES


def test_email_classes_batch_and_extra_domains() -> None:
    clf = EmailClassifier(
        academic=["mila.example"], free_mail=["mymail.example"], disposable=["burner.example"]
    )
    got = clf.classify_many(
        ["gmail.com", None, "mila.example", "x.mymail.example", "burner.example", "gmail.com"]
    )
    assert got.to_pylist() == ["free-mail", None, "academic", "free-mail", "disposable", "free-mail"]


# ---- the per-account SQL ---------------------------------------------------------------------------
def _ts(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, tzinfo=UTC)


ACCOUNT_ROWS = [
    # A: academic, signed up from a Google address, declared US
    {"account_id": "A", "created_at": _ts(1), "pathway": "education", "email_domain": "stanford.edu",
     "declared_country": "US", "signup_ip": "8.8.8.8", "verified": True},
    # B: disposable, lower-case declared country, unparseable sign-up IP
    {"account_id": "B", "created_at": _ts(2), "pathway": "self_serve", "email_domain": "mailinator.com",
     "declared_country": "de", "signup_ip": "not-an-ip", "verified": False},
    # C: no traffic at all, nothing declared
    {"account_id": "C", "created_at": _ts(3), "pathway": "self_serve", "email_domain": None,
     "declared_country": None, "signup_ip": None, "verified": False},
    # D: traffic only from addresses without a country
    {"account_id": "D", "created_at": _ts(3), "pathway": "startup_program", "email_domain": "helixdata.io",
     "declared_country": "US", "signup_ip": "171.64.1.1", "verified": True},
]  # fmt: skip

# (request_id, account_id, ts, ip_country of its address)
EXCHANGE_ROWS = [
    ("r1", "A", _ts(1, 12), "US"),
    ("r2", "A", _ts(2), "US"),
    ("r3", "A", _ts(2, 6), "CN"),
    ("r4", "A", _ts(5), "DE"),
    ("r5", "B", _ts(4), "RU"),
    ("r6", "B", _ts(4, 1), "DE"),
    ("r7", "B", _ts(4, 2), None),
    ("r8", "D", _ts(3, 18), None),
]

EXPECTED = {
    "A": {
        "email_domain_class": "academic",
        "signup_country": "US",
        "signup_is_hosting": True,
        "observed_countries": ["CN", "DE", "US"],
        "declared_country_share": 0.5,  # 2 of 4 located requests from the US
        "restricted_country_share": 0.25,  # 1 of 4 from CN
        "first_seen": _ts(1, 12),
        "age_days_at_first_request": 0.5,
    },
    "B": {
        "email_domain_class": "disposable",
        "signup_country": None,
        "signup_is_hosting": None,
        "observed_countries": ["DE", "RU"],
        "declared_country_share": 0.5,  # DE: 1 of the 2 located requests (r7 has no country)
        "restricted_country_share": 0.5,  # RU
        "first_seen": _ts(4),
        "age_days_at_first_request": 2.0,
    },
    "C": {
        "email_domain_class": None,
        "signup_country": None,
        "signup_is_hosting": None,
        "observed_countries": None,
        "declared_country_share": None,
        "restricted_country_share": None,
        "first_seen": None,
        "age_days_at_first_request": None,
    },
    "D": {
        "email_domain_class": "corporate",
        "signup_country": "US",
        "signup_is_hosting": False,
        "observed_countries": None,
        "declared_country_share": None,  # no located request
        "restricted_country_share": None,
        "first_seen": _ts(3, 18),
        "age_days_at_first_request": 0.75,
    },
}


def _backend(accounts: pa.Table | None = None) -> Backend:
    backend = get_backend("duckdb")
    acc = accounts if accounts is not None else conform(pa.Table.from_pylist(ACCOUNT_ROWS), ACCOUNTS)
    ex = conform(
        pa.Table.from_pylist(
            [
                {"request_id": r, "account_id": a, "ts": t, "model": "m", "endpoint": "chat.completions",
                 "ip": "192.0.2.1", "n_messages": 1, "input_tokens": 1, "output_tokens": 1, "stream": False,
                 "status": 200}
                for r, a, t, _ in EXCHANGE_ROWS
            ]
        ),
        EXCHANGES,
    )  # fmt: skip
    enr = pa.table(
        {"request_id": [r for r, *_ in EXCHANGE_ROWS], "ip_country": [c for *_, c in EXCHANGE_ROWS]}
    )
    backend.register("ex", ex)
    backend.register("enr", enr)
    backend.register("acc", acc)
    return backend


def _by_account(table: pa.Table) -> dict[str, dict[str, object]]:
    return {row.pop("account_id"): row for row in table.to_pylist()}


def test_account_enrichment_hand_computed() -> None:
    out = account_enrichment(_backend())
    assert out.schema == ACCOUNT_ENRICHMENT.schema
    assert out.column("account_id").to_pylist() == ["A", "B", "C", "D"]
    got = _by_account(out)
    for account, expected in EXPECTED.items():
        for key, value in expected.items():
            if isinstance(value, float):
                assert got[account][key] == pytest.approx(value), (account, key)
            else:
                assert got[account][key] == value, (account, key)


def test_restricted_countries_are_configurable() -> None:
    none = _by_account(account_enrichment(_backend(), restricted_countries=()))
    assert none["A"]["restricted_country_share"] == 0.0
    de = _by_account(account_enrichment(_backend(), restricted_countries=("de", "US")))
    assert de["A"]["restricted_country_share"] == pytest.approx(0.75)
    assert de["B"]["restricted_country_share"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="alpha-2"):
        account_enrichment(_backend(), restricted_countries=("China",))


def test_missing_optional_account_columns_read_as_null() -> None:
    minimal = pa.table(
        {
            "account_id": ["A", "B"],
            "created_at": pa.array([_ts(1), _ts(2)], pa.timestamp("us", tz="UTC")),
            "pathway": ["education", "self_serve"],
            "verified": [True, False],
        }
    )
    got = _by_account(account_enrichment(_backend(minimal)))
    assert set(got) == {"A", "B"}
    assert got["A"]["email_domain_class"] is None and got["A"]["signup_country"] is None
    assert got["A"]["declared_country_share"] is None  # nothing declared
    assert got["A"]["restricted_country_share"] == pytest.approx(0.25)
    assert got["A"]["observed_countries"] == ["CN", "DE", "US"]


def test_identifiers_are_checked() -> None:
    with pytest.raises(ValueError, match="identifier"):
        account_enrichment(_backend(), accounts="acc; DROP TABLE ex")


def test_account_age_per_exchange_view() -> None:
    backend = _backend()
    backend.execute(account_age_sql(view="ex_age"))
    rows = backend.query("SELECT request_id, account_age_days FROM ex_age ORDER BY request_id").to_pylist()
    ages = {r["request_id"]: r["account_age_days"] for r in rows}
    assert ages == pytest.approx(
        {
            "r1": 0.5,
            "r2": 1.0,
            "r3": 1.25,
            "r4": 4.0,
            "r5": 2.0,
            "r6": 2 + 1 / 24,
            "r7": 2 + 2 / 24,
            "r8": 0.75,
        }
    )
    assert account_age_sql().startswith("SELECT")
