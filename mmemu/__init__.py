"""mmemu: the memory management of 32-bit Linux (6.1 i386) for Unicorn."""
from mmemu.errors import MmemuError, ConfigError

__all__ = ["Machine", "load_config", "MmemuError", "ConfigError"]


def __getattr__(name):
    # Lazy so that `import mmemu.config` does not pull in Unicorn.
    if name == "Machine":
        from mmemu.machine import Machine
        return Machine
    if name == "load_config":
        from mmemu.config import load_config
        return load_config
    raise AttributeError(name)
