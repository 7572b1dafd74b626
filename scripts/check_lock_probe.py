"""How often a starting writer is refused while a reader probes the run lock in a loop.

One process probes `.lock` with `lock_file.is_locked` as fast as it can (what a `watch trajgen
status` does, at its limit); this one meanwhile takes and drops the lock with
`lock_file.try_lock` (what each `generate`/`resume` does once). No process ever holds the lock
for longer than that, so every refusal is caused by the probe. Measured side by side:
the probe trajgen uses (an OFD lock tested with F_OFD_GETLK, which takes nothing) and
the shared-flock probe it replaced.

    python scripts/check_lock_probe.py [--seconds 3] [--out artifacts/lock_probe.json]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROBER = """
import sys, time
from trajgen.store import lock_file
lock_file._OFD = sys.argv[2] == "ofd"
end = time.monotonic() + float(sys.argv[3])
n = 0
print("ready", flush=True)
while time.monotonic() < end:
    lock_file.is_locked(sys.argv[1])
    n += 1
print(n, flush=True)
"""


def measure(kind: str, seconds: float) -> dict:
    from trajgen.store import lock_file

    lock_file._OFD = kind == "ofd"
    with tempfile.TemporaryDirectory() as where:
        lock = os.path.join(where, ".lock")
        Path(lock).touch()
        prober = subprocess.Popen(
            [sys.executable, "-c", PROBER, lock, kind, str(seconds)], stdout=subprocess.PIPE, text=True
        )
        assert prober.stdout.readline().strip() == "ready"
        attempts = refused = 0
        while prober.poll() is None:
            fd = lock_file.try_lock(lock, f"pid {os.getpid()} on test")
            attempts += 1
            if fd is None:
                refused += 1
            else:
                os.close(fd)
        probes = int(prober.stdout.read().split()[-1])
    return {"probe": kind, "writer_attempts": attempts, "refused": refused, "probes": probes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--out", type=Path, default=Path("artifacts/lock_probe.json"))
    args = parser.parse_args()
    results = [measure(kind, args.seconds) for kind in ("flock", "ofd")]
    report = {
        "what": "writer lock attempts refused while another process probes the lock in a loop",
        "command": "python scripts/check_lock_probe.py " + " ".join(sys.argv[1:]),
        "seconds_each": args.seconds,
        "cpus": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "results": results,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for r in results:
        print(
            f"{r['probe']:>5} probe: {r['refused']:,} of {r['writer_attempts']:,} writer attempts refused "
            f"({r['probes']:,} probes)"
        )


if __name__ == "__main__":
    main()
