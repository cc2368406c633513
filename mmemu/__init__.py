"""mmemu: the memory management of 32-bit Linux (6.1 i386) for Unicorn."""
from mmemu.errors import MmemuError, ConfigError

__all__ = ["Machine", "load_config", "MmemuError", "ConfigError", "AttachError", "MachineClosed",
           "Trap"]


def __getattr__(name):
    # Lazy so that `import mmemu.config` does not pull in Unicorn.
    if name == "Machine":
        from mmemu.machine import Machine
        return Machine
    if name == "load_config":
        from mmemu.config import load_config
        return load_config
    if name == "AttachError":          # a Uc mmemu cannot move into (engine.py)
        from mmemu.engine import AttachError
        return AttachError
    if name == "MachineClosed":
        from mmemu.machine import MachineClosed
        return MachineClosed
    if name == "Trap":                 # what Machine.trap_policy is given
        from mmemu.runtime.traps import Trap
        return Trap
    raise AttributeError(name)
