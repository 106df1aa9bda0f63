"""Reading the operator's YAML or JSON files (policies, plugin manifests) with clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import yaml

from gateway.errors import PolicyError


def read_document(path: Path, what: str) -> dict[str, Any]:
    """The object in `path` (YAML for .yaml/.yml, else JSON); `what` names it in errors."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else orjson.loads(text)
    except (yaml.YAMLError, orjson.JSONDecodeError) as exc:
        raise PolicyError(
            f"{path} is not valid {path.suffix.lstrip('.') or 'JSON'}: {exc}"
        ) from exc
    if not isinstance(data, dict):
        raise PolicyError(f"{path} must hold an object of {what}")
    return data
