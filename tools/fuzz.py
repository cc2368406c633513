#!/usr/bin/env python3
"""Fuzz mmemu's hypercalls for a long time, in several processes.

    tools/fuzz.py --minutes 30 --jobs 2
    tools/fuzz.py --seed 1234 --driver host --config pc-16m --calls 20000 --minimize

Each job takes seeds in turn (base + job, base + job + jobs, ...) and runs
one driver on one machine per seed: the raw host driver (hostile mailbox
words for every registered hypercall) or the guest program (the realistic
mix through the SDK), on the FUZZ_CONFIGS machines in rotation;
--driver corrupt runs the corrupting fuzzer instead (the host driver's
mix with the guest's stores into the kernel's own structures, where every
run must end in a kernel report or go on).  A seed
stops at its first failure (a host exception in a handler, a consistency
checker, a damaged pattern, a wrong result); the others go on.  At the end:
calls survived, reports by kind, and every failure with its seed, so that

    tools/fuzz.py --seed S --driver D --config C --calls N --minimize

reproduces it (and, for the host driver, shrinks it to a short call list).

--json FILE stores the run's totals (docs/figures/fuzz.json is the one the
README quotes); --summary FILE prints the README's figures lines for a
stored run without running anything, and --readme rewrites the README's
generated block "fuzz" with them (after a run, with that run's figures);
a --driver corrupt run fills its own block, "fuzz-corrupt"
(docs/figures/fuzz-corrupt.json).
"""
import argparse
import os
import sys
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmemu.harness.figures import (  # noqa: E402
    fuzz_record, publish, publish_stored, run_info, write_record,
)
from mmemu.harness.corruptfuzz import CorruptingFuzzer  # noqa: E402
from mmemu.harness.guestfuzz import GuestFuzzer  # noqa: E402
from mmemu.harness.hostfuzz import HostFuzzer  # noqa: E402
from mmemu.harness.machines import FUZZ_CONFIGS, fuzz_config  # noqa: E402
from mmemu.harness.minimize import format_calls, minimize  # noqa: E402
from mmemu.harness.readme import README  # noqa: E402

DRIVERS = ("host", "host", "host", "guest")     # the host driver covers more ground per second
FUZZERS = {"host": HostFuzzer, "guest": GuestFuzzer, "corrupt": CorruptingFuzzer}


def parser():
    ap = argparse.ArgumentParser(prog="fuzz", description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=None, help="run this long (default: one seed)")
    ap.add_argument("--jobs", type=int, default=1, help="processes")
    ap.add_argument("--seed", type=int, default=1, help="first seed")
    ap.add_argument("--calls", type=int, default=20000, help="calls per seed")
    ap.add_argument("--driver", choices=("host", "guest", "both", "corrupt"), default="both",
                    help="both: host and guest in turn; corrupt: the corrupting fuzzer")
    ap.add_argument("--config", default=None,
                    help=f"one machine (default: rotate {', '.join(FUZZ_CONFIGS)})")
    ap.add_argument("--no-debug-vm", action="store_true",
                    help="the configs as shipped (without CONFIG_DEBUG_VM-style free checks)")
    ap.add_argument("--check-every", type=int, default=500)
    ap.add_argument("--minimize", action="store_true", help="shrink host-driver failures")
    ap.add_argument("--json", metavar="FILE", help="store the run's totals here")
    ap.add_argument("--summary", metavar="FILE",
                    help="print the README figures of this stored run (runs nothing)")
    ap.add_argument("--readme", nargs="?", const=str(README), metavar="FILE",
                    help="rewrite the generated block 'fuzz' (or 'fuzz-corrupt') of README.md "
                         "(or FILE)")
    return ap


def plan(args, k):
    """The k-th seed's (seed, driver, config name)."""
    configs = [args.config] if args.config else list(FUZZ_CONFIGS)
    drivers = DRIVERS if args.driver == "both" else (args.driver,)
    return args.seed + k, drivers[k % len(drivers)], configs[(k // len(drivers)) % len(configs)]


def one_seed(seed, driver, config, calls, check_every, debug_vm, deadline, shrink):
    """Run one seed; a plain dict (it crosses a process boundary)."""
    cfg = fuzz_config(config, debug_vm=debug_vm)
    fuzzer = FUZZERS[driver]
    f = fuzzer(cfg, seed=seed, check_every=check_every)
    r = f.run(calls, deadline=deadline)
    failures = []
    for fl in r.failures:
        item = {"seed": seed, "driver": driver, "config": config, "kind": fl.kind,
                "step": fl.step, "text": str(fl)[:6000]}
        if shrink and fl.calls and driver == "host":
            small = minimize(fl.config, fl.calls, fl.kind, deadline=time.monotonic() + 300)
            item["minimized"] = format_calls(small)
        failures.append(item)
    return {"seed": seed, "driver": driver, "config": config, "calls": r.calls,
            "reports": dict(r.reports), "by_call": dict(r.by_call), "failures": failures,
            "seconds": r.seconds}


def main(argv=None):
    args = parser().parse_args(argv)
    if args.summary:
        return publish_stored(args.summary, "fuzz", args.readme)
    argv = sys.argv[1:] if argv is None else argv
    run = run_info(argv, "fuzz.py")
    totals, seconds = fuzz(args)
    print(report(totals, seconds))
    if args.json or args.readme:
        options = {"minutes": args.minutes, "jobs": args.jobs, "seed": args.seed,
                   "calls_per_seed": args.calls, "driver": args.driver,
                   "configs": [args.config] if args.config else list(FUZZ_CONFIGS),
                   "no_debug_vm": args.no_debug_vm, "check_every": args.check_every}
        record = fuzz_record(totals, seconds, run, options)
        if args.json:
            write_record(args.json, record)
        if args.readme:
            publish(record, args.readme)
    return 1 if totals["failures"] else 0


def fuzz(args):
    """Run seeds in args.jobs processes until args.minutes pass (or one seed): (totals, seconds)."""
    t0 = time.monotonic()
    end = t0 + args.minutes * 60 if args.minutes else None
    totals = {"calls": 0, "seeds": 0, "by_driver": Counter(), "reports": Counter(),
              "by_call": Counter(), "failures": []}
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        running, k, last = set(), 0, t0
        while True:
            while len(running) < args.jobs and (end is None and k == 0 or end is not None
                                                and time.monotonic() < end - 5):
                seed, driver, config = plan(args, k)
                k += 1
                running.add(pool.submit(one_seed, seed, driver, config, args.calls,
                                        args.check_every, not args.no_debug_vm, end,
                                        args.minimize))
            if not running:
                break
            done, running = wait(running, timeout=30, return_when=FIRST_COMPLETED)
            for fut in done:
                add(totals, fut.result())
            if time.monotonic() - last > 60:
                last = time.monotonic()
                print(progress(totals, last - t0), flush=True)
    return totals, time.monotonic() - t0


def add(totals, res):
    totals["calls"] += res["calls"]
    totals["seeds"] += 1
    totals["by_driver"][res["driver"]] += res["calls"]
    totals["reports"].update(res["reports"])
    totals["by_call"].update(res["by_call"])
    totals["failures"] += res["failures"]
    for fl in res["failures"]:
        print(f"FAILURE seed {fl['seed']} {fl['driver']} {fl['config']}: {fl['text'][:300]}",
              flush=True)


def progress(totals, secs):
    return (f"[{secs / 60:5.1f} min] {totals['calls']} calls survived over {totals['seeds']} seeds "
            f"({totals['calls'] / max(secs, 1):.0f}/s), {len(totals['failures'])} failures")


def report(totals, secs):
    lines = [progress(totals, secs),
             "by driver: " + ", ".join(f"{d} {n}" for d, n in totals["by_driver"].items()),
             f"distinct calls: {len(totals['by_call'])}",
             f"reports: {sum(totals['reports'].values())} ({len(totals['reports'])} kinds); top:"]
    lines += [f"  {n:8d}  {kind}" for kind, n in totals["reports"].most_common(25)]
    for fl in totals["failures"]:
        lines += ["", f"FAILURE (reproduce: tools/fuzz.py --seed {fl['seed']} --driver "
                      f"{fl['driver']} --config {fl['config']} --minimize)", fl["text"]]
        if fl.get("minimized"):
            lines += ["minimized:", fl["minimized"]]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
