"""Behavioural features computed from prepared datasets, as SQL run through a :class:`Backend`.

    backend = get_backend()
    register_dataset(backend, "DATA")            # after ``distillshield prepare DATA``
    table = account_fingerprints(backend)        # one row per account, whole period

Column meanings, why each indicates distillation and its legitimate look-alikes:
docs/features.md and :mod:`distillshield.features.account`.
"""

from distillshield.features.account import (
    FINGERPRINT_COLUMNS,
    account_fingerprints,
    fingerprint_sql,
    register_dataset,
)

__all__ = ["FINGERPRINT_COLUMNS", "account_fingerprints", "fingerprint_sql", "register_dataset"]
