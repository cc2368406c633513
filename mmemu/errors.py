"""One root exception for everything mmemu raises on purpose.

Anything a user can get wrong (a config, a guest program, a snapshot file)
raises a subclass of MmemuError with a message written for that user; the CLI
prints the message and exits with the error's ``exit_status``, never a
traceback.
"""
import reprlib
from typing import Optional

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60


def clip(text: object, limit: int = 80) -> str:
    """str(text) cut to limit characters: an error message never echoes
    unbounded input (a 100 KiB YAML value, a name from a damaged file)."""
    text = str(text)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def clip_repr(value: object, limit: int = 40) -> str:
    """repr(value) cut to limit characters, built by reprlib, so a huge list
    or string is never turned into text whole."""
    return clip(_REPR.repr(value), limit)


class MmemuError(Exception):
    """Root of mmemu's own errors."""

    exit_status = 1


class ConfigError(MmemuError):
    """A machine config is malformed: names the file, the key path and the fault."""

    exit_status = 2

    def __init__(self, path: object, key: Optional[str], message: str) -> None:
        self.path = str(path)
        self.key = key
        self.message = message
        where = f"{self.path}: {key}: " if key else f"{self.path}: "
        super().__init__(where + message)


class UsageError(MmemuError):
    """A command line or API call asked for something that cannot be done."""

    exit_status = 2


class BuildError(MmemuError):
    """A guest program did not compile or link; the compiler's output is the message."""

    exit_status = 3


class LoaderError(MmemuError):
    """A guest image is not an i386 ELF or does not fit its reservation."""

    exit_status = 3


class KernelOops(MmemuError):
    """Kernel code mmemu models died (an oops or a BUG) on state the guest
    corrupted in its memory: the report is on the kernel log and the call
    did not finish.

    A hypercall that meets it returns to a guest whose run is ending (the
    task was killed); a call from the host raises it, as the one documented
    way a host-side call can fail for what the guest did.
    """

    exit_status = 139


class CorruptionError(MmemuError):
    """A consistency checker found allocator state that breaks an invariant.

    Like drgn's ValidationError: raised only by the checkers, never on the
    normal path; subclassed per subsystem.
    """


class PageAllocCorruption(CorruptionError):
    """The buddy allocator's free lists or mem_map disagree."""


class SlabCorruptionError(CorruptionError):
    """A slab cache's slabs or freelists are damaged."""


class VmallocCorruption(CorruptionError):
    """The vmap areas overlap, lost their guard page, or disagree with the PTEs."""

