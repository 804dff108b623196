"""Reading a YAML file that must hold one mapping (policies, verification policies, rules).

One place for the two failures every such file shares — unreadable or not YAML, and YAML
that is not a mapping — so each loader's errors read alike and name the file; each loader
raises its own error class (what its callers catch) and validates the mapping itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["read_yaml_mapping"]


def read_yaml_mapping(path: str | Path, error: type[Exception], what: str, shape: str) -> dict[str, Any]:
    """The mapping in ``path``, or ``error`` naming the file.

    ``what`` names the file's kind in the "cannot read" message ("policy"); ``shape`` says
    what the file should hold when it is not a mapping ("a policy is a mapping with
    'version' and 'rules'").
    """
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise error(f"{p}: cannot read {what}: {exc}") from exc
    if not isinstance(data, dict):
        raise error(f"{p}: {shape}, got {type(data).__name__}")
    return data
