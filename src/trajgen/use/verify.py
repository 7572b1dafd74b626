"""verify: check a run against its manifest and the shard contract, shard by shard.

Reads only. Memory: one decoded shard at a time plus an 8-byte hash per sample for
the duplicate check. The report names each bad file and what is wrong with it, and
tells damage (bytes that changed after the commit, unreadable or missing shards) from
properties of the generation (duplicate videos or unbalanced classes in shards whose
bytes match the manifest): the advice differs, both fail the check.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from trajgen.content.camera import CAMERA_COLUMNS, is_visible
from trajgen.content.config import GenerationConfig
from trajgen.content.sample import make_sample
from trajgen.errors import CorruptShardError
from trajgen.store import schema
from trajgen.store.checksums import sha256_file, video_hashes
from trajgen.store.manifest import read_config, read_config_file, read_manifest
from trajgen.store.run_copy import RunCopy
from trajgen.store.rundir import RunPaths, lock_holder, resume_command, shard_file
from trajgen.store.shards import SCENE_KEYS, read_shard, shard_keys
from trajgen.use.bucket_copy import serves_urls
from trajgen.use.verify_files import check_bucket_objects, check_run_files
from trajgen.use.verify_report import DAMAGE, GENERATION, OTHER, VerifyReport

DEEP_SAMPLES = 200
_SHOWN = 5  # sample indices listed per problem
_CONFIRMED_PAIRS = 20  # duplicate pairs regenerated with make_sample to tell generation from damage


def _check_bucket(report: VerifyReport, copy: RunCopy) -> None:
    """verify_run of a run in a bucket, after its local copy is checked: the objects beside the run."""
    manifest = read_manifest(copy.root, check_entries=False)
    listed = [e for e in manifest["shards"] if isinstance(e, dict) and isinstance(e.get("index"), int)]
    check_bucket_objects(report, copy.bucket, listed, complete=manifest["status"] == "complete")


@serves_urls(fresh=True, then=_check_bucket)
def verify_run(
    run_dir: os.PathLike | str, deep: bool = False, deep_samples: int = DEEP_SAMPLES, seed: int = 0
) -> VerifyReport:
    """Check every listed shard (size, sha256, keys, dtypes, shapes, indices, labels, class
    balance, points in frame), duplicates across the run, and stray files. With ``deep``,
    regenerate ``deep_samples`` randomly chosen samples (seeded) and compare them."""
    paths = RunPaths(Path(run_dir))
    manifest = read_manifest(paths.root, check_entries=False)  # RunError when missing or not a run
    config = GenerationConfig.from_dict(manifest["config"])
    report = VerifyReport(
        paths.root, total_shards=config.num_shards, listed_shards=len(manifest["shards"]), config=config
    )
    if read_config(paths.root) != config:
        report.add("config.json", "describes a different run than manifest.json")
    try:
        report.held_by = lock_holder(paths)
    except OSError as e:
        report.add(".lock", f"cannot be read ({e.strerror or e}), so whether a process works on the run is unknown")
        report.held_by = None
    in_progress = report.held_by is not None
    entries = _check_plan(report, manifest, config, in_progress)
    report.listed_samples = sum(e["count"] for e in entries)

    starts = np.cumsum([0] + [e["count"] for e in entries])
    hashes = np.zeros(int(starts[-1]), np.uint64)  # the duplicate check's whole memory
    hashed = np.zeros(int(starts[-1]), bool)
    chosen = _deep_choice(starts, deep_samples, seed) if deep else np.empty(0, np.int64)
    versions_changed = bool(_version_changes(paths))
    totals = np.zeros(len(config.classes), np.int64)
    as_made = np.zeros(len(entries), bool)  # the shard's bytes are what the manifest records
    for slot, entry in enumerate(entries):
        arrays = _check_shard(report, paths, config, entry)
        if arrays is None:
            continue
        as_made[slot] = shard_file(entry["index"]) not in report.repairable
        report.checked_shards += 1
        report.checked_samples += len(arrays["index"])
        labels = arrays["labels"]
        totals += np.bincount(labels[(labels >= 0) & (labels < len(config.classes))], minlength=len(config.classes))
        lo = int(starts[slot])
        hashes[lo : lo + len(arrays["videos"])] = video_hashes(arrays["videos"])
        hashed[lo : lo + len(arrays["videos"])] = True
        rows = chosen[(chosen >= lo) & (chosen < starts[slot + 1])] - lo
        # other versions than made the run may regenerate other bytes: then a mismatch in a shard that
        # matches the manifest is not evidence of damage
        _check_deep(
            report, config, entry, arrays, rows.tolist(), DAMAGE if not versions_changed or not as_made[slot] else OTHER
        )
        del arrays  # before the next shard is decoded: one shard in memory, not two
    _check_duplicates(report, config, entries, starts, hashes, hashed, as_made, confirm=not versions_changed)
    report.notes.insert(0, "classes: " + " · ".join(f"{n} {c:,}" for n, c in zip(config.classes, totals.tolist())))
    if manifest["status"] == "complete" and len(totals) and totals.max() - totals.min() > 1:
        report.add(
            "manifest.json",
            f"classes are unbalanced over the run: {dict(zip(config.classes, totals.tolist()))}",
            GENERATION if as_made.all() else DAMAGE,
        )
    if deep:
        report.notes.append(
            f"deep: regenerated {report.deep_checked:,} randomly chosen samples (seed {seed}) with make_sample"
            + _deep_versions_note(paths)
        )
    _mixed_versions_note(report, paths, entries)
    listed = [e for e in manifest["shards"] if isinstance(e, dict) and isinstance(e.get("index"), int)]
    # a shard whose entry is damaged is still listed, not stray
    check_run_files(report, paths, listed, in_progress, complete=manifest["status"] == "complete")
    return report


def _version_changes(paths: RunPaths) -> list[str]:
    """The byte-deciding versions installed here that differ from the run's (make_sample may then differ)."""
    from trajgen.store.versions import ENCODERS, byte_versions, differences, recorded_versions

    recorded = recorded_versions(read_config_file(paths.root))
    # make_sample and the videos do not depend on what deflates or inflates the shards
    return differences({k: v for k, v in recorded.items() if k not in ENCODERS}, byte_versions())


def _deep_versions_note(paths: RunPaths) -> str:
    """Said when the samples were regenerated under other versions than the run records."""
    changed = _version_changes(paths)
    return (
        f" under other versions than the run's (run → installed): {', '.join(changed)}; a mismatch may be "
        f"a version effect, not damage"
        if changed
        else ""
    )


def _mixed_versions_note(report: VerifyReport, paths: RunPaths, entries: list[dict]) -> None:
    """A run resumed with --allow-version-change: which shards other versions made (a warning, not damage)."""
    from trajgen.store.versions import differences, recorded_versions

    recorded = recorded_versions(read_config_file(paths.root))
    groups: dict[str, list[int]] = {}
    for e in entries:
        if isinstance(e.get("versions"), dict):
            changed = differences(recorded, {str(k): str(v) for k, v in e["versions"].items()})
            if changed:
                groups.setdefault(", ".join(changed), []).append(e["index"])
    for versions, shards in groups.items():
        report.notes.append(
            f"mixed versions: shards {', '.join(map(str, shards))} were made with other versions than "
            f"the rest of the run (run → shard): {versions} (resumed with --allow-version-change); "
            f"their samples may differ from a run made in one go"
        )


_ENTRY_FIELDS = {
    "index": int,
    "file": str,
    "start": int,
    "count": int,
    "sha256": str,
    "bytes": int,
    "class_counts": dict,
}


def _check_plan(report: VerifyReport, manifest: dict, config: GenerationConfig, in_progress: bool) -> list[dict]:
    """The manifest against the config: which shards exist, their ranges, the run's status.
    Returns the entries the shard checks can use, in index order."""
    usable: dict[int, dict] = {}
    for i, e in enumerate(manifest["shards"]):
        try:
            schema.check_entry(e, config, f"shards[{i}]")
        except schema.SchemaError as err:
            report.add("manifest.json", f"has a malformed shard entry: {err}")
            continue
        k = e["index"]
        if k in usable:
            report.add("manifest.json", f"lists shard {k} twice")
            continue
        usable[k] = e
    entries = [usable[k] for k in sorted(usable)]
    done = len(manifest["shards"])
    if done < config.num_shards:
        state = "still being written" if in_progress else f"finish it with: {resume_command(report.run_dir)}"
        report.add(
            "manifest.json",
            f"run is incomplete: {done} of {config.num_shards} shards committed "
            f"({sum(e['count'] for e in entries):,} of {config.n:,} samples); {state}",
        )
        if manifest["status"] == "complete":
            report.add(
                "manifest.json",
                f"status is 'complete' but shards are missing; {resume_command(report.run_dir)} makes them",
            )
    elif manifest["status"] != "complete":
        report.add(
            "manifest.json",
            f"every shard is committed but the status is not 'complete'; "
            f"{resume_command(report.run_dir)} writes it back",
        )
    return entries


def _check_shard(report: VerifyReport, paths: RunPaths, config: GenerationConfig, entry: dict) -> dict | None:
    """Size, sha256 and contents of one listed shard; its arrays, or None when unreadable."""
    name = shard_file(entry["index"])
    path = paths.root / name
    if not path.is_file():
        report.add(name, "is missing (listed in the manifest, not on disk)", DAMAGE)
        report.repairable.add(name)
        return None
    try:
        size = path.stat().st_size
        if size != entry["bytes"]:
            report.add(
                name,
                f"size is {size:,} bytes, the manifest records {entry['bytes']:,} bytes (truncated or replaced)",
                DAMAGE,
            )
            report.repairable.add(name)
        elif sha256_file(path) != entry["sha256"]:
            report.add(name, "sha256 does not match the manifest (the file changed after it was committed)", DAMAGE)
            report.repairable.add(name)
        arrays = read_shard(path, shard_keys(config))
    except CorruptShardError as e:
        report.add(name, str(e).replace(f"shard file {path} ", "", 1), DAMAGE)
        return None
    except OSError as e:  # e.g. no permission to read it
        report.add(name, f"cannot be read: {e.strerror or e}")
        return None
    n, count, size_px = len(arrays["index"]), entry["count"], config.size
    expected = {"videos": (count, config.frames, size_px, size_px, 3), "camera": (count, len(CAMERA_COLUMNS))}
    for key, shape in expected.items():
        if arrays[key].shape != shape:
            report.add(name, f"{key} has shape {arrays[key].shape}, expected {shape}", DAMAGE)
    if n != count:
        return None  # nothing below can line up
    index = arrays["index"]
    want = np.arange(entry["start"], entry["start"] + count)
    if not np.array_equal(index, want):
        if np.array_equal(np.sort(index), want):
            report.add(name, "index is not in order (it must run from start to end)", DAMAGE)
        else:
            row = int(np.flatnonzero(np.sort(index) != want)[0])
            report.add(name, f"index is incomplete: expected {want[0]}..{want[-1]}, first gap near {want[row]}", DAMAGE)
    labels, classes = arrays["labels"], config.classes
    bad = np.flatnonzero((labels < 0) | (labels >= len(classes)))
    if len(bad):
        report.add(name, f"{len(bad)} label(s) outside 0..{len(classes) - 1}: {_indices(index[bad])}", DAMAGE)
    counts = np.bincount(labels[(labels >= 0) & (labels < len(classes))], minlength=len(classes)).tolist()
    if dict(zip(classes, counts)) != entry["class_counts"]:
        report.add(
            name,
            f"class counts {dict(zip(classes, counts))} differ from the manifest's {entry['class_counts']}",
            DAMAGE,
        )
    if max(counts) - min(counts) > 1:
        report.add(
            name,
            f"classes are unbalanced: {dict(zip(classes, counts))}",
            DAMAGE if name in report.repairable else GENERATION,
        )
    if arrays["points_2d"].shape[1:] == (config.frames, 2):
        outside = [row for row in range(n) if not is_visible(arrays["points_2d"][row], size_px, config.radius)]
        if outside:
            report.add(
                name,
                f"{len(outside)} sample(s) out of frame (points_2d within {config.radius:g} px of the edge "
                f"or outside): {_indices(index[outside])}",
                DAMAGE,
            )
    return arrays


def _deep_choice(starts: np.ndarray, k: int, seed: int) -> np.ndarray:
    total = int(starts[-1])
    return np.sort(np.random.default_rng(seed).choice(total, size=min(k, total), replace=False))


def _check_deep(
    report: VerifyReport, config: GenerationConfig, entry: dict, arrays: dict, rows: list[int], kind: str = DAMAGE
) -> None:
    name = shard_file(entry["index"])
    for row in rows:
        i = entry["start"] + row
        s = make_sample(config, i)
        report.deep_checked += 1
        mine = {
            "videos": s.video,
            "labels": s.label,
            "trajectory_3d": s.trajectory_3d,
            "points_2d": s.points_2d,
            "camera": s.camera,
            "equations": s.equation,
            "descriptions": s.description,
        }
        mine |= {key: getattr(s, key) for key in SCENE_KEYS if key in arrays}
        differ = [key for key, value in mine.items() if not _same_bytes(arrays[key][row], value)]
        if differ:
            report.add(name, f"index {i} differs from make_sample in {', '.join(differ)}", kind)


def _same_bytes(stored, made) -> bool:
    stored, made = np.asarray(stored), np.asarray(made)
    if stored.dtype.kind == "U":
        return str(stored) == str(made)
    return stored.shape == made.shape and stored.tobytes() == made.astype(stored.dtype).tobytes()


def _check_duplicates(
    report: VerifyReport,
    config: GenerationConfig,
    entries: list[dict],
    starts: np.ndarray,
    hashes: np.ndarray,
    hashed: np.ndarray,
    as_made: np.ndarray,
    confirm: bool = True,
) -> None:
    """Equal videos anywhere in the run. A pair in shards whose bytes match the manifest is the config's doing
    when make_sample makes those same videos again (checked for the first pairs, unless other versions are
    installed than made the run: then make_sample could differ for that reason alone); otherwise it is damage."""
    order = np.flatnonzero(hashed)
    order = order[np.argsort(hashes[order], kind="stable")]
    same = np.flatnonzero(hashes[order[1:]] == hashes[order[:-1]])
    for n, j in enumerate(same):
        first, dup = int(order[j]), int(order[j + 1])  # stable sort: first < dup
        first_slot, dup_slot = (int(np.searchsorted(starts, p, side="right")) - 1 for p in (first, dup))
        first_index = entries[first_slot]["start"] + first - int(starts[first_slot])
        dup_index = entries[dup_slot]["start"] + dup - int(starts[dup_slot])
        message = (
            f"duplicate video: index {dup_index} is the same video as index {first_index} "
            f"({shard_file(entries[first_slot]['index'])})"
        )
        kind = GENERATION if as_made[first_slot] and as_made[dup_slot] else DAMAGE
        if kind == GENERATION and confirm and n < _CONFIRMED_PAIRS:
            remade = [
                i
                for i, p in ((first_index, first), (dup_index, dup))
                if video_hashes(make_sample(config, i).video[None])[0] != hashes[p]
            ]
            if remade:
                kind = DAMAGE
                message += (
                    f", but make_sample makes a different video for index {remade[0]} "
                    f"(the shard changed after it was made)"
                )
        report.add(shard_file(entries[dup_slot]["index"]), message, kind)


def _indices(values) -> str:
    values = [int(v) for v in values]
    shown = ", ".join(f"index {v}" for v in values[:_SHOWN])
    return shown + (f" and {len(values) - _SHOWN} more" if len(values) > _SHOWN else "")
