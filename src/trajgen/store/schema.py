"""The one schema of a run's JSON files: manifest.json, config.json and progress.json.

Every reader checks what it loads here (types, keys, ranges, consistency with the config),
so damage is found where it is read and named by file and field, never met later as a
KeyError or a wrong answer. Keys this version does not know are accepted and left alone
(newer writers add some, e.g. "versions" and "progress_to" in config.json).
"""

from __future__ import annotations

import json
import math
import os
import re
from datetime import datetime
from typing import TypeGuard

from trajgen.content.config import GenerationConfig
from trajgen.errors import ConfigError

RUN_FORMAT = "trajgen-run/2"
READABLE_FORMATS = ("trajgen-run/1", RUN_FORMAT)  # format 1 runs are read, verified and exported
PROGRESS_FORMAT = "trajgen-progress/1"
STATUSES = ("running", "complete")
PROGRESS_STATES = ("RUNNING", "COMPLETE", "STOPPED", "FAILED", "INTERRUPTED")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class SchemaError(ValueError):
    """A JSON file of the run does not have the expected shape; ``field`` names where (None: the whole file)."""

    def __init__(self, field: str | None, problem: str):
        self.field, self.problem = field, problem
        super().__init__(f'field "{field}" {problem}' if field else problem)


def load_json(path: os.PathLike | str) -> object:
    """The parsed file; SchemaError when it is not UTF-8 JSON (OSError passes through)."""
    with open(path, "rb") as f:
        raw = f.read()
    if not raw.strip():
        raise SchemaError(None, "is empty (not JSON)")
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise SchemaError(None, "is not UTF-8 text (not JSON)") from None
    except ValueError as e:
        raise SchemaError(None, f"is not valid JSON ({e})") from None


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _object(data: object) -> dict:
    if not isinstance(data, dict):
        raise SchemaError(None, f"must be a JSON object, not {_kind(data)}")
    return data


def _is_int(v: object) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: object) -> TypeGuard[int | float]:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _get(data: dict, key: str, prefix: str = "") -> object:
    if key not in data:
        raise SchemaError(prefix + key, "is missing")
    return data[key]


def _int(data: dict, key: str, lo: int = 0, prefix: str = "") -> int:
    v = _get(data, key, prefix)
    if not _is_int(v) or v < lo:
        raise SchemaError(prefix + key, f"must be an integer ≥ {lo}, got {json.dumps(v)[:40]}")
    return v


def _str(data: dict, key: str, prefix: str = "") -> str:
    v = _get(data, key, prefix)
    if not isinstance(v, str):
        raise SchemaError(prefix + key, f"must be a string, got {_kind(v)}")
    return v


def _equal(field: str, value: object, expected: object) -> None:
    if value != expected:
        raise SchemaError(field, f"is {json.dumps(value)[:60]}, but the config says {json.dumps(expected)[:60]}")


def check_config(data: object, field: str = "config") -> GenerationConfig:
    """A generation config object (as stored in both files)."""
    if not isinstance(data, dict):
        raise SchemaError(field, f"must be an object, got {_kind(data)}")
    try:
        return GenerationConfig.from_dict(data)
    except ConfigError as e:
        raise SchemaError(field, f"is invalid: {e}") from None
    except (TypeError, ValueError) as e:
        raise SchemaError(field, f"is invalid: {' '.join(str(e).split())}") from None


def shard_name(k: int) -> str:
    return f"shards/shard-{k:05d}.npz"


def check_entry(entry: object, config: GenerationConfig, where: str) -> dict:
    """One shard entry: every field of the right type, consistent with the config's layout."""
    if not isinstance(entry, dict):
        raise SchemaError(where, f"must be an object, got {_kind(entry)}")
    prefix = where + "."
    k = _int(entry, "index", 0, prefix)
    if k >= config.num_shards:
        raise SchemaError(prefix + "index", f"is {k}, but the run has shards 0..{config.num_shards - 1}")
    r = config.shard_range(k)
    if _str(entry, "file", prefix) != shard_name(k):
        raise SchemaError(prefix + "file", f"must be {shard_name(k)} for shard {k}")
    _equal(prefix + "start", _int(entry, "start", 0, prefix), r.start)
    _equal(prefix + "count", _int(entry, "count", 1, prefix), len(r))
    if not _SHA256.fullmatch(_str(entry, "sha256", prefix)):
        raise SchemaError(prefix + "sha256", "must be 64 lowercase hex digits")
    _int(entry, "bytes", 1, prefix)
    counts = _get(entry, "class_counts", prefix)
    if (
        not isinstance(counts, dict)
        or any(name not in config.classes for name in counts)
        or any(not _is_int(n) or n < 0 for n in counts.values())
    ):
        raise SchemaError(
            prefix + "class_counts", f"must map the run's classes to counts ≥ 0, got {json.dumps(counts)[:80]}"
        )
    if sum(counts.values()) != len(r):
        raise SchemaError(
            prefix + "class_counts", f"add up to {sum(counts.values())}, but the shard holds {len(r)} samples"
        )
    for key in ("framing_redraws", "occlusion_redraws"):
        if key in entry:
            _int(entry, key, 0, prefix)
    return entry


def check_manifest(data: object, *, check_entries: bool = True) -> GenerationConfig:
    """manifest.json: header consistent with its config, and (unless ``check_entries`` is False)
    every shard entry valid and listed once. Returns the run's config."""
    m = _object(data)
    if _get(m, "format") not in READABLE_FORMATS:
        raise SchemaError("format", f"must be {RUN_FORMAT!r}, got {json.dumps(m['format'])[:40]}")
    _str(m, "trajgen_version")
    config = check_config(_get(m, "config"))
    classes = _get(m, "classes")
    if not isinstance(classes, list) or any(not isinstance(c, str) for c in classes):
        raise SchemaError("classes", f"must be a list of class names, got {json.dumps(classes)[:60]}")
    _equal("classes", classes, list(config.classes))
    _equal("total_samples", _int(m, "total_samples", 1), config.n)
    _equal("checkpoint_every", _int(m, "checkpoint_every", 1), config.checkpoint_every)
    _equal("num_shards", _int(m, "num_shards", 1), config.num_shards)
    if _get(m, "status") not in STATUSES:
        raise SchemaError("status", f"must be one of {', '.join(STATUSES)}, got {json.dumps(m['status'])[:40]}")
    shards = _get(m, "shards")
    if not isinstance(shards, list):
        raise SchemaError("shards", f"must be a list, got {_kind(shards)}")
    if check_entries:
        seen = set()
        for i, entry in enumerate(shards):
            k = check_entry(entry, config, f"shards[{i}]")["index"]
            if k in seen:
                raise SchemaError(f"shards[{i}].index", f"lists shard {k} twice")
            seen.add(k)
    return config


def check_config_file(data: object) -> GenerationConfig:
    """config.json: the config, the version that wrote it and its content fingerprint."""
    c = _object(data)
    config = check_config(_get(c, "config"))
    _str(c, "trajgen_version")
    if "content_fingerprint" in c and c["content_fingerprint"] != config.content_fingerprint():
        raise SchemaError("content_fingerprint", "does not match the config (the config was edited)")
    if "versions" in c and not (
        isinstance(c["versions"], dict) and all(isinstance(v, (str, type(None))) for v in c["versions"].values())
    ):
        raise SchemaError("versions", f"must map names to version strings, got {json.dumps(c['versions'])[:60]}")
    if "progress_to" in c and not isinstance(c["progress_to"], (str, type(None))):
        raise SchemaError("progress_to", f"must be a directory path or null, got {_kind(c['progress_to'])}")
    return config


def check_progress(data: object) -> dict:
    """progress.json: what a working process last reported (the manifest stays the truth)."""
    p = _object(data)
    if _get(p, "format") != PROGRESS_FORMAT:
        raise SchemaError("format", f"must be {PROGRESS_FORMAT!r}")
    if _get(p, "state") not in PROGRESS_STATES:
        raise SchemaError("state", f"must be one of {', '.join(PROGRESS_STATES)}, got {json.dumps(p['state'])[:40]}")
    _str(p, "run_dir")
    _str(p, "host")
    for key in ("total_samples", "total_shards", "checkpoint_every"):
        _int(p, key, 1)
    for key in ("completed_samples", "completed_shards", "framing_redraws", "pid"):
        _int(p, key, 0)
    if p["completed_samples"] > p["total_samples"] or p["completed_shards"] > p["total_shards"]:
        raise SchemaError("completed_samples", "is more than the run holds")
    for key in ("inflight_samples", "inflight_shards", "session_samples"):  # added later: absent in older files
        if key in p:
            _int(p, key, 0)
    for key, optional in (("rate", True), ("elapsed_seconds", False), ("eta_seconds", True)):
        v = _get(p, key)
        if not ((optional and v is None) or (_is_number(v) and v >= 0)):
            raise SchemaError(key, f"must be a number ≥ 0{' or null' if optional else ''}, got {json.dumps(v)[:40]}")
    counts = _get(p, "class_counts")
    if not isinstance(counts, dict) or any(not _is_int(n) or n < 0 for n in counts.values()):
        raise SchemaError("class_counts", "must map class names to counts ≥ 0")
    if not isinstance(_get(p, "error"), (str, type(None))):
        raise SchemaError("error", "must be a string or null")
    try:
        datetime.fromisoformat(_str(p, "updated_at"))
    except ValueError:
        raise SchemaError("updated_at", "must be an ISO 8601 time") from None
    return p
