"""Generated blocks in Markdown files: figures the tools produce, never typed.

A block is delimited by two HTML comments that Markdown renders as nothing::

    <!-- begin generated: bench (python3 tools/bench.py --markdown --readme) -->
    ...the tool's output...
    <!-- end generated: bench -->

A tool that owns a block rewrites what lies between its markers and leaves
the rest of the file alone; a test reads the blocks back and checks that they
parse and carry the fields the tool emits.
"""
import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"

_BLOCK = re.compile(r"(<!-- begin generated: (?P<name>[\w.-]+)(?: \((?P<cmd>[^)]*)\))? -->\n)"
                    r"(?P<body>.*?)"
                    r"(<!-- end generated: (?P=name) -->)", re.S)


class BlockError(ValueError):
    """A file has no block of that name, or has it twice."""


def _find(text, name):
    found = [m for m in _BLOCK.finditer(text) if m.group("name") == name]
    if len(found) != 1:
        raise BlockError(f"{len(found)} generated blocks named {name!r} (need exactly one)")
    return found[0]


def read_block(text, name):
    """The body of the generated block `name` in text (without its markers)."""
    return _find(text, name).group("body")


def replace_block(text, name, body):
    """text with the body of block `name` replaced by body (a final newline is added)."""
    m = _find(text, name)
    if body and not body.endswith("\n"):
        body += "\n"
    return text[:m.start("body")] + body + text[m.end("body"):]


def block_names(text):
    """The names of every generated block in text, in order."""
    return [m.group("name") for m in _BLOCK.finditer(text)]


def update_file(path, name, body):
    """Rewrite block `name` of the file at path with body; returns the path."""
    path = Path(path)
    path.write_text(replace_block(path.read_text(), name, body))
    return path


def block_commands(text):
    """(name, command) of every generated block in text, in order (command
    None when the begin marker names none)."""
    return [(m.group("name"), m.group("cmd")) for m in _BLOCK.finditer(text)]
