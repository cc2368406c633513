"""The README's figures are the tools' output for the runs stored in
docs/figures/: its generated blocks parse, carry every field the tools
emit (every figure the benchmark defines, the fuzzer's and the soak's
totals), agree with the stored JSON, and come back unchanged when the tools
render those runs again; each block's marker names the command that
prints it, and that command, run, prints the block.  Nothing is measured or
fuzzed here."""
import importlib.util
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from mmemu.harness.figures import DRIVER_NAMES, RENDER, read_record
from mmemu.harness.readme import block_commands, block_names, read_block

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FIGURES = ROOT / "docs" / "figures"
# README block -> the tool whose stored run (docs/figures/<block>.json) fills it
BLOCKS = {"bench": "bench", "fuzz": "fuzz", "fuzz-corrupt": "fuzz", "soak": "soak"}


def load_tool(name):
    spec = importlib.util.spec_from_file_location(f"mmemu_tool_{name}", ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def block(name):
    return read_block(README.read_text(), name)


def stored(name):
    return json.loads((FIGURES / f"{name}.json").read_text())


def test_the_readme_has_one_block_per_stored_run():
    names = block_names(README.read_text())
    for name in BLOCKS:
        assert names.count(name) == 1, name


@pytest.mark.parametrize("name", BLOCKS)
def test_each_block_is_the_tools_rendering_of_its_stored_run(name):
    tool = BLOCKS[name]
    assert block(name) == RENDER[tool](read_record(FIGURES / f"{name}.json", tool))


def test_the_corrupting_fuzzers_block_is_a_corrupt_run():
    assert stored("fuzz-corrupt")["options"]["driver"] == "corrupt"
    assert set(stored("fuzz-corrupt")["by_driver"]) == {"corrupt"}


WHERE = re.compile(r"`(?P<command>tools/(?P<tool>\w+)\.py [^`]*)` at commit (?P<commit>[0-9a-f]{12}\+?) "
                   r"on (?P<date>\d{4}-\d\d-\d\d) \((?P<cores>\d+) cores, Python (?P<python>[\d.]+), "
                   r"Unicorn (?P<unicorn>[\d.]+), load average (?P<load>[\d.]+) at the start\)")


@pytest.mark.parametrize("name", BLOCKS)
def test_each_block_names_the_run_that_produced_it(name):
    """Every field of the stored run's "run" part, as the block prints it."""
    tool, run = BLOCKS[name], stored(name)["run"]
    m = WHERE.search(block(name))
    assert m, block(name)
    assert (m["command"], m["tool"], m["commit"], m["date"]) == (run["command"], tool, run["commit"],
                                                                 run["date"])
    assert (int(m["cores"]), m["python"], m["unicorn"]) == (run["cores"], run["python"],
                                                            run["unicorn"])
    assert float(m["load"]) == pytest.approx(run["load"], abs=0.005)


@pytest.mark.parametrize("name", BLOCKS)
def test_each_blocks_marker_command_prints_the_block(name):
    """The command in the begin marker reads the stored run and, run, prints
    exactly the block (with --readme it would rewrite it)."""
    tool = BLOCKS[name]
    argv = shlex.split(dict(block_commands(README.read_text()))[name] or "")
    assert argv[:2] == ["python3", f"tools/{tool}.py"] and "--readme" in argv
    option = "--from" if tool == "bench" else "--summary"
    assert argv[argv.index(option) + 1] == f"docs/figures/{name}.json"
    argv.remove("--readme")
    out = subprocess.run([sys.executable, *argv[1:]], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout == block(name)


def test_readme_says_when_the_quoted_runs_are_short():
    """A fuzz or soak run of under ten minutes is quoted only where the
    README calls it short."""
    text = README.read_text()
    intro = text[text.index("## Fuzzing and soak"):text.index("<!-- begin generated: fuzz")]
    if any(stored(tool)["seconds"] < 600 for tool in ("fuzz", "soak")):
        assert "short runs of a few minutes" in intro


# -- bench --------------------------------------------------------------------------------

ROW = re.compile(r"^\| (?P<figure>[^|]+) \| (?P<value>[-\d.,]+)(?:×| s| B) ?(?:\((?P<detail>.*)\))? "
                 r"\| (?:(?P<op>[≤≥]) (?P<target>[\d.,]+)(?:×| s| B))? \| (?P<mark>ok|\*\*miss\*\*|) \|$")


def bench_rows():
    lines = block("bench").splitlines()
    assert lines[:2] == ["| figure | measured | target | |", "|---|---|---|---|"]
    rows = {}
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        m = ROW.match(line)
        assert m, f"not a benchmark row: {line!r}"
        rows[m["figure"]] = m
    return rows


def test_bench_block_has_every_figure_the_benchmark_defines():
    figures = load_tool("bench").FIGURES
    rows = bench_rows()
    assert list(rows) == list(figures)
    for name, (_fn, target, _unit, lower) in figures.items():
        row = rows[name]
        if target is None:
            assert row["target"] is None and row["mark"] == ""
        else:
            assert float(row["target"].replace(",", "")) == target and row["op"] == ("≤" if lower else "≥")


def test_bench_marks_agree_with_the_figures():
    for name, row in bench_rows().items():
        if row["target"] is None:
            continue
        value, target = float(row["value"].replace(",", "")), float(row["target"].replace(",", ""))
        met = value <= target if row["op"] == "≤" else value >= target
        assert row["mark"] == ("ok" if met else "**miss**"), name


def test_bench_block_rows_are_the_stored_figures():
    rows = bench_rows()
    for fig in stored("bench")["figures"]:
        assert "error" not in fig, fig
        assert float(rows[fig["figure"]]["value"].replace(",", "")) == pytest.approx(fig["value"], rel=5e-3)


def test_bench_renders_a_stored_run_without_measuring(tmp_path, capsys):
    bench = load_tool("bench")
    copy = tmp_path / "README.md"
    copy.write_text(README.read_text().replace(block("bench"), "stale\n"))
    assert bench.main(["--from", str(FIGURES / "bench.json"), "--readme", str(copy)]) == 0
    assert read_block(copy.read_text(), "bench") == block("bench")
    assert capsys.readouterr().out == block("bench")


# -- fuzz ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ("fuzz", "fuzz-corrupt"))
def test_fuzz_block_carries_the_totals(name):
    record = stored(name)
    text = block(name)
    m = re.search(r"^- calls survived: \*\*([\d,]+)\*\* over (\d+) seeds \((.*)\)$", text, re.M)
    assert m, text
    calls, seeds = int(m[1].replace(",", "")), int(m[2])
    assert (calls, seeds) == (record["calls"], record["seeds"]) and calls > 0
    names = {v: k for k, v in DRIVER_NAMES.items()}
    drivers = {names[d]: int(n.replace(",", ""))
               for d, n in (part.rsplit(" ", 1) for part in m[3].split(", "))}
    assert drivers == record["by_driver"] and sum(drivers.values()) == calls
    m = re.search(r"^- kernel-style reports along the way: ([\d,]+) \((\d+) kinds\)$", text, re.M)
    assert m and int(m[1].replace(",", "")) == record["reports"]
    m = re.search(r"^- failures: \*\*(\d+)\*\*$", text, re.M)
    assert m and int(m[1]) == len(record["failures"])
    assert f"- distinct calls made (hypercalls and guest-program ops): {record['distinct_calls']}" in text


@pytest.mark.parametrize("name", ("fuzz", "fuzz-corrupt"))
def test_fuzz_summary_rewrites_its_block(name, tmp_path, capsys):
    fuzz = load_tool("fuzz")
    copy = tmp_path / "README.md"
    copy.write_text(README.read_text().replace(block(name), ""))
    assert fuzz.main(["--summary", str(FIGURES / f"{name}.json"), "--readme", str(copy)]) == 0
    assert read_block(copy.read_text(), name) == block(name)
    assert capsys.readouterr().out == block(name)


# -- soak ---------------------------------------------------------------------------------

def test_soak_block_carries_every_config():
    record = stored("soak")
    text = block("soak")
    assert list(record["configs"]) and set(record["options"]["configs"]) == set(record["configs"])
    for name, c in record["configs"].items():
        m = re.search(rf"^- {re.escape(name)}: \*\*([\d,]+) exhaustion cycles\*\*, (\d+) problems; "
                      rf"per cycle ([\d,]+) HighMem->lowmem fallbacks, ([\d.]+) page allocation "
                      rf"failure reports, ([\d,]+) pages back from the slab shrinker$", text, re.M)
        assert m, name
        assert int(m[1].replace(",", "")) == c["cycles"] > 0
        assert int(m[2]) == len(c["problems"])
        assert float(m[4]) == pytest.approx(c["alloc_failure_reports"] / c["cycles"], abs=0.05)


def test_soak_summary_rewrites_its_block(tmp_path, capsys):
    soak = load_tool("soak")
    copy = tmp_path / "README.md"
    copy.write_text(README.read_text().replace(block("soak"), ""))
    assert soak.main(["--summary", str(FIGURES / "soak.json"), "--readme", str(copy)]) == 0
    assert read_block(copy.read_text(), "soak") == block("soak")


@pytest.mark.parametrize("tool, option", [("fuzz", "--summary"), ("soak", "--summary"),
                                          ("bench", "--from")])
def test_a_file_that_is_not_a_stored_run_is_a_one_line_error(tool, option, tmp_path, capsys):
    other = "soak" if tool != "soak" else "fuzz"
    for bad in (FIGURES / f"{other}.json", tmp_path / "missing.json"):
        assert load_tool(tool).main([option, str(bad)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"{tool}: ")
