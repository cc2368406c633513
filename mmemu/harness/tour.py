"""The guided tour's generated blocks: docs/tour.md's programs and outputs, run.

docs/tour.md holds two kinds of generated block (mmemu/harness/readme.py's
markers), named after the step they belong to:

* ``NN-program`` / ``NN-config`` blocks, whose command is a file under
  guest/examples/tour: the file itself, in a fenced block (```c, ```yaml);
* every other block, whose command is a shell command run in
  guest/examples/tour (bash, ``pipefail``, with ``mmemu`` on PATH as this
  Python's ``python -m mmemu``): ``$ command`` and what it printed,
  stdout and stderr together, in a ```console block;
* ``NN-picture`` blocks are such commands ending in ``-o NAME.png`` (an
  ``mmemu memmap``): the picture is written to a temporary directory, kept
  as docs/tour-NAME.png, and shown below the command.

A command that exits non-zero is an error unless it ends with
``; echo "exit status $?"``, which shows the status.  Nothing in an output
may change from run to run (tests/test_tour.py runs every block and
compares it with the document).
"""
import os
import re
import shlex
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

from mmemu.harness.readme import block_commands, read_block, replace_block

ROOT = Path(__file__).resolve().parents[2]
TOUR = ROOT / "docs" / "tour.md"
TOUR_DIR = ROOT / "guest" / "examples" / "tour"
COMMAND_TIMEOUT = 300
FENCE_LANG = {".c": "c", ".yaml": "yaml"}


class TourError(RuntimeError):
    """A block that cannot be made: a missing file, a failing command."""


def blocks(text):
    """(name, command) of every generated block in the tour, in order."""
    found = block_commands(text)
    opened = text.count("<!-- begin generated:")
    if opened != len(found):
        raise TourError(f"{opened} blocks opened but {len(found)} well formed "
                        "(a command may not hold ')' or '-->')")
    for name, cmd in found:
        if not cmd:
            raise TourError(f"block {name}: no command in its marker")
    return found


def is_file_block(name):
    return name.endswith(("-program", "-config"))


def is_picture_block(name):
    return name.endswith("-picture")


def picture_path(cmd):
    """docs/tour-NAME.png of a picture block's command (`... -o NAME.png`)."""
    m = re.search(r" -o ([\w.-]+\.png)$", cmd)
    if not m:
        raise TourError(f"{cmd}: a picture block's command ends with -o NAME.png")
    return TOUR.parent / f"tour-{m.group(1)}"


def _mmemu_shim(where):
    """A directory holding an `mmemu` that runs this Python's mmemu."""
    shim = Path(where) / "mmemu"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m mmemu "$@"\n')
    shim.chmod(0o755)
    return str(Path(where))


def run_command(cmd, bindir):
    """What cmd prints (stdout and stderr together), run as the tour runs it."""
    env = dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""),
               COLUMNS="80", LC_ALL="C.UTF-8")
    try:
        proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=TOUR_DIR, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=COMMAND_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise TourError(f"{cmd}: still running after {COMMAND_TIMEOUT} s") from None
    out = proc.stdout.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise TourError(f"{cmd}: exit status {proc.returncode}\n{out}")
    return out


def render(name, cmd, bindir):
    """(body, files) of block `name`: a file of the tour, or a command and its
    output; files maps the docs/ path of a picture block's picture to its bytes."""
    if is_file_block(name):
        path = TOUR_DIR / cmd
        if not path.is_file():
            raise TourError(f"block {name}: no file {path.relative_to(ROOT)}")
        return f"```{FENCE_LANG.get(path.suffix, '')}\n{path.read_text()}```\n", {}
    if not is_picture_block(name):
        return _console(cmd, run_command(cmd, bindir)), {}
    keep = picture_path(cmd)
    shown = cmd.rsplit(" ", 1)[1]
    with tempfile.TemporaryDirectory(prefix="mmemu-tour-picture-") as tmp:
        where = str(Path(tmp) / shown)
        out = run_command(f"{cmd[:-len(shown)]}{shlex.quote(where)}", bindir)
        data = Path(where).read_bytes()
    body = _console(cmd, out.replace(where, shown))
    return f"{body}\n![{shown}: the picture this command draws]({keep.name})\n", {keep: data}


def _console(cmd, out):
    if out and not out.endswith("\n"):
        out += "\n"
    return f"```console\n$ {cmd}\n{out}```\n"


def png_pixels(data):
    """What a PNG shows (its header, palette and decompressed rows), not how
    zlib happened to compress it."""
    parts, pos = {}, 8
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        parts[kind] = parts.get(kind, b"") + data[pos + 8:pos + 8 + length]
        pos += 12 + length
    return parts.get(b"IHDR"), parts.get(b"PLTE"), zlib.decompress(parts.get(b"IDAT", b""))


def same_picture(path, data):
    """True when the picture kept at path shows what data does."""
    return path.is_file() and png_pixels(path.read_bytes()) == png_pixels(data)


def generate(text, only=None):
    """text with every block (or those named in only) made afresh; pictures
    that changed are rewritten."""
    with tempfile.TemporaryDirectory(prefix="mmemu-tour-") as tmp:
        bindir = _mmemu_shim(tmp)
        for name, cmd in blocks(text):
            if only and name not in only and name.split("-")[0] not in only:
                continue
            body, files = render(name, cmd, bindir)
            text = replace_block(text, name, body)
            for path, data in files.items():
                if not same_picture(path, data):
                    path.write_bytes(data)
    return text


def stale(text):
    """The names of the blocks whose body (or picture) is not what running them gives now."""
    found = []
    with tempfile.TemporaryDirectory(prefix="mmemu-tour-") as tmp:
        bindir = _mmemu_shim(tmp)
        for name, cmd in blocks(text):
            body, files = render(name, cmd, bindir)
            if body != read_block(text, name) or not all(
                    same_picture(path, data) for path, data in files.items()):
                found.append(name)
    return found


def step_of(name):
    """'03' of '03-run': the step a block belongs to."""
    m = re.match(r"(\d+)-", name)
    return m.group(1) if m else None
