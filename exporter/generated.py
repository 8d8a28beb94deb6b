"""Generated files committed in a directory (prometheus/rules/, grafana/dashboards/): a fresh generation
is written where it changed, files it no longer makes are removed, and `--check` lists the differences
instead, so CI fails when the committed files and their source disagree."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path


def differences(
    out_dir: Path, files: Mapping[str, str], stale: Sequence[Path], source: str, stale_reason: str
) -> list[str]:
    """Each file that is missing or differs from `files` (name -> text), then each stale one."""
    problems = []
    for name, text in files.items():
        path = out_dir / name
        if not path.exists():
            problems.append(f"{path}: missing")
        elif path.read_text() != text:
            problems.append(f"{path}: differs from what {source} generate")
    return problems + [f"{path}: {stale_reason}" for path in stale]


def write(out_dir: Path, files: Mapping[str, str], stale: Sequence[Path]) -> list[Path]:
    """Write the files that changed and remove the stale ones; returns what changed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, text in files.items():
        path = out_dir / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            changed.append(path)
    for path in stale:
        path.unlink()
        changed.append(path)
    return changed
