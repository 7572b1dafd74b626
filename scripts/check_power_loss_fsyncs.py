"""Remove each fsync of src/trajgen/store/_fs.py in turn and check that tests/test_power_loss.py fails.

Each line that calls os.fsync(...) or fsync_dir(...) is replaced by `pass` in a scratch copy
of src/; the power-loss test then runs against that copy (PYTHONPATH). Writes a table to
artifacts/power_loss_fsync_check.txt; exits 1 if some removal went unnoticed.

    python scripts/check_power_loss_fsyncs.py
"""

import re
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CALL = re.compile(r"^(\s*)(os\.fsync|fsync_dir)\(")


def main() -> int:
    source = (ROOT / "src/trajgen/store/_fs.py").read_text().splitlines(keepends=True)
    targets = [i for i, line in enumerate(source) if CALL.match(line)]
    rows, unnoticed = [], 0
    for i in targets:
        with tempfile.TemporaryDirectory() as scratch:
            src = Path(scratch) / "src"
            shutil.copytree(ROOT / "src", src)
            lines = list(source)
            lines[i] = CALL.match(lines[i]).group(1) + "pass  # fsync removed\n"
            (src / "trajgen/store/_fs.py").write_text("".join(lines))
            result = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_power_loss.py"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                env={**__import__("os").environ, "PYTHONPATH": str(src)},
            )
        failed = result.returncode != 0
        unnoticed += not failed
        failing = sorted(
            {
                l.split("::")[1].split(" ")[0]
                for l in result.stdout.splitlines()
                if l.startswith(("FAILED", "ERROR")) and "::" in l
            }
        )
        errors = [l.strip() for l in result.stdout.splitlines() if l.startswith("E ")]
        reason = next((l for l in errors if "crash after" in l), errors[0] if errors else "")[:160]
        reason = f"failed: {', '.join(failing)}\n           {reason}"
        rows.append(
            f"_fs.py:{i + 1:<4} {source[i].strip():<58} {'test FAILED (caught)' if failed else 'test PASSED (NOT caught)'}"
            f"\n           {reason}"
        )
        print(rows[-1], flush=True)
    text = (
        f"# fsync removal check ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC): each fsync call of "
        f"src/trajgen/store/_fs.py removed in turn,\n# then tests/test_power_loss.py run; every removal must make it fail.\n"
        f"# command: python scripts/check_power_loss_fsyncs.py\n\n"
        + "\n".join(rows)
        + f"\n\n{len(targets) - unnoticed} of {len(targets)} removals caught\n"
    )
    (ROOT / "artifacts/power_loss_fsync_check.txt").write_text(text)
    return 1 if unnoticed else 0


if __name__ == "__main__":
    sys.exit(main())
