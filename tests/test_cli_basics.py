import subprocess
import sys

from click.testing import CliRunner

import trajgen
from trajgen.cli import main


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert trajgen.__version__ in result.output


def test_help_lists_commands_with_an_example():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "trajgen" in result.output and "Example" in result.output


def test_python_dash_m_runs_the_cli():
    out = subprocess.run([sys.executable, "-m", "trajgen", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and trajgen.__version__ in out.stdout
