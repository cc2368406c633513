"""`python -m mmemu`: the same as the `mmemu` command."""
import sys

from mmemu.cli import main

sys.exit(main())
