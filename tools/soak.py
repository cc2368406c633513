#!/usr/bin/env python3
"""Soak mmemu: drive every zone to exhaustion and back, many times.

    tools/soak.py --cycles 20                       # pc-4g and numa-2n, 20 cycles each
    tools/soak.py --config pc-4g --minutes 30 --seed 7

Each cycle (guest/tests/soak.c): vmalloc of big areas, high-order blocks
down to order 0 until HighMem, Normal, DMA and the atomic reserves are
spent (every node on NUMA), a kmem_cache filled and emptied for the
shrinker; then everything freed and buddyinfo, slabinfo and vmallocinfo
compared with their boot state, and machine.check() run.  With --minutes,
runs go on (new seeds) until the time is up.  Exit status 1 on any problem.

--json FILE stores the run's totals (docs/figures/soak.json is the one the
README quotes); --summary FILE prints the README's figures lines for a
stored run without running anything, and --readme rewrites the README's
generated block "soak" with them (after a run, with that run's figures).
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmemu.harness.figures import (  # noqa: E402
    publish, publish_stored, run_info, soak_record, write_record,
)
from mmemu.harness.readme import README  # noqa: E402
from mmemu.harness.soak import Soak  # noqa: E402


def parser():
    ap = argparse.ArgumentParser(prog="soak", description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="pc-4g,numa-2n", help="comma-separated machines")
    ap.add_argument("--cycles", type=int, default=10, help="cycles per run")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--minutes", type=float, default=None, help="keep going this long")
    ap.add_argument("-v", "--verbose", action="store_true", help="a line per cycle")
    ap.add_argument("--json", metavar="FILE", help="store the run's totals here")
    ap.add_argument("--summary", metavar="FILE",
                    help="print the README figures of this stored run (runs nothing)")
    ap.add_argument("--readme", nargs="?", const=str(README), metavar="FILE",
                    help="rewrite the generated block 'soak' of README.md (or FILE)")
    return ap


def main(argv=None):
    args = parser().parse_args(argv)
    if args.summary:
        return publish_stored(args.summary, "soak", args.readme)
    argv = sys.argv[1:] if argv is None else argv
    run = run_info(argv, "soak.py")
    t0 = time.monotonic()
    results = soak(args)
    total = sum(r.cycles for r in results)
    problems = sum(len(r.problems) for r in results)
    print(f"{total} cycles, {problems} problems")
    if args.json or args.readme:
        options = {"configs": args.config.split(","), "cycles_per_run": args.cycles,
                   "seed": args.seed, "minutes": args.minutes}
        record = soak_record(results, time.monotonic() - t0, run, options)
        if args.json:
            write_record(args.json, record)
        if args.readme:
            publish(record, args.readme)
    return 1 if problems else 0


def soak(args):
    """Run every config with seed, seed + 1, ... until args.minutes pass: the SoakResults."""
    end = time.monotonic() + args.minutes * 60 if args.minutes else None
    results, seed = [], args.seed
    while True:
        for config in args.config.split(","):
            r = Soak(config, cycles=args.cycles, seed=seed).run()
            results.append(r)
            print(f"seed {seed}: {r.summary()}", flush=True)
            if args.verbose:
                for st in r.stats:
                    zones = ", ".join(f"{z} {free}/{low}" for z, (free, _, low) in st.zones.items())
                    print(f"  cycle {st.cycle}: {st.highuser_pages} highuser + {st.kernel_pages} "
                          f"kernel + {st.dma_pages} dma + {st.atomic_pages} atomic pages, "
                          f"{st.fallbacks} fallbacks, free/low at exhaustion: {zones}, "
                          f"{st.seconds:.1f} s")
            for p in r.problems:
                print(f"  PROBLEM: {p}")
        seed += 1
        if end is None or time.monotonic() > end:
            return results


if __name__ == "__main__":
    sys.exit(main())
