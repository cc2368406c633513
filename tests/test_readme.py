"""The README's claims, run: its embedding program and its quickstart lines."""
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks(text):
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_embedding_example_runs_and_prints_what_the_readme_says(tmp_path):
    text = README.read_text()
    code = next(b for b in python_blocks(text) if "Machine(\"pc-16m\", uc=uc)" in b)
    script = tmp_path / "embed.py"
    script.write_text(code)
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert re.match(r"kmalloc\(64\) = 0x[0-9a-f]+, holds 0x1234$", out[0])
    assert out[1] == "ksize: 64"
    assert re.match(r"\d+ instructions seen by your own hook$", out[2])


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
