#!/usr/bin/env python
"""A run made by an older trajgen (default: 0c5933e, 0.2.0, whose shards are zlib) is finished and
repaired by this trajgen byte for byte, and keeps its codec.

The older trajgen is checked out with `git worktree` and run through PYTHONPATH in this virtual
environment. It makes a whole run, and the same run killed mid-way (a real os._exit at one file
operation, as a kill -9 leaves it). This trajgen resumes the cut run (with --allow-version-change
if the versions differ), then one committed shard is damaged and `trajgen repair` remakes it.
Every shard is compared with the whole run's, and the manifest's codec with the older one's.

Usage: python scripts/check_resume_old_run.py [--baseline 0c5933e] [--n 4000] → artifacts/resume_old_run.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def trajgen(tree: Path | None, *args, env=None) -> subprocess.CompletedProcess:
    environment = {**os.environ, **(env or {})}
    if tree is not None:
        environment["PYTHONPATH"] = str(tree / "src")
    return subprocess.run(
        [sys.executable, "-m", "trajgen", *map(str, args)], env=environment, capture_output=True, text=True
    )


def shard_hashes(run: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((run / "shards").glob("*.npz"))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="0c5933e")
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--out", type=Path, default=ROOT / "artifacts" / "resume_old_run.json")
    opts = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="trajgen-old-run-"))
    old = work / "baseline"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), opts.baseline],
        check=True,
        capture_output=True,
    )
    args = ("generate", "--n", opts.n, "--checkpoint-every", 250, "--seed", 29, "--workers", 1, "--quiet")
    try:
        whole, cut = work / "whole", work / "cut"
        assert trajgen(old, *args, "--out", whole).returncode == 0
        killed = trajgen(old, *args, "--out", cut, env={"TRAJGEN_FAULT": "exit@120"})
        committed_when_killed = len(json.loads((cut / "manifest.json").read_text())["shards"])
        resumed = trajgen(None, "resume", cut, "--workers", 1, "--quiet")
        if resumed.returncode != 0 and "--allow-version-change" in resumed.stderr:
            resumed = trajgen(None, "resume", cut, "--workers", 1, "--quiet", "--allow-version-change")
        after_resume = shard_hashes(cut) == shard_hashes(whole)
        damaged = sorted((cut / "shards").glob("*.npz"))[3]
        damaged.write_bytes(damaged.read_bytes()[:1000])
        repaired = trajgen(None, "repair", cut)
        verified = trajgen(None, "verify", cut)
        codecs = [json.loads((run / "manifest.json").read_text())["codec"] for run in (whole, cut)]
        result = {
            "baseline": opts.baseline,
            "samples": opts.n,
            "killed_exit_code": killed.returncode,
            "shards_committed_when_killed": committed_when_killed,
            "resume_exit_code": resumed.returncode,
            "resume_stderr": resumed.stderr[-500:],
            "identical_after_resume": after_resume,
            "repair_exit_code": repaired.returncode,
            "repaired_shard": damaged.name,
            "identical_after_repair": shard_hashes(cut) == shard_hashes(whole),
            "verify_exit_code": verified.returncode,
            "codec_of_the_old_run": codecs[0],
            "codec_after_resume_and_repair": codecs[1],
            "keeps_its_codec": codecs[0] == codecs[1],
            "command": "python scripts/check_resume_old_run.py " + " ".join(sys.argv[1:]),
        }
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    opts.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
