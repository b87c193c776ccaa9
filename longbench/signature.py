"""The signature of a result: everything that decided its numbers, in one line (after sacrebleu's).

``benchmark:LongBench-v1|set:LongBench|data:<sha of the checksum table>|mode:reference|prompts:<sha>|
chat:<sha or ->|compression:<settings>|longbench:<v>|numpy:<v>|jieba:<v>|rouge:1.0.1-exact|fuzz:difflib``

Prompt table and chat format hashes come from the folders' ``run.json`` when the run wrote one (``?``
when several folders disagree, ``-`` when no ``run.json`` says); the data hash is the sha256 of the
shipped checksum table, which pins every data file by its own sha256.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

from longbench import __version__
from longbench.spec_data import data_text

_SHORT = 12  # hex digits of a hash shown in a signature


def _short(digest: str | None) -> str:
    return digest[:_SHORT] if digest else "-"


def data_hash() -> str:
    """sha256 of the shipped checksum table (``data/checksums.json``)."""
    return hashlib.sha256(data_text("checksums.json").encode("utf-8")).hexdigest()


def read_run_json(folder: Path) -> dict[str, Any] | None:
    """The ``run.json`` (or a shard's ``run.shard-*.json``) of a prediction folder; None when absent or unreadable."""
    for path in sorted(folder.glob("run*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            return data
    return None


def _agreed(values: Iterable[Any]) -> Any:
    distinct = {json.dumps(v, sort_keys=True) for v in values if v is not None}
    if not distinct:
        return None
    return json.loads(distinct.pop()) if len(distinct) == 1 else "?"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "-"


def _compression(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict):
        return ",".join(f"{k}={_portable(k, value[k])}" for k in sorted(value))
    return str(value)


def completeness_parts(scored: int, expected: int, unverified: bool) -> str:
    """Signature fields of an incomplete or unverified result ("" for a complete, verified one): partial
    results say how many of the benchmark's samples they scored, so they never share a full run's signature."""
    parts = f"|partial:{scored}/{expected}" if scored < expected else ""
    return parts + ("|verify:no" if unverified else "")


def _portable(key: str, value: Any) -> Any:
    """A path in the compression settings by its last part only: the same derived data signs the same on
    every machine, and no one's folder layout goes into a table."""
    if key in ("derived_data", "source") and isinstance(value, str):
        return Path(value).name
    return value


def _decoding_parts(runs: list[dict[str, Any]]) -> list[str]:
    """Fields for the run settings that change predictions beyond the prompts, present only when set: the
    seed, the thinking budget, chat template switches, think tags, decoding left to a server, a v2 subset,
    and Ray execution (recorded so that such runs are told apart at a glance)."""
    backends = [run.get("backend_settings") or {} for run in runs]
    seed = _agreed(run.get("seed") for run in runs)
    thinking = _agreed(run.get("thinking_budget") for run in runs)
    kwargs = _agreed(run.get("chat_template_kwargs") or None for run in runs)
    subset = _agreed(run.get("subset") or None for run in runs)
    parts = []
    if seed is not None:
        parts.append(f"seed:{seed}")
    if thinking:
        parts.append(f"thinking:{thinking}")
    if kwargs is not None:
        parts.append(f"chat-kwargs:{_digest(kwargs)}")
    if any(backend.get("decoding_neutral") is False for backend in backends):
        parts.append("decoding:server")
    if subset is not None:
        parts.append(f"subset:{_digest(subset)}")
    if any((backend.get("execution") or {}).get("engine") == "ray" for backend in backends):
        parts.append("exec:ray")
    return parts


def signature(folders: Iterable[Path], e: bool, corrected: bool) -> str:
    """The one-line signature of results scored from ``folders``."""
    runs = [run for run in (read_run_json(folder) for folder in folders) if run is not None]
    compression = _agreed(run.get("compression") for run in runs)
    parts = [
        "benchmark:LongBench-v1",
        f"set:{'LongBench-E' if e else 'LongBench'}",
        f"data:{_short(data_hash())}",
        f"mode:{'corrected' if corrected else 'reference'}",
        f"prompts:{_agreed_digest(runs, 'prompt_table_sha256')}",
        f"chat:{_agreed_digest(runs, 'chat_template_sha256')}",
    ]
    if compression is not None:
        parts.append(f"compression:{_compression(compression)}")
    parts += _decoding_parts(runs)
    parts += [
        f"longbench:{__version__}",
        f"numpy:{_version('numpy')}",
        f"jieba:{_version('jieba')}",
        "rouge:1.0.1-exact",
        "fuzz:difflib",
    ]
    return "|".join(parts)


def _digest(value: Any) -> str:
    """A short hash for a run.json value: a sha256 string as it is, anything else (a per-task table) hashed."""
    if value is None or value == "?":
        return "-" if value is None else "?"
    if isinstance(value, str):
        return _short(value)
    return _short(hashlib.sha256(json.dumps(value, sort_keys=True).encode("utf-8")).hexdigest())


def _agreed_digest(runs: list[dict[str, Any]], key: str) -> str:
    """The short hash of ``key`` across ``runs``: "-" when none records it, "?" when they disagree."""
    return _digest(_agreed(run.get(key) for run in runs))


def v2_signature(result_files: Iterable[Path], compensated: bool) -> str:
    """The one-line signature of LongBench v2 rows scored from ``result_files`` (their folders' run.json, when
    ``longbench predict --v2`` wrote them, gives the prompts, data and temperature; "-" when unknown)."""
    runs = [run for run in (read_run_json(path.parent) for path in result_files) if run is not None]
    temperature = _agreed(run.get("temperature") for run in runs)
    parts = [
        "benchmark:LongBench-v2",
        f"mode:{'compensated' if compensated else 'reference'}",
        f"prompts:{_agreed_digest(runs, 'prompt_table_sha256')}",
        f"data:{_agreed_digest(runs, 'data_sha256')}",
        f"chat:{_agreed_digest(runs, 'chat_template_sha256')}",
        f"temperature:{'-' if temperature is None else temperature}",
        *_decoding_parts(runs),
        f"longbench:{__version__}",
        "extraction:result.py",
    ]
    return "|".join(parts)
