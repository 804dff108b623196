"""Account enrichment: sign-up facts set against the traffic the account actually sent.

Why: the seed case's fraudulent accounts were farmed through education, research and startup
pathways with throwaway identities, and operated through proxy networks abroad.  What an account
*claims* (an e-mail domain, a declared country) is cheap to fake; what it *does* (where its
requests come from, how soon after sign-up it starts) is not.  The gap between the two is the
signal:

* ``email_domain_class``: ``disposable`` / ``academic`` / ``free-mail`` / ``corporate``
  (:func:`email_domain_class`);
* ``signup_country`` / ``signup_is_hosting``: where the sign-up came from (a datacenter
  sign-up is a farmed account or automation);
* ``observed_countries``, ``declared_country_share``, ``restricted_country_share``: where the
  traffic comes from, and how much of it matches the declared country or comes from regions
  where the service is not offered;
* ``first_seen`` and ``age_days_at_first_request``: farmed accounts are often created in bulk
  and aged, or used within minutes.

The per-account aggregation is SQL in the reference dialect, run through a
:class:`~distillshield.backends.Backend` (so it scales with the engine, and runs unchanged on
Spark after transpilation); only the sign-up IPs and the distinct e-mail domains, a few per
account, are looked up in Python and registered as small tables.
"""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Final

import pyarrow as pa
import pyarrow.compute as pc

from distillshield._sql import quote_name
from distillshield.enrich.ip import IpEnricher
from distillshield.schema import ACCOUNT_ENRICHMENT, conform

if TYPE_CHECKING:
    from distillshield.backends import Backend

#: Default regions where the service is not offered (the seed's campaigns operated from here).
RESTRICTED_COUNTRIES: Final[tuple[str, ...]] = ("CN", "RU", "KP", "IR")

#: Values of ``email_domain_class``.
EMAIL_CLASSES: Final[tuple[str, ...]] = ("disposable", "academic", "free-mail", "corporate")

#: Academic suffix rules: *.edu, *.edu.XX, *.ac.XX, and the hyphenated German / Austrian /
#: French university patterns (uni-heidelberg.de, tu-berlin.de, univ-lyon1.fr, u-paris.fr).
_ACADEMIC_RE: Final = re.compile(
    r"(?:^|\.)(?:edu|edu\.[a-z]{2}|ac\.[a-z]{2})$"
    r"|(?:^|\.)(?:uni|tu|th|hs|fh)-[a-z0-9-]+\.de$"
    r"|(?:^|\.)uni-[a-z0-9-]+\.at$"
    r"|(?:^|\.)(?:univ|u)-[a-z0-9-]+\.fr$"
)
_COUNTRY: Final = re.compile(r"^[A-Z]{2}$")


# ---------------------------------------------------------------------------------------------
# e-mail domains
# ---------------------------------------------------------------------------------------------
def _read_domains(name: str) -> frozenset[str]:
    text = (
        importlib.resources.files("distillshield.enrich").joinpath("data", "email", name).read_text("utf-8")
    )
    return frozenset(
        line.split("#", 1)[0].strip().lower() for line in text.splitlines() if line.split("#", 1)[0].strip()
    )


def normalise_domain(value: str | None) -> str | None:
    """Lower-case domain without surrounding dots; the part after ``@`` if an address is given."""
    if value is None:
        return None
    d = value.strip().lower().rsplit("@", 1)[-1].strip(".")
    return d or None


def _suffixes(domain: str) -> list[str]:
    """``a.b.c.com`` -> ``[a.b.c.com, b.c.com, c.com]``: subdomains inherit their parent's class."""
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(max(len(labels) - 1, 1))]


class EmailClassifier:
    """Classifies e-mail domains; holds the lists (loaded once per instance).

    Order matters and is deliberate: a domain on the disposable blocklist is ``disposable``
    even if it looks academic; then ``academic`` (suffix rules + shipped list), ``free-mail``
    (shipped curated list), else ``corporate``.  Extra domains can be passed per class.
    """

    def __init__(
        self,
        *,
        disposable: Iterable[str] = (),
        academic: Iterable[str] = (),
        free_mail: Iterable[str] = (),
    ) -> None:
        from disposable_email_domains import blocklist

        self.disposable = frozenset(blocklist) | {d.lower() for d in disposable}
        self.academic = _read_domains("academic.txt") | {d.lower() for d in academic}
        self.free_mail = _read_domains("freemail.txt") | {d.lower() for d in free_mail}

    def classify(self, domain: str | None) -> str | None:
        """The class of one domain (None for a missing or empty one)."""
        d = normalise_domain(domain)
        if d is None:
            return None
        candidates = _suffixes(d)
        if any(c in self.disposable for c in candidates):
            return "disposable"
        if _ACADEMIC_RE.search(d) or any(c in self.academic for c in candidates):
            return "academic"
        if any(c in self.free_mail for c in candidates):
            return "free-mail"
        return "corporate"

    def classify_many(self, domains: pa.Array | pa.ChunkedArray | Sequence[str | None]) -> pa.StringArray:
        """The class of each domain, classifying each distinct value once."""
        arr = domains
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
        elif not isinstance(arr, pa.Array):
            arr = pa.array(list(arr), type=pa.string())
        if not pa.types.is_dictionary(arr.type):
            arr = pc.dictionary_encode(arr.cast(pa.string()))
        classes = pa.array(
            [self.classify(u) for u in arr.dictionary.cast(pa.string()).to_pylist()], pa.string()
        )
        return classes.take(arr.indices)


def email_domain_class(
    domains: pa.Array | pa.ChunkedArray | Sequence[str | None], *, classifier: EmailClassifier | None = None
) -> pa.StringArray:
    """``disposable`` / ``academic`` / ``free-mail`` / ``corporate`` per domain (null if missing)."""
    return (classifier or EmailClassifier()).classify_many(domains)


# ---------------------------------------------------------------------------------------------
# SQL
# ---------------------------------------------------------------------------------------------
def _countries(codes: Iterable[str]) -> list[str]:
    out = [c.strip().upper() for c in codes]
    bad = [c for c in out if not _COUNTRY.match(c)]
    if bad:
        raise ValueError(f"restricted countries must be ISO-3166 alpha-2 codes, got {bad}")
    return sorted(set(out))


def account_age_sql(*, exchanges: str = "ex", accounts: str = "acc", view: str | None = None) -> str:
    """SQL giving each exchange the age of its account at request time, in days.

    ``account_age_days = (exchange ts - account created_at)`` as a fractional number of days
    (negative when a log says the request came before the sign-up: a data problem worth seeing).
    Exchanges of unknown accounts keep a null age.  Reference (DuckDB) dialect; with ``view``
    the statement creates that view, e.g.::

        backend.execute(account_age_sql(view="ex_age"))
        backend.query("SELECT account_id, min(account_age_days) FROM ex_age GROUP BY 1")
    """
    select = (
        "SELECT e.request_id, e.account_id, e.ts, "
        "date_diff('microsecond', a.created_at, e.ts) / 86400000000.0 AS account_age_days\n"
        f"FROM {quote_name(exchanges)} AS e\n"
        f"LEFT JOIN {quote_name(accounts)} AS a ON a.account_id = e.account_id"
    )
    if view is None:
        return select
    return f"CREATE OR REPLACE VIEW {quote_name(view)} AS\n{select}"


def _account_sql(
    *,
    exchanges: str,
    enrichment: str,
    accounts: str,
    signup: str,
    domains: str,
    present: set[str],
    restricted: list[str],
) -> str:
    """The per-account aggregation (reference dialect). Absent nullable account columns read as NULL.

    CTE names carry a ``ds_`` prefix so that they never shadow the caller's table names.
    """

    def col(name: str) -> str:
        return f"a.{name}" if name in present else "CAST(NULL AS VARCHAR)"

    restricted_test = f"l.ip_country IN ({', '.join(repr(c) for c in restricted)})" if restricted else "FALSE"
    return f"""
WITH ds_acct AS (
    SELECT a.account_id, a.created_at,
           upper({col("declared_country")}) AS declared_country,
           {col("email_domain")} AS email_domain,
           {col("signup_ip")} AS signup_ip
    FROM {accounts} AS a
),
ds_located AS (
    SELECT e.account_id, e.ts, n.ip_country
    FROM {exchanges} AS e
    JOIN {enrichment} AS n ON n.request_id = e.request_id
),
ds_traffic AS (
    SELECT l.account_id,
           min(l.ts) AS first_seen,
           count(l.ip_country) AS n_located,
           sum(CASE WHEN l.ip_country = a.declared_country THEN 1 ELSE 0 END) AS n_declared,
           sum(CASE WHEN {restricted_test} THEN 1 ELSE 0 END) AS n_restricted
    FROM ds_located AS l
    JOIN ds_acct AS a ON a.account_id = l.account_id
    GROUP BY l.account_id
),
ds_countries AS (
    SELECT d.account_id, array_sort(list(d.ip_country)) AS observed_countries
    FROM (SELECT DISTINCT account_id, ip_country FROM ds_located WHERE ip_country IS NOT NULL) AS d
    GROUP BY d.account_id
)
SELECT a.account_id,
       m.email_domain_class,
       s.signup_country,
       s.signup_is_hosting,
       c.observed_countries,
       CASE WHEN t.n_located > 0 AND a.declared_country IS NOT NULL
            THEN CAST(t.n_declared AS DOUBLE) / t.n_located END AS declared_country_share,
       CASE WHEN t.n_located > 0
            THEN CAST(t.n_restricted AS DOUBLE) / t.n_located END AS restricted_country_share,
       t.first_seen,
       date_diff('microsecond', a.created_at, t.first_seen) / 86400000000.0 AS age_days_at_first_request
FROM ds_acct AS a
LEFT JOIN ds_traffic AS t ON t.account_id = a.account_id
LEFT JOIN ds_countries AS c ON c.account_id = a.account_id
LEFT JOIN {signup} AS s ON s.signup_ip = a.signup_ip
LEFT JOIN {domains} AS m ON m.email_domain = a.email_domain
ORDER BY a.account_id
"""


def _distinct_strings(backend: Backend, table: str, column: str) -> pa.Array:
    got = backend.query(f"SELECT DISTINCT {column} FROM {table} WHERE {column} IS NOT NULL ORDER BY 1")
    return got.column(0).combine_chunks().cast(pa.string()) if got.num_rows else pa.array([], pa.string())


def account_enrichment(
    backend: Backend,
    *,
    exchanges: str = "ex",
    enrichment: str = "enr",
    accounts: str = "acc",
    restricted_countries: Iterable[str] = RESTRICTED_COUNTRIES,
    ip_enricher: IpEnricher | None = None,
    email_classifier: EmailClassifier | None = None,
) -> pa.Table:
    """``ACCOUNT_ENRICHMENT`` rows, one per account of ``accounts``, computed by SQL on ``backend``.

    ``exchanges`` (canonical exchanges), ``enrichment`` (``derived/enrichment``: request_id,
    ip_country) and ``accounts`` (canonical accounts) must be registered on ``backend``.  The
    distinct sign-up IPs and e-mail domains are looked up in Python and registered as
    ``<accounts>__signup_ip`` and ``<accounts>__email_class``.

    Shares are over the requests whose IP has a country (``ip_country`` not null), so requests
    from unlocatable addresses neither help nor hurt; they are null for an account with no
    located request, and ``declared_country_share`` is also null without a declared country.
    Accounts without traffic get null traffic columns.
    """
    ex, enr, acc = quote_name(exchanges), quote_name(enrichment), quote_name(accounts)
    restricted = _countries(restricted_countries)
    present = set(backend.query(f"SELECT * FROM {acc} LIMIT 0").column_names)
    signup_name, domain_name = f"{accounts}__signup_ip", f"{accounts}__email_class"

    ips = (
        _distinct_strings(backend, acc, "signup_ip") if "signup_ip" in present else pa.array([], pa.string())
    )
    facts = (ip_enricher or IpEnricher()).enrich(ips)
    backend.register(
        signup_name,
        pa.table(
            {
                "signup_ip": ips,
                "signup_country": facts.column("ip_country"),
                "signup_is_hosting": facts.column("is_hosting"),
            }
        ),
    )
    doms = (
        _distinct_strings(backend, acc, "email_domain")
        if "email_domain" in present
        else pa.array([], pa.string())
    )
    backend.register(
        domain_name,
        pa.table(
            {
                "email_domain": doms,
                "email_domain_class": email_domain_class(doms, classifier=email_classifier),
            }
        ),
    )
    sql = _account_sql(
        exchanges=ex,
        enrichment=enr,
        accounts=acc,
        signup=signup_name,
        domains=domain_name,
        present=present,
        restricted=restricted,
    )
    return conform(backend.query(sql), ACCOUNT_ENRICHMENT, "account_enrichment")
