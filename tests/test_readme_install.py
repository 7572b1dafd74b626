"""The README's install lines work on a machine where trajgen is on no package index."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_block_after(marker: str) -> list[str]:
    """The command lines of the first ```bash block after ``marker`` in README.md."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```bash\n(.*?)```", text[text.index(marker) :], re.S).group(1)
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_the_dask_install_lines_build_and_install_one_wheel(tmp_path):
    build, install = readme_block_after("**A Dask cluster.**")
    assert build == "pip wheel . --no-deps -w dist"
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", *build.replace("-w dist", f"-w {dist}").split()],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    wheels = list(dist.glob("trajgen-*.whl"))
    assert len(wheels) == 1
    # the install line as a shell runs it, against the packages already here (no index needed)
    line = install.replace("dist/", f"{dist}/").replace(
        "pip install", f"{sys.executable} -m pip install --dry-run --no-index"
    )
    result = subprocess.run(["bash", "-c", line], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "trajgen" in result.stdout
