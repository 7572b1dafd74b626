"""README.md and docs/*.md: their links lead somewhere, the names they give exist, and their examples run.

Which code blocks run (also told in docs/development.md, "The documentation is tested"):

- ```python whose first line names a script (``# train_ddp.py``): tests/test_loader.py runs it; here, only
  that it does.
- any other ```python: run as it is, with a fresh directory as the working directory, where
  runs/20261128_1150_n10000 (the example run of the pages) is a small complete run. A block that
  imports torch is skipped, with the reason, when torch is not installed.
- ```bash: its ``trajgen`` and ``cat`` lines run in order, with bash, in such a directory, each to exit 0,
  after the sizes are made small (SMALL, GENERATE_DEFAULTS) and absolute and ~/ paths made relative
  (the folders a ~/ path names exist). A block with a line that cannot run here (NOT_HERE) is skipped
  whole, with the reason; any other command fails the test until the rule names it.
- ``` without a language (what a file or a terminal shows): not run.
"""

import importlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runtools import cli_run_dir

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXAMPLE_RUN = "runs/20261128_1150_n10000"

FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)
SCRIPT = re.compile(r"# ([\w.-]+\.py)\n")

# lines of a ```bash block that cannot run here; the block is skipped whole, saying why
NOT_HERE = [
    (
        re.compile(r"^pip\b"),
        "installs (.ci/run installs as the Quickstart does, tests/test_readme_install.py checks the wheel's lines)",
    ),
    (re.compile(r"^dask\b|--scheduler\b"), "needs a Dask cluster (tests/test_dask.py runs one on this machine)"),
]
RUN_HERE = re.compile(r"^(trajgen|cat)\b")
# sizes made small before a line runs: (pattern, replacement)
SMALL = [(re.compile(r"--n \d+"), "--n 40"), (re.compile(r"--checkpoint-every \d+"), "--checkpoint-every 10")]
GENERATE_DEFAULTS = {"--frames": "4", "--size": "16", "--workers": "1"}


def page_name(page: Path) -> str:
    return str(page.relative_to(ROOT))


def code_blocks(lang: str):
    """(page, line number, code) of every fenced block of ``lang`` in the pages."""
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            if m.group(1) == lang:
                yield page, text.count("\n", 0, m.start()) + 1, m.group(2)


def block_id(block) -> str:
    page, line, _ = block
    return f"{page_name(page)}:{line}"


def prose(text: str) -> str:
    """The text outside fenced blocks (their lines kept, emptied, so line numbers hold)."""
    return FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def inline_code(text: str) -> list[str]:
    return re.findall(r"(?<!`)`([^`\n]+)`(?!`)", prose(text))


# ---------------------------------------------------------------- links, names, paths


def slug(heading: str) -> str:
    """The #fragment GitHub gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found, seen = set(), {}
    for line in prose(page.read_text(encoding="utf-8")).splitlines():
        m = re.match(r"#{1,6} (.+)", line)
        if m:
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
    return found


def test_every_relative_link_leads_to_a_file_and_heading_that_exist():
    broken = []
    for page in PAGES:
        text = re.sub(r"(?<!`)`[^`\n]+`(?!`)", "", prose(page.read_text(encoding="utf-8")))
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
                continue
            path, _, fragment = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page_name(page)}: {target} (no such file)")
            elif fragment and file.suffix == ".md" and fragment not in anchors(file):
                broken.append(f"{page_name(page)}: {target} (no heading #{fragment} in {file.name})")
    assert not broken, "\n".join(broken)


def resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for name in parts[cut:]:
                obj = getattr(obj, name)
        except AttributeError:
            return False
        return True
    return False


def test_every_module_and_name_in_backticks_exists():
    missing = []
    for page in PAGES:
        for span in inline_code(page.read_text(encoding="utf-8")):
            for dotted in re.findall(r"(?<![\w.-])trajgen(?:\.[A-Za-z_]\w*)+", span):
                if not resolves(dotted):
                    missing.append(f"{page_name(page)}: {dotted}")
    assert not missing, "\n".join(missing)


def test_every_source_script_or_test_path_in_backticks_exists():
    missing = []
    for page in PAGES:
        for span in inline_code(page.read_text(encoding="utf-8")):
            for path in re.findall(r"(?<![\w/.-])(?:src|scripts|tests)/[\w./-]*\w", span):
                if not (ROOT / path).exists():
                    missing.append(f"{page_name(page)}: {path}")
    assert not missing, "\n".join(missing)


# ---------------------------------------------------------------- the command synopsis


def synopsis_options() -> dict[str, set[str]]:
    """docs/cli.md's synopsis: the options it names for each command ("" for trajgen itself)."""
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    section = text[text.index("## Commands and options") :]
    block = FENCE.search(section).group(2)
    options: dict[str, set[str]] = {}
    command = None
    for line in block.splitlines():
        if line.startswith("trajgen "):
            words = line.split()
            command = "" if words[1].startswith("-") else words[1]
            options.setdefault(command, set())
        options[command] |= set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", line))
    return options


def test_the_synopsis_names_exactly_each_commands_options():
    import click

    from trajgen.cli import main

    documented = synopsis_options()
    assert documented.pop("") >= {"--version", "--help"}
    assert sorted(documented) == sorted(main.commands)
    for name, command in main.commands.items():
        params = [p for p in command.params if isinstance(p, click.Option)]
        known = {opt for p in params for opt in p.opts}
        assert documented[name] <= known, f"{name}: {sorted(documented[name] - known)} are no options of it"
        left_out = [p.opts[-1] for p in params if not set(p.opts) & documented[name]]
        assert not left_out, f"docs/cli.md's synopsis of {name} leaves out {left_out}"


# ---------------------------------------------------------------- the examples

PYTHON_BLOCKS = list(code_blocks("python"))
BASH_BLOCKS = list(code_blocks("bash"))


@pytest.fixture(scope="module")
def example_run(tmp_path_factory):
    options = "--n 1000 --checkpoint-every 250 --frames 4 --size 16 --seed 1 --workers 1 --quiet"
    return cli_run_dir(tmp_path_factory, "docs", *options.split())


@pytest.fixture
def workdir(example_run, tmp_path):
    """A fresh directory holding the example run at the path the pages give it."""
    shutil.copytree(example_run, tmp_path / EXAMPLE_RUN)
    return tmp_path


def test_every_script_block_is_run_by_test_loader():
    runs = (ROOT / "tests" / "test_loader.py").read_text(encoding="utf-8")
    scripts = [(block_id(b), SCRIPT.match(b[2]).group(1)) for b in PYTHON_BLOCKS if SCRIPT.match(b[2])]
    assert scripts, "no script blocks: tests/test_loader.py expects train_ddp.py and train_resumable.py"
    not_run = [f"{where}: {name}" for where, name in scripts if f'readme_script("{name}"' not in runs]
    assert not not_run, "script blocks no test runs:\n" + "\n".join(not_run)


@pytest.mark.parametrize("block", [b for b in PYTHON_BLOCKS if not SCRIPT.match(b[2])], ids=block_id)
def test_python_block_runs(block, workdir):
    _, _, code = block
    if re.search(r"^\s*(import|from) torch", code, re.M) and importlib.util.find_spec("torch") is None:
        pytest.skip("needs torch (pip install 'trajgen[torch]')")
    result = subprocess.run([sys.executable, "-c", code], cwd=workdir, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


def small(line: str) -> str:
    """A bash line as it runs here: without its comment, small sizes, paths inside the working directory
    (/data/runs/big → data/runs/big, ~/Sync/q → home/Sync/q)."""
    line = re.sub(r"\s+#\s.*$", "", line).strip()
    for pattern, replacement in SMALL:
        line = pattern.sub(replacement, line)
    if line.startswith("trajgen generate"):
        line += "".join(f" {opt} {value}" for opt, value in GENERATE_DEFAULTS.items() if opt not in line)
    line = re.sub(r"(?<=\s)~/(?=\w)", "home/", line)
    return re.sub(r"(?<=\s)/(?=\w)", "", line)


def make_home_folders(line: str, workdir: Path) -> None:
    """The folders a ~/ path names are the user's own: they exist (a file's folder, for a name with a suffix)."""
    for path in re.findall(r"(?<=\s)home/\S+", line):
        folder = workdir / path
        (folder.parent if folder.suffix else folder).mkdir(parents=True, exist_ok=True)


@pytest.mark.parametrize("block", BASH_BLOCKS, ids=block_id)
def test_bash_block_runs(block, workdir):
    _, _, code = block
    lines = [line.strip() for line in code.splitlines() if line.strip() and not line.strip().startswith("#")]
    for line in lines:
        for pattern, reason in NOT_HERE:
            if pattern.search(line):
                pytest.skip(f"{block_id(block)}: {reason}: {line}")
    unknown = [line for line in lines if not RUN_HERE.match(line)]
    assert not unknown, f"not covered by the rule in tests/test_docs.py (run them, or name them in NOT_HERE): {unknown}"
    env = {**os.environ, "TRAJGEN_PYTHON": sys.executable}
    prelude = 'trajgen() { "$TRAJGEN_PYTHON" -m trajgen "$@"; }\n'
    for line in map(small, lines):
        make_home_folders(line, workdir)
        result = subprocess.run(
            ["bash", "-c", prelude + line], cwd=workdir, capture_output=True, text=True, env=env, timeout=120
        )
        assert result.returncode == 0, f"{line}\n{result.stdout[-1500:]}{result.stderr[-3000:]}"
