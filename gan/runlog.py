"""A run's metrics log, `metrics.jsonl`: one JSON record per line, appended as training goes (`training.run` writes
it). Readers skip lines that are not records: a kill or a full disk can tear the last one."""

from __future__ import annotations

import json
from pathlib import Path


def parse_metrics(lines: list[str]) -> list[dict | None]:
    """Each line's record, or None where a line is not one (torn by a kill or a full disk mid-write)."""
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        records.append(record if isinstance(record, dict) else None)
    return records


def read_metrics(path: Path) -> list[dict]:
    """The records of a metrics log, skipping lines that are not records."""
    if not path.is_file():
        return []
    return [r for r in parse_metrics(path.read_text(errors="replace").splitlines()) if r is not None]
