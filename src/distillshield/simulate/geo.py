"""Countries, time zones and e-mail domains the personas draw from (data, not logic)."""

from __future__ import annotations

import numpy as np

#: Representative UTC offset (hours) of each country's population centre.
TZ: dict[str, float] = {
    "US": -6.0,
    "CA": -5.0,
    "BR": -3.0,
    "MX": -6.0,
    "AR": -3.0,
    "GB": 0.0,
    "IE": 0.0,
    "FR": 1.0,
    "DE": 1.0,
    "NL": 1.0,
    "ES": 1.0,
    "IT": 1.0,
    "PL": 1.0,
    "SE": 1.0,
    "CH": 1.0,
    "UA": 2.0,
    "TR": 3.0,
    "RU": 3.0,
    "AE": 4.0,
    "IN": 5.5,
    "SG": 8.0,
    "HK": 8.0,
    "TW": 8.0,
    "CN": 8.0,
    "MY": 8.0,
    "ID": 7.0,
    "VN": 7.0,
    "TH": 7.0,
    "PH": 8.0,
    "KR": 9.0,
    "JP": 9.0,
    "AU": 10.0,
    "NZ": 12.0,
    "NG": 1.0,
    "KE": 3.0,
    "ZA": 2.0,
    "EG": 2.0,
    "IL": 2.0,
}

#: Where a provider's self-serve developers come from (roughly, public developer-survey shares).
DEVELOPER_COUNTRIES: dict[str, float] = {
    "US": 0.33,
    "IN": 0.10,
    "GB": 0.06,
    "DE": 0.06,
    "BR": 0.04,
    "FR": 0.04,
    "CA": 0.04,
    "JP": 0.03,
    "KR": 0.03,
    "SG": 0.02,
    "AU": 0.03,
    "ES": 0.03,
    "NL": 0.03,
    "PL": 0.03,
    "IT": 0.02,
    "SE": 0.015,
    "CH": 0.015,
    "IL": 0.015,
    "TR": 0.01,
    "MX": 0.015,
    "ID": 0.01,
    "VN": 0.01,
    "NG": 0.01,
    "TW": 0.01,
    "UA": 0.01,
    "AE": 0.01,
    "ZA": 0.005,
    "PH": 0.01,
}

#: Allowed-region countries fraudulent accounts declare (where sign-up is permitted and common).
COVER_COUNTRIES: dict[str, float] = {
    "US": 0.45,
    "SG": 0.12,
    "JP": 0.08,
    "GB": 0.08,
    "CA": 0.06,
    "AU": 0.05,
    "DE": 0.05,
    "MY": 0.04,
    "KR": 0.03,
    "FR": 0.04,
}

FREEMAIL = (
    "gmail.com",
    "outlook.com",
    "hotmail.com",
    "yahoo.com",
    "icloud.com",
    "proton.me",
    "gmx.de",
    "yandex.ru",
    "qq.com",
    "163.com",
    "naver.com",
    "mail.ru",
)
FREEMAIL_W = (0.46, 0.14, 0.07, 0.06, 0.07, 0.05, 0.03, 0.02, 0.03, 0.03, 0.02, 0.02)

#: A few long-standing throwaway domains (the enrichment layer uses the full
#: disposable-email-domains list; these are all on it).
DISPOSABLE = (
    "mailinator.com",
    "guerrillamail.com",
    "yopmail.com",
    "sharklasers.com",
    "10minutemail.com",
    "maildrop.cc",
    "trashmail.com",
    "dispostable.com",
    "getnada.com",
    "tempmail.plus",
)

#: Universities: (e-mail domain, country, campus network ASN-name hint for AddressSpace).
UNIVERSITIES = (
    ("stanford.edu", "US"),
    ("mit.edu", "US"),
    ("berkeley.edu", "US"),
    ("umich.edu", "US"),
    ("utexas.edu", "US"),
    ("cmu.edu", "US"),
    ("ox.ac.uk", "GB"),
    ("cam.ac.uk", "GB"),
    ("ethz.ch", "CH"),
    ("tum.de", "DE"),
    ("u-tokyo.ac.jp", "JP"),
    ("nus.edu.sg", "SG"),
    ("kaist.ac.kr", "KR"),
    ("iitb.ac.in", "IN"),
    ("usp.br", "BR"),
    ("utoronto.ca", "CA"),
    ("unimelb.edu.au", "AU"),
    ("tsinghua.edu.cn", "CN"),
    ("sjtu.edu.cn", "CN"),
    ("hku.hk", "HK"),
)

_SYL = (
    "nova",
    "quant",
    "lumen",
    "data",
    "byte",
    "astra",
    "core",
    "flux",
    "pixel",
    "grid",
    "helix",
    "orbit",
    "vector",
    "stack",
    "cloud",
    "sense",
    "mind",
    "forge",
    "logic",
    "spark",
    "ware",
    "labs",
    "path",
    "loop",
    "kite",
    "zen",
    "arc",
    "beam",
    "cart",
    "deep",
    "echo",
    "fin",
    "gen",
    "hub",
    "ion",
)
_TLD = (".com", ".io", ".ai", ".co", ".dev", ".tech", ".app", ".net")


def pick(rng: np.random.Generator, weights: dict[str, float], n: int) -> np.ndarray:
    """``n`` keys of ``weights`` drawn with those (unnormalised) weights."""
    keys = np.array(list(weights), dtype=object)
    p = np.array(list(weights.values()), dtype=np.float64)
    return keys[rng.choice(len(keys), size=n, p=p / p.sum())]


def company_domains(rng: np.random.Generator, n: int) -> np.ndarray:
    """Plausible company domains ("helixdata.io")."""
    a = rng.integers(0, len(_SYL), size=n)
    b = rng.integers(0, len(_SYL), size=n)
    t = rng.integers(0, len(_TLD), size=n)
    return np.array([_SYL[i] + _SYL[j] + _TLD[k] for i, j, k in zip(a, b, t, strict=True)], dtype=object)


def tz_of(countries: np.ndarray) -> np.ndarray:
    """UTC offsets of ``countries`` (0 for unknown ones)."""
    return np.array([TZ.get(c, 0.0) for c in countries], dtype=np.float64)
