"""Harnesses that drive mmemu from outside: the fuzzer, the soak, and the
README blocks their figures fill.  Nothing in the model imports this."""
