"""Harnesses that drive mmemu from outside, and the README figures they fill.

Nothing in the model imports this package.  Split by what each part drives:

- hostfuzz.py: HostFuzzer, the raw hypercall driver (the host writes the
  mailbox words of every registered hypercall; hostcalls.py has the
  per-subsystem argument generators and result checks);
- guestfuzz.py: GuestFuzzer, which runs guest/tests/fuzz.c, the realistic
  mix through the SDK's own wrappers;
- checks.py: the oracle both fuzzers share (Watch: no host exception, the
  cheap counters, machine.check(); Patterns in every live allocation);
- records.py: Call, Failure, FuzzResult; machines.py: the machines they run on;
- minimize.py: replay() and minimize() of a failure's raw calls;
- soak.py: Soak, every zone driven to exhaustion and back, cycle after cycle;
- figures.py and readme.py: the figures of a stored run, and the generated
  blocks of README.md they fill.

Long, seeded, reproducible runs are tools/fuzz.py and tools/soak.py;
tests/test_fuzz.py and tests/test_soak.py are CI-sized runs.
"""
