"""Re-run the hostile-inputs table by hand: each row's reproduction through the real CLI
(`python -m trajgen`), with its exit code, its Error line, and whether the run is unchanged.

Usage: python scripts/hostile_table.py [--out artifacts/hostile_table.txt]
R is a finished 400-sample run (--checkpoint-every 100), copied fresh for every row.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TRAJGEN = [sys.executable, "-m", "trajgen"]


def run(*args, env=None, timeout=300):
    full = {**os.environ, **(env or {})}
    return subprocess.run([*TRAJGEN, *map(str, args)], capture_output=True, text=True, env=full, timeout=timeout)


def tree(root):
    root = Path(root)
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() and not p.is_symlink() else b"<dir>")
        for p in sorted(root.rglob("*"))
        if p.name != ".lock"
    }


def error_line(text):
    lines = [line for line in text.splitlines() if line.startswith("Error:")]
    tb = "Traceback" in text
    return (
        ("TRACEBACK " if tb else "")
        + (lines[-1] if lines else "(no Error line)")
        + (f"  [{len(lines)} Error lines]" if len(lines) > 1 else "")
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="artifacts/hostile_table.txt")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="hostile-"))
    ref = base / "ref"
    assert (
        run("generate", "--n", 400, "--checkpoint-every", 100, "--workers", 1, "--quiet", "--out", ref).returncode == 0
    )
    report = []

    def fresh(name="R"):
        path = base / name
        if path.exists():
            shutil.rmtree(path)
        shutil.copytree(ref, path)
        return path

    def unfinished():
        r = fresh("I")
        m = json.loads((r / "manifest.json").read_text())
        m["shards"], m["status"] = m["shards"][:2], "running"
        (r / "manifest.json").write_text(json.dumps(m, indent=2))
        for k in (2, 3):
            (r / f"shards/shard-{k:05d}.npz").unlink()
        return r

    def row(n, what, result, run_dir=None, before=None, extra=""):
        same = "" if run_dir is None else ("run unchanged" if tree(run_dir) == before else "RUN CHANGED")
        out = error_line(result.stderr) if result.returncode else (result.stdout.strip().splitlines() or [""])[-1][:150]
        report.append(
            f"{n:>3} {what}\n      exit {result.returncode}; {out}"
            + (f"; {same}" if same else "")
            + (f"; {extra}" if extra else "")
        )

    def edit(r, change):
        m = json.loads((r / "manifest.json").read_text())
        m = change(m)
        (r / "manifest.json").write_text(m if isinstance(m, str) else json.dumps(m, indent=2))

    # 1, 3: outputs onto the run's own files
    for target in ("manifest.json", "shards/shard-00000.npz"):
        r = fresh()
        b = tree(r)
        row(1, f"preview R -o R/{target}", run("preview", r, "-o", r / target), r, b)
    r = fresh()
    b = tree(r)
    row(3, "export R -o R/manifest.json --force", run("export", r, "-o", r / "manifest.json", "--force"), r, b)
    # 2: a device node -- tested with a FIFO (never a real device)
    fifo = base / "fifo"
    os.mkfifo(fifo)
    r = fresh()
    b = tree(r)
    row(
        2,
        "export R -o FIFO --force (device-node rule)",
        run("export", r, "-o", fifo, "--force"),
        r,
        b,
        "FIFO still there" if fifo.exists() and not fifo.is_file() else "FIFO REPLACED",
    )
    # 4: SIGTERM during export
    r = fresh()
    b = tree(r)
    proc = subprocess.Popen(
        [*TRAJGEN, "export", str(r), "--dtype", "float32", "--compress-level", "9"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    while not any("partial" in p.name for p in r.iterdir()) and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    res = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    row(4, "SIGTERM to export while it writes", res, r, b, f"verify exit {run('verify', r).returncode}")
    # 5: over-long names
    long = base / ("x" * 300)
    for a in (
        ("generate", "--n", 8, "--checkpoint-every", 4, "--out", long),
        ("status", long),
        ("resume", long),
        ("export", fresh(), "-o", f"{long}.npz"),
    ):
        row(5, " ".join(str(x)[:40] for x in a), run(*a))
    # 6, 7: damaged manifests
    for what, change in [
        ("manifest []", lambda m: "[]"),
        ("no status", lambda m: {k: v for k, v in m.items() if k != "status"}),
        ("no classes", lambda m: {k: v for k, v in m.items() if k != "classes"}),
        ("classes 5", lambda m: {**m, "classes": 5}),
        ('total_samples "x"', lambda m: {**m, "total_samples": "x"}),
    ]:
        for cmd in ("status", "verify", "resume", "export", "preview"):
            r = fresh()
            edit(r, change)
            b = tree(r)
            row(
                6 if what == "manifest []" else 7,
                f"{what}: {cmd}",
                run(cmd, r, *(["--workers", 1] if cmd == "resume" else [])),
                r,
                b,
            )
    r = fresh()
    edit(r, lambda m: (m["shards"][0]["class_counts"].__setitem__("linear", "25"), m)[1])
    b = tree(r)
    row(7, 'class_counts value "25": verify', run("verify", r), r, b)
    # 8, 9: memory
    row(
        8,
        "generate --n 2000000 --checkpoint-every 2000000",
        run("generate", "--n", 2_000_000, "--checkpoint-every", 2_000_000, "--out", base / "m8"),
        extra=f"dir created: {(base / 'm8').exists()}",
    )
    for dry in ([], ["--dry-run"]):
        row(
            9,
            "generate --n 4 --checkpoint-every 4 --size 4096 --frames 10000 " + " ".join(dry),
            run(
                "generate",
                "--n",
                4,
                "--checkpoint-every",
                4,
                "--size",
                4096,
                "--frames",
                10000,
                "--out",
                base / "m9",
                *dry,
            ),
        )
    r = fresh()
    b = tree(r)
    row(10, "preview R --per-class 1000000", run("preview", r, "--per-class", 1_000_000), r, b)
    # 11: status running with every shard listed
    r = fresh()
    edit(r, lambda m: {**m, "status": "running"})
    row(
        11,
        'status "running", every shard listed: resume',
        run("resume", r, "--workers", 1),
        extra=f"then export exit {run('export', r).returncode}",
    )
    # 12: .tmp / shards a regular file
    r = unfinished()
    shutil.rmtree(r / ".tmp")
    (r / ".tmp").write_text("x")
    b = tree(r)
    row(12, ".tmp a regular file: resume", run("resume", r, "--workers", 1), r, b)
    d = base / "d12"
    d.mkdir()
    (d / "shards").write_text("x")
    row(
        12,
        "shards a regular file in a new --out: generate",
        run("generate", "--n", 8, "--checkpoint-every", 4, "--out", d),
    )
    # 13, 27: option values
    for v in ("inf", "1e308", "0", "-5", "nan"):
        row(
            13 if v in ("inf", "1e308") else 27,
            f"--progress-interval {v}",
            run("generate", "--n", 8, "--checkpoint-every", 4, "--progress-interval", v, "--out", base / "p"),
        )
    # 14: Ctrl-C at start-up
    r = fresh()
    for delay in (0.03, 0.06, 0.09, 0.12, 0.15, 0.3, 0.6):  # the import window is shorter on a quiet machine
        proc = subprocess.Popen([*TRAJGEN, "status", str(r)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        row(
            14,
            f"Ctrl-C {delay} s after launching status",
            subprocess.CompletedProcess(proc.args, proc.returncode, out, err),
        )
    # 15, 16: a foreign shard, an empty shard
    small = base / "small"
    run("generate", "--n", 100, "--checkpoint-every", 100, "--size", 32, "--workers", 1, "--quiet", "--out", small)
    r = fresh()
    shutil.copy(small / "shards/shard-00000.npz", r / "shards/shard-00001.npz")
    b = tree(r)
    row(15, "a --size 32 shard copied in: preview --per-class 60", run("preview", r, "--per-class", 60), r, b)
    r = fresh()
    (r / "shards/shard-00001.npz").write_bytes(b"")
    b = tree(r)
    row(16, ": > shard-00001.npz; preview", run("preview", r), r, b)
    # 17: SIGINT during verify --deep, export, preview --video
    for cmd in (
        ["verify", "--deep"],
        ["export", "--dtype", "float32", "--compress-level", "9"],
        ["preview", "--video", "v.mp4", "--per-class", 40],
    ):
        r = fresh()
        b = tree(r)
        if cmd[0] == "preview":
            cmd[2] = str(base / "v.mp4")
        proc = subprocess.Popen(
            [*TRAJGEN, cmd[0], str(r), *map(str, cmd[1:])], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        time.sleep(0.7)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        row(
            17,
            f"SIGINT 0.7 s into {' '.join(cmd[:2])}",
            subprocess.CompletedProcess(proc.args, proc.returncode, out, err),
        )
    # 18: config.json removed
    r = fresh()
    original = (r / "config.json").read_bytes()
    (r / "config.json").unlink()
    b = tree(r)
    row(18, "rm config.json; export", run("export", r), r, b)
    row(
        18,
        "rm config.json; resume",
        run("resume", r, "--workers", 1),
        extra="config.json rebuilt byte-identical"
        if (r / "config.json").read_bytes() == original
        else "config.json DIFFERS",
    )
    # 19: complete, last entry dropped
    r = fresh()
    edit(r, lambda m: {**m, "shards": m["shards"][:3]})
    row(19, "last entry dropped, status complete: status", run("status", r))
    row(
        19,
        "  then resume",
        run("resume", r, "--workers", 1),
        extra="manifest identical to the reference"
        if (r / "manifest.json").read_bytes() == (ref / "manifest.json").read_bytes()
        else "MANIFEST DIFFERS",
    )
    # 20: shards/ removed from an unfinished run
    r = unfinished()
    shutil.rmtree(r / "shards")
    b = tree(r)
    row(20, "rm -rf I/shards; resume I", run("resume", r, "--workers", 1), r, b)
    # 21: a run being written
    r = unfinished()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from trajgen.store import lock_file

    fd = lock_file.try_lock(r / ".lock", f"pid {os.getpid()} on {socket.gethostname()}")
    b = tree(r)
    for a in (("verify", r), ("export", r), ("generate", "--n", 400, "--checkpoint-every", 100, "--out", r)):
        row(21, f"while held: {a[0]}", run(*a), r, b)
    os.close(fd)
    # 22: two exports to one file
    r = fresh()
    procs = [
        subprocess.Popen(
            [*TRAJGEN, "export", str(r), "-o", str(base / "same.npz")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    codes = [p.wait(timeout=120) for p in procs]
    report.append(
        f" 22 two exports to one file at once\n      exit codes {sorted(codes)}; "
        + "; ".join(error_line(p.stderr.read()) for p in procs if p.returncode)
    )
    # 23: .lock a directory
    r = unfinished()
    (r / ".lock").unlink()
    (r / ".lock").mkdir()
    b = tree(r)
    row(23, ".lock a directory: resume", run("resume", r, "--workers", 1), r, b)
    # 25: preview video too wide
    r = fresh()
    b = tree(r)
    row(
        25,
        "preview --per-class 5000 --video v.mp4",
        run("preview", r, "--per-class", 5000, "--video", base / "v25.mp4"),
        r,
        b,
    )
    # 26
    for a in (("--scheduler", "inproc://foo"), ("--out", "/proc/x"), ("--out", "nl\nrun")):
        row(26, f"generate {a[0]} {a[1]!r}", run("generate", "--n", 8, "--checkpoint-every", 4, *a))
    loop = base / "loop"
    loop.symlink_to(loop)
    row(26, "status on a symlink loop", run("status", loop))
    row(26, "generate --out a symlink loop", run("generate", "--n", 8, "--checkpoint-every", 4, "--out", loop))
    r = fresh()
    (r / "shards/shard-00001.npz").write_bytes(os.urandom(5000))
    b = tree(r)
    row(26, "a shard of random bytes: preview", run("preview", r), r, b)
    r = fresh()
    (r / "config.json").write_text("[]")
    b = tree(r)
    row(26, "config.json a list: verify", run("verify", r), r, b)
    r = fresh()
    b = tree(r)
    row(26, "preview -o a directory (EISDIR)", run("preview", r, "-o", base), r, b)
    # 27
    row(
        27, '--scheduler ""', run("generate", "--n", 8, "--checkpoint-every", 4, "--scheduler", "", "--out", base / "s")
    )
    row(
        27,
        "--noise-scale 1e300",
        run("generate", "--n", 8, "--checkpoint-every", 4, "--noise-scale", "1e300", "--out", base / "s"),
    )
    link = base / "dangling.npz"
    link.symlink_to(base / "nowhere" / "x.npz")
    r = fresh()
    row(
        27,
        "export -o a dangling symlink (no --force)",
        run("export", r, "-o", link),
        extra="link kept" if link.is_symlink() else "LINK REPLACED",
    )
    row(27, "TRAJGEN_FAULT=garbage status", run("status", r, env={"TRAJGEN_FAULT": "garbage"}))
    text = "\n".join(report) + "\n"
    Path(args.out).write_text(text)
    print(text)
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
