"""The README's claims, run: its embedding programs and its quickstart lines."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def example(marker):
    """The README's python block holding marker, and the output block after it."""
    text = README.read_text()
    m = re.search(r"```python\n((?:(?!```).)*?" + re.escape(marker) + r".*?)```.*?```\n(.*?)```",
                  text, re.S)
    return m.group(1), m.group(2)


def run_example(tmp_path, code, *args):
    script = tmp_path / "example.py"
    script.write_text(code)
    r = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                       timeout=120, cwd=README.parent)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_hobby_os_example_prints_what_the_readme_says_in_both_orders(tmp_path):
    code, printed = example("hobby_guest.c\")")
    assert run_example(tmp_path, code) == printed
    # Hooks added after Machine(): the same, less the run before mmemu (and
    # so half the instructions its code hook counted).
    later = run_example(tmp_path, code, "mmemu first").splitlines()
    expected = printed.splitlines()[1:]
    expected[-1] = expected[-1].replace("saw 12", "saw 6")
    assert later == expected


def test_qiling_example_prints_what_the_readme_says(tmp_path):
    pytest.importorskip("qiling")
    code, printed = example("from qiling import Qiling")
    assert run_example(tmp_path, code) == printed


def test_quickstart_commands_are_the_ones_ci_runs():
    """Two lines; the first makes its own virtual environment (PEP 668), and
    .ci/run installs the same way (with the embed extra too) and runs exactly
    the second."""
    text = README.read_text()
    quick = re.search(r"## Quickstart.*?```sh\n(.*?)```", text, re.S).group(1).splitlines()
    assert len(quick) == 2
    venv, install, demo = quick[0].split(" && ")
    assert venv == "python3 -m venv .venv"
    assert install == ".venv/bin/pip install -e '.[test]'"
    assert demo.startswith(".venv/bin/mmemu run guest/examples/")
    assert (README.parent / demo.split()[-1]).is_file()
    assert quick[1] == ".venv/bin/python -m pytest"
    ci = (README.parent / ".ci" / "run").read_text()
    assert f"\n{venv}\n" in ci
    # the same install, plus the test-only extra for the Qiling example
    assert re.search(r"\n\.venv/bin/pip install [-\w ]*-e '\.\[test,embed\]'\n", ci)
    assert ci.rstrip().endswith(f"\n{quick[1]}")
