"""The canonical traffic schema: Arrow definitions and dataset-directory I/O.

Everything downstream (ingest adapters, detection, the gateway's logger, the simulator)
reads and writes these tables, so they are defined exactly once, here. See docs/schema.md.
"""

from distillshield.schema._io import (
    TABLE_FILES,
    conform,
    iter_batches,
    read_table,
    rechunk,
    table_paths,
    write_table,
)
from distillshield.schema._tables import (
    ACCOUNT_ENRICHMENT,
    ACCOUNT_LABELS,
    ACCOUNTS,
    DETECTION_ACCOUNTS,
    EXCHANGE_ENRICHMENT,
    EXCHANGE_LABELS,
    EXCHANGES,
    INTEL_EVIDENCE,
    PATHWAYS,
    RELEASES,
    SCHEMAS,
    SIGNALS,
    TEMPLATE_FINGERPRINTS,
    TEMPLATES,
    TableSpec,
)

__all__ = [
    "ACCOUNTS",
    "ACCOUNT_ENRICHMENT",
    "ACCOUNT_LABELS",
    "DETECTION_ACCOUNTS",
    "EXCHANGES",
    "EXCHANGE_ENRICHMENT",
    "EXCHANGE_LABELS",
    "INTEL_EVIDENCE",
    "PATHWAYS",
    "RELEASES",
    "SCHEMAS",
    "SIGNALS",
    "TABLE_FILES",
    "TEMPLATES",
    "TEMPLATE_FINGERPRINTS",
    "TableSpec",
    "conform",
    "iter_batches",
    "read_table",
    "rechunk",
    "table_paths",
    "write_table",
]
