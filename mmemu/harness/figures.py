"""The README's figures, rendered from the stored result of a real run.

tools/bench.py, tools/fuzz.py and tools/soak.py write a small JSON record
of a run (docs/figures/*.json: what ran, where, and the totals); the
functions here turn such a record into the Markdown the README carries
between its generated-block markers (harness/readme.py), so a long run's
figures can be rendered again without running it again, and a test can
check that the README says exactly what the stored run measured.

Every record has a ``run`` part (run_info()): the command line, the date,
the host (cores, Python, Unicorn) and the load average when it started.
"""
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from mmemu.harness.readme import update_file


# -- records -----------------------------------------------------------------------------

def run_info(argv, tool):
    """Where and how a run happened: {command, commit, date, cores, python, unicorn, load}."""
    return {
        "command": " ".join(["tools/" + tool] + [shlex.quote(a) for a in argv]),
        "commit": source_commit(),
        "date": datetime.date.today().isoformat(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "unicorn": version("unicorn"),
        "load": round(os.getloadavg()[0], 2),
    }


SOURCES = ("mmemu", "tools", "guest", "configs")     # what a run runs (docs/figures is not)


def source_commit():
    """The git commit of the code that runs ("+" when that code has changes), or "?"."""
    root = Path(__file__).resolve().parents[2]

    def git(*args):
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=10)
    try:
        head = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", *SOURCES)
    except (OSError, subprocess.SubprocessError):
        return "?"
    if head.returncode:
        return "?"
    return head.stdout.strip() + ("+" if dirty.stdout.strip() else "")


def write_record(path, record):
    """Write a run's record as JSON (small: totals, never per-call data)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return path


def read_record(path, tool):
    """A stored record of tool ("bench", "fuzz", "soak"); ValueError if it is not one."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read a stored run: {e}") from None
    if not isinstance(record, dict) or record.get("tool") != tool:
        raise ValueError(f"{path}: not a stored {tool} run")
    return record


def _where(run):
    commit = f"at commit {run['commit']} " if "commit" in run else ""      # older records have none
    return (f"{commit}on {run['date']} ({run['cores']} cores, "
            f"Python {run['python']}, Unicorn {run['unicorn']}, "
            f"load average {run['load']:.2f} at the start)")


def _n(x):
    return f"{x:,}"


def _duration(seconds):
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} minutes"


# -- bench ---------------------------------------------------------------------------------

UNIT_SIGN = {"x": "×", "s": " s", "B": " B"}


def _fmt(value):
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def bench_row(fig):
    """One figure as a Markdown table row: name, measured (detail), target, ok/miss."""
    if "error" in fig:
        return f"| {fig['figure']} | error: {fig['error']} | | **error** |"
    unit = UNIT_SIGN.get(fig["unit"], " " + fig["unit"])
    measured = _fmt(fig["value"]) + unit + (f" ({fig['detail']})" if fig["detail"] else "")
    target, mark = "", ""
    if fig["target"] is not None:
        target = ("≤ " if fig["lower_is_better"] else "≥ ") + _fmt(fig["target"]) + unit
        mark = "ok" if fig["ok"] else "**miss**"
    return f"| {fig['figure']} | {measured} | {target} | {mark} |"


def bench_markdown(record):
    """The README's benchmark table for a stored bench run, and which run it was."""
    lines = ["| figure | measured | target | |", "|---|---|---|---|"]
    lines += [bench_row(fig) for fig in record["figures"]]
    lines += ["", f"Measured by `{record['run']['command']}` {_where(record['run'])}."]
    return "\n".join(lines) + "\n"


# -- fuzz ----------------------------------------------------------------------------------

def fuzz_record(totals, seconds, run, options):
    """A fuzzing run's record from tools/fuzz.py's totals (failures as one line each)."""
    return {
        "tool": "fuzz", "run": run, "options": options, "seconds": round(seconds, 1),
        "calls": totals["calls"], "seeds": totals["seeds"],
        "by_driver": dict(totals["by_driver"]), "distinct_calls": len(totals["by_call"]),
        "reports": sum(totals["reports"].values()), "report_kinds": len(totals["reports"]),
        "top_reports": [[kind, n] for kind, n in totals["reports"].most_common(10)],
        "failures": [{k: fl[k] for k in ("seed", "driver", "config", "kind", "step")}
                     | {"first_line": fl["text"].splitlines()[0] if fl["text"] else ""}
                     for fl in totals["failures"]],
    }


DRIVER_NAMES = {"host": "host driver", "guest": "guest program", "corrupt": "corrupting driver"}


def _driver_order(item):
    return list(DRIVER_NAMES).index(item[0])


def fuzz_markdown(record):
    """The figures lines of the README's fuzzing paragraph for a stored fuzz run."""
    opts = record["options"]
    drivers = record["by_driver"]
    checks = "without" if opts.get("no_debug_vm") else "with"
    by_driver = [f"{DRIVER_NAMES[d]} {_n(n)}" for d, n in sorted(drivers.items(), key=_driver_order)]
    lines = [
        f"Last run: `{record['run']['command']}` {_where(record['run'])}, "
        f"{_duration(record['seconds'])} on {', '.join(opts['configs'])}, "
        f"{checks} CONFIG_DEBUG_VM-style free checks:",
        "",
        f"- calls survived: **{_n(record['calls'])}** over {record['seeds']} seeds "
        f"({', '.join(by_driver)})",
        f"- distinct calls made (hypercalls and guest-program ops): {record['distinct_calls']}",
        f"- kernel-style reports along the way: {_n(record['reports'])} "
        f"({record['report_kinds']} kinds)",
        f"- failures: **{len(record['failures'])}**",
    ]
    lines += [f"  - seed {fl['seed']} {fl['driver']} {fl['config']}: {fl['kind']} at step "
              f"{fl['step']}: {fl['first_line']}" for fl in record["failures"]]
    return "\n".join(lines) + "\n"


# -- soak ----------------------------------------------------------------------------------

def soak_record(results, seconds, run, options):
    """A soak run's record from the SoakResults of every (config, seed) it ran."""
    configs = {}
    for r in results:
        c = configs.setdefault(r.config, {"runs": 0, "cycles": 0, "seconds": 0.0, "fallbacks": 0,
                                          "alloc_failure_reports": 0, "vmalloc_failure_reports": 0,
                                          "shrinker_pages": 0, "problems": []})
        c["runs"] += 1
        c["cycles"] += r.cycles
        c["seconds"] = round(c["seconds"] + r.seconds, 1)
        c["fallbacks"] += sum(s.fallbacks for s in r.stats)
        c["alloc_failure_reports"] += r.alloc_failure_reports
        c["vmalloc_failure_reports"] += r.vmalloc_failure_reports
        c["shrinker_pages"] += r.shrinker_pages
        c["problems"] += [p.splitlines()[0] for p in r.problems]
    return {"tool": "soak", "run": run, "options": options, "seconds": round(seconds, 1),
            "configs": configs}


def soak_markdown(record):
    """The figures lines of the README's soak paragraph for a stored soak run."""
    lines = [f"Last run: `{record['run']['command']}` {_where(record['run'])}, "
             f"{_duration(record['seconds'])}:", ""]
    for name in record["options"]["configs"]:
        c = record["configs"][name]
        per = max(c["cycles"], 1)
        lines.append(
            f"- {name}: **{_n(c['cycles'])} exhaustion cycles**, {len(c['problems'])} problems; "
            f"per cycle {c['fallbacks'] / per:,.0f} HighMem->lowmem fallbacks, "
            f"{c['alloc_failure_reports'] / per:.1f} page allocation failure reports, "
            f"{c['shrinker_pages'] / per:,.0f} pages back from the slab shrinker")
        lines += [f"  - {p}" for p in c["problems"]]
    return "\n".join(lines) + "\n"


RENDER = {"bench": bench_markdown, "fuzz": fuzz_markdown, "soak": soak_markdown}


def block_name(record):
    """The README block a record fills: its tool's, and the corrupting
    fuzzer's runs their own ("fuzz-corrupt"), beside the other drivers'."""
    if record["tool"] == "fuzz" and record.get("options", {}).get("driver") == "corrupt":
        return "fuzz-corrupt"
    return record["tool"]


def publish(record, readme=None):
    """Print a record's Markdown; with readme (a file), rewrite its block too."""
    text = RENDER[record["tool"]](record)
    print(text, end="")
    if readme:
        update_file(readme, block_name(record), text)
    return text


def publish_stored(path, tool, readme=None):
    """--summary/--from: publish() a stored run of tool; the exit status
    (2, with one line, when path holds no such run)."""
    try:
        publish(read_record(path, tool), readme)
    except ValueError as e:
        print(f"{tool}: {e}", file=sys.stderr)
        return 2
    return 0
