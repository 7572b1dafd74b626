#!/usr/bin/env python
"""Does the same input deflate to the same bytes in every process? python-isal's compressor
against trajgen's ISA-L stream (trajgen.deflate), side by side.

Each of --processes fresh processes deflates the videos member of the same 200-sample shard
(the .npy header, then 16 MiB chunks, as a shard is written) --reps times, leaving random
bytes, and compressors that held parts of the shard, in freed heap blocks before each encode. Counted: distinct outputs of each encoder.
Then trajgen's level-1 bytes under valgrind (which hides AVX-512 from ISA-L, so another
kernel runs) against the native ones, when valgrind is installed; and whether ISA-L reads
past either end of its input (each input put against an inaccessible page: a read there
kills the process).

Usage: python scripts/check_deflate_determinism.py [--processes 8] [--reps 40]
       → artifacts/deflate_determinism.json
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WORKER = """
import hashlib, sys
import numpy as np
from isal import isal_zlib
from trajgen import deflate
from trajgen.shards import _npy_header

videos = np.load(sys.argv[1])
encoder, reps, seed = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(seed)
big = np.ones(64 << 20, np.uint8); del big  # freeing a large block raises glibc's mmap threshold
raw = videos.reshape(-1)
pieces = [_npy_header(videos)] + [raw[s : s + (16 << 20)].data for s in range(0, raw.size, 16 << 20)]
for _ in range(reps):
    junk = [bytearray(rng.bytes(size)) for size in (5_000, 70_000, 1 << 16, 1 << 17, 1 << 18, 300_000, 1 << 20, 2 << 20)]
    used = [isal_zlib.compressobj(1, isal_zlib.DEFLATED, -15) for _ in range(3)]  # compressors that held shard bytes
    for c in used:
        c.compress(raw[int(rng.integers(0, raw.size - (1 << 20))) :][: 1 << 20].data)
    del junk, used
    if encoder == "python-isal":
        c = isal_zlib.compressobj(1, isal_zlib.DEFLATED, -15)
        out = b"".join([c.compress(p) for p in pieces] + [c.flush()])
    else:
        out = b"".join(deflate.deflate(pieces, deflate.codec_for_level(1)))
    print(hashlib.sha256(out).hexdigest())
"""

KERNEL = """
import hashlib, sys
import numpy as np
from trajgen import deflate
videos = np.load(sys.argv[1])[:8].reshape(-1)
print(hashlib.sha256(b"".join(deflate.deflate([videos[: 1 << 20].data, videos[1 << 20 :].data],
                                              deflate.codec_for_level(1)))).hexdigest())
"""

GUARDED = """
import ctypes, mmap, sys
import numpy as np
from trajgen import deflate
libc = ctypes.CDLL(None)
page = mmap.PAGESIZE
data = np.load(sys.argv[1])[:4].tobytes()
keep = []
def against_a_guard(n, after):
    pages = (n + page - 1) // page + 2
    m = mmap.mmap(-1, pages * page)
    base = ctypes.addressof(ctypes.c_char.from_buffer(m))
    guard = base + (pages - 1) * page if after else base
    assert libc.mprotect(ctypes.c_void_p(guard), page, 0) == 0
    start = (pages - 1) * page - n if after else page
    m[start : start + n] = data[:n]
    keep.append(m)
    return np.frombuffer(m, np.uint8, n, start)
for n in (1, 31, 63, 64, 65, 127, 128, 129, 300, 4095, 4096, 70_000, 300_000, len(data)):
    for after in (True, False):
        deflate.deflate([against_a_guard(128, after), against_a_guard(n, after)], deflate.codec_for_level(1))
print("no read past the input")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--reps", type=int, default=40)
    parser.add_argument("--out", default=str(ROOT / "artifacts" / "deflate_determinism.json"))
    args = parser.parse_args()
    from trajgen import GenerationConfig
    from trajgen.shardmaker import build_shard_arrays

    with tempfile.TemporaryDirectory() as scratch:
        videos_file = Path(scratch) / "videos.npy"
        import numpy as np

        np.save(videos_file, build_shard_arrays(GenerationConfig(n=200, checkpoint_every=200, seed=7), 0)[0]["videos"])
        outputs = {}
        for encoder in ("python-isal", "trajgen"):
            seen = collections.Counter()
            for seed in range(args.processes):
                done = subprocess.run([sys.executable, "-c", WORKER, str(videos_file), encoder, str(args.reps), str(seed)],
                                      capture_output=True, text=True, check=True)
                seen.update(done.stdout.split())
            outputs[encoder] = {"encodes": sum(seen.values()), "distinct_outputs": len(seen),
                                "counts": dict(seen.most_common())}
            print(encoder, outputs[encoder]["encodes"], "encodes,", len(seen), "distinct", flush=True)
        kernels = {"native": subprocess.run([sys.executable, "-c", KERNEL, str(videos_file)], capture_output=True,
                                            text=True, check=True).stdout.strip()}
        if shutil.which("valgrind"):
            under = subprocess.run(["valgrind", "-q", "--error-limit=no", sys.executable, "-c", KERNEL, str(videos_file)],
                                   capture_output=True, text=True, env={**os.environ, "PYTHONMALLOC": "malloc"})
            kernels["valgrind (no AVX-512)"] = under.stdout.strip() or f"failed: {under.stderr[-200:]}"
        guarded = subprocess.run([sys.executable, "-c", GUARDED, str(videos_file)], capture_output=True, text=True)
        reads_past_input = guarded.stdout.strip() if guarded.returncode == 0 else f"killed (exit {guarded.returncode})"
    result = {
        "command": "python scripts/check_deflate_determinism.py " + " ".join(sys.argv[1:]),
        "what": __doc__.split("\n\n")[1].replace("\n", " "),
        "processes": args.processes,
        "reps_per_process": args.reps,
        "encoders": outputs,
        "level_1_bytes_by_kernel": kernels,
        "reads_past_input": reads_past_input,
        "trajgen_deterministic": outputs["trajgen"]["distinct_outputs"] == 1 and len(set(kernels.values())) == 1
                                 and guarded.returncode == 0,
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "encoders"}, indent=2))


if __name__ == "__main__":
    main()
