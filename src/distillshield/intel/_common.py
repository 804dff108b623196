"""What export, import and hunt agree on: identifiers, TLP 2.0 markings, custom types, limits.

Identifiers are deterministic (docs/intel.md, "Identifiers"): ``uuid5(NAMESPACE, key)`` where
``key`` joins a producer name, an object kind and the canonical value with ``\\x1f``. The
namespace is fixed once for all releases; changing it would make every peer see our objects
as new ones.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

from distillshield.errors import DistillShieldError

__all__ = [
    "EXT_FINGERPRINT",
    "EXT_KEYED_HASH",
    "EXT_PROMPT_TEMPLATE",
    "INDICATOR_KINDS",
    "MINHASH_SCHEME",
    "NAMESPACE",
    "SCHEMA_IDENTITY",
    "TLP2",
    "TLP2_EXTENSION",
    "IntelError",
    "det_uuid",
    "parse_ts",
    "stix_id",
    "stix_ts",
    "tlp_level",
]


class IntelError(DistillShieldError):
    """An intelligence-sharing input or option that cannot be used (the message says why)."""


#: Namespace of every deterministic id we mint: ``uuid5(NAMESPACE_URL,
#: "https://distillshield.invalid/intel/stix/v1")``, written out so it never drifts.
NAMESPACE = uuid.UUID("b2c08f00-49e9-58fd-9ffa-43d9ba113db3")

#: Kinds of indicator an :class:`~distillshield.intel.imports.IndicatorSet` holds.
INDICATOR_KINDS: tuple[str, ...] = (
    "ipv4",
    "ipv6",
    "cidr",
    "asn",
    "user_agent",
    "template_id",
    "template_minhash",
    "payment_hash",
    "meta",
)

#: The TLP 2.0 extension definition and its five marking definitions, as published by OASIS in
#: cti-stix-common-objects, extension-definition-specifications/tlp-2.0 (ids, names and the
#: ``created`` timestamp are part of the published objects and must be used unchanged).
TLP2_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
TLP2_CREATED = "2022-10-01T00:00:00.000Z"
TLP2: dict[str, tuple[str, str]] = {
    "clear": ("marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487", "TLP:CLEAR"),
    "green": ("marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb", "TLP:GREEN"),
    "amber": ("marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421", "TLP:AMBER"),
    "amber+strict": ("marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003", "TLP:AMBER+STRICT"),
    "red": ("marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1", "TLP:RED"),
}


def tlp_level(tlp: str) -> str:
    """``"amber"``, ``"TLP:AMBER"``, ``"tlp:amber+strict"`` -> the TLP 2.0 level key.

    TLP 1.0's ``white`` is accepted as its TLP 2.0 successor ``clear``.
    """
    level = str(tlp).strip().lower().removeprefix("tlp:").replace("_", "+").replace(" ", "")
    level = {"white": "clear", "amberstrict": "amber+strict", "amber-strict": "amber+strict"}.get(
        level, level
    )
    if level not in TLP2:
        raise IntelError(f"unknown TLP level {tlp!r}; use one of {', '.join(TLP2)}")
    return level


def det_uuid(*parts: str) -> str:
    """The deterministic UUID of a canonical key (its parts joined by ``\\x1f``)."""
    return str(uuid.uuid5(NAMESPACE, "\x1f".join(parts)))


def stix_id(stix_type: str, *parts: str) -> str:
    """``<stix_type>--uuid5(NAMESPACE, stix_type + parts)``."""
    return f"{stix_type}--{det_uuid(stix_type, *parts)}"


#: Timestamp of the objects that describe our schema (identity, extension definitions): a
#: constant, so every producer's copy of them is the same object version.
SCHEMA_CREATED = "2026-01-01T00:00:00.000Z"
#: The identity that authors the extension definitions (not the producer of a bundle).
SCHEMA_IDENTITY = stix_id("identity", "distillshield", "schema-author")

#: Extension definitions of our custom content (docs/intel.md has their JSON schemas).
EXT_PROMPT_TEMPLATE = stix_id("extension-definition", "x-distillshield-prompt-template", "1")
EXT_KEYED_HASH = stix_id("extension-definition", "x-distillshield-keyed-hash", "1")
EXT_FINGERPRINT = stix_id("extension-definition", "distillshield-fingerprint", "1")

#: How template MinHash signatures are computed (signals/template.py); a peer's signature is
#: only comparable with ours when every field matches.
MINHASH_SCHEME: dict[str, int | str] = {
    "scheme": "distillshield-skeleton-minhash-v1",
    "num_perm": 64,
    "ngram": 3,
    "seed": 0,
}

HEX16 = re.compile(r"^[0-9a-f]{16}$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def stix_ts(value: datetime) -> str:
    """A STIX timestamp (UTC, millisecond precision, ``Z``)."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_ts(value: object) -> datetime | None:
    """An ISO 8601 / STIX timestamp as an aware UTC datetime, or None when absent or unreadable."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        out = datetime.fromisoformat(text)
    except ValueError:
        return None
    return out if out.tzinfo else out.replace(tzinfo=UTC)
