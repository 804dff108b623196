"""Intelligence sharing: export campaigns as STIX 2.1 / MISP, import peers' indicators, retro-hunt.

Public API (docs/intel.md)::

    export_stix(det_dir, data=..., tlp=..., share_content=..., community_key=...)   bundle dict
    export_misp(det_dir, ...)                                                       MISP event dict
    validate_bundle(bundle)                                  stix2-validator errors (empty = valid)
    load_indicators(sources, community_key=...)              ImportResult(indicators, rejected, skipped)
    hunt(data_dir, indicators, out_dir, community_key=...)   HuntResult; writes sightings.*
    sightings_bundle(result, producer=..., tlp=...)          STIX Sightings back to the peers
    keyed_hash(key, kind, value), key_id(key), read_key(path)   the keyed-hashing scheme

Nothing raw leaves by default: payment fingerprints and request metadata are keyed hashes
(HMAC-SHA256 under a community key shared out of band), prompts are template ids and MinHash
signatures, and only indicators specific to a campaign are exported.
"""

from __future__ import annotations

from distillshield.intel._common import INDICATOR_KINDS, TLP2, IntelError
from distillshield.intel._keyed import key_id, keyed_hash, read_key
from distillshield.intel.hunt import EVIDENCE_SCHEMA, SIGHTINGS_SCHEMA, HuntResult, hunt, sightings_bundle
from distillshield.intel.imports import ImportResult, IndicatorSet, IntelIndicator, load_indicators
from distillshield.intel.misp import MISP_OBJECT_TEMPLATES, export_misp
from distillshield.intel.stix import export_stix, validate_bundle, validation_warnings

__all__ = [
    "EVIDENCE_SCHEMA",
    "INDICATOR_KINDS",
    "MISP_OBJECT_TEMPLATES",
    "SIGHTINGS_SCHEMA",
    "TLP2",
    "HuntResult",
    "ImportResult",
    "IndicatorSet",
    "IntelError",
    "IntelIndicator",
    "export_misp",
    "export_stix",
    "hunt",
    "key_id",
    "keyed_hash",
    "load_indicators",
    "read_key",
    "sightings_bundle",
    "validate_bundle",
    "validation_warnings",
]
