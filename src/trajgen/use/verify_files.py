"""verify's look at what lies beside a run: files in a run directory, and objects beside a run in a
bucket, that are not the run's own, its listed shards, or what users make from it. Names only:
nothing here reads, moves or deletes what it finds."""

from __future__ import annotations

from pathlib import Path

from trajgen.store.lease import live_holder
from trajgen.store.objects import Bucket
from trajgen.store.rundir import RunPaths, resume_command, shard_file
from trajgen.use.verify_report import VerifyReport

RUN_FILES = {
    "config.json",
    "manifest.json",
    "PROGRESS.txt",
    "progress.json",
    "run.log",
    ".lock",
    "progress_history.json",
}
RUN_DIRS = {"shards", ".tmp", ".reserve"}  # .reserve: space kept for the last words on a full disk
# what users make from a run and may keep in it: exports, previews and the quality report
PRODUCT_SUFFIXES = (".npz", ".png", ".mp4")
PRODUCT_FILES = {"report.html", "report.json"}


def check_run_files(
    report: VerifyReport, paths: RunPaths, entries: list[dict], in_progress: bool, *, complete: bool
) -> None:
    """Nothing in the run directory but the run's own files, its listed shards, and exports or previews.
    What a stopped process left behind in an unfinished run, resume clears as it finishes it."""
    leftover = _leftover(paths.root, complete)
    top = [(p.name, p.is_dir()) for p in sorted(paths.root.iterdir())]
    shards = sorted(p.name for p in paths.shards.iterdir()) if paths.shards.is_dir() else []
    if _check_names(report, top, shards, entries, in_progress, leftover, in_bucket=False):
        for p in sorted(paths.tmp.iterdir()) if paths.tmp.is_dir() else []:
            report.add(
                f".tmp/{p.name}", f"in-flight file left by a stopped process (never read as a result); {leftover}"
            )


def check_bucket_objects(report: VerifyReport, bucket: Bucket, entries: list[dict], *, complete: bool) -> None:
    """check_run_files for a run in a bucket, on the objects listed there afresh (the local copy verify
    reads holds only the run's own), with the multipart uploads a stopped writer left pending."""
    holder = live_holder(bucket)
    if holder is not None:
        report.held_by = holder
    leftover = _leftover(bucket.url, complete)
    names = bucket.names("")
    top = sorted({(name.split("/", 1)[0], "/" in name) for name in names})
    shards = [name.removeprefix("shards/") for name in names if name.startswith("shards/")]
    if _check_names(report, top, shards, entries, holder is not None, leftover, in_bucket=True):
        pending = "abort it" if complete else f"{resume_command(bucket.url)} aborts it and finishes the run"
        for name, _ in bucket.pending_uploads(""):
            report.add(name, f"a multipart upload left pending by a stopped process (never read); {pending}")


def _leftover(run, complete: bool) -> str:
    """What to do with something a stopped process left beside the run."""
    return "delete it" if complete else f"{resume_command(run)} removes it and finishes the run"


def _check_names(
    report: VerifyReport,
    top: list[tuple[str, bool]],
    shards: list[str],
    entries: list[dict],
    in_progress: bool,
    leftover: str,
    *,
    in_bucket: bool,
) -> bool:
    """Report what ``top`` ((name, is a directory) at the run's top) and ``shards`` (names in shards/)
    hold beside the run; whether shards/ was looked at (not while a process writes the run)."""
    thing = "object" if in_bucket else "file"
    listed = {Path(shard_file(e["index"])).name for e in entries if isinstance(e["index"], int)}
    products = []
    for name, is_dir in top:
        if name in RUN_FILES | RUN_DIRS:
            continue
        if not is_dir and (name.endswith(PRODUCT_SUFFIXES) or name in PRODUCT_FILES):
            products.append(name)
        elif is_dir and in_bucket:  # a "directory" in a bucket is objects under a common prefix
            report.add(f"{name}/", "stray objects: not part of a trajgen run; move them elsewhere")
        else:
            report.add(name, f"stray {'directory' if is_dir else thing}: not part of a trajgen run; move it elsewhere")
    if products:
        report.notes.append(f"exports and previews kept in the run: {', '.join(products)}")
    if in_progress:
        unchecked = "pending uploads" if in_bucket else ".tmp/"
        report.notes.append(
            f"in progress: another process holds the run's {'lease' if in_bucket else 'lock'}; "
            f"{unchecked} and uncommitted shards not checked"
        )
        return False
    for name in shards:
        if name in listed:
            continue
        if name.startswith("shard-") and name.endswith(".npz"):
            report.add(
                f"shards/{name}", f"is not listed in the manifest (never committed; readers ignore it); {leftover}"
            )
        else:
            report.add(f"shards/{name}", f"stray {thing}: not a shard of this run; move it elsewhere")
    return True
