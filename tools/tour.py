#!/usr/bin/env python3
"""Regenerate the guided tour's programs and outputs in docs/tour.md.

    tools/tour.py              run every block, rewrite docs/tour.md
    tools/tour.py 04 09-run    only the blocks of step 04 and block 09-run
    tools/tour.py --check      rewrite nothing; list the blocks that are stale
                               (exit status 1 if any)

Every command runs in guest/examples/tour, as the tour tells a reader to;
see mmemu/harness/tour.py for the block format.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mmemu.harness.tour import TOUR, TourError, generate, stale  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description="Regenerate docs/tour.md's generated blocks.")
    ap.add_argument("only", nargs="*", metavar="STEP|BLOCK",
                    help="only these steps (04) or blocks (04-run)")
    ap.add_argument("--check", action="store_true",
                    help="list stale blocks instead of rewriting them")
    args = ap.parse_args(argv)
    text = TOUR.read_text()
    try:
        if args.check:
            names = stale(text)
            for name in names:
                print(f"{TOUR.name}: block {name} is stale")
            return 1 if names else 0
        new = generate(text, set(args.only) or None)
    except TourError as e:
        print(f"tour: {e}", file=sys.stderr)
        return 1
    if new != text:
        TOUR.write_text(new)
        print("docs/tour.md: rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
