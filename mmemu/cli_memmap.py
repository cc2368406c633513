"""`mmemu memmap` and tools/memmap.py: which states to draw, and the file
(the command layer: it boots machines, runs programs and loads snapshots;
mmemu.views.memmap* draw what it hands them).

The states: the machine as booted; after a program (`--after PROG`: the
same machine is looked at before and after the run, and the picture shows
what the run changed); after a second program (`--before A --after B`:
A runs, then B on the same machine, and the picture shows what B changed);
a snapshot (`--snapshot FILE`), which `--before` (a program or another
snapshot) gives something to compare with.  `--no-diff` draws the last
state alone.
"""
import os
from dataclasses import dataclass, field

from mmemu.errors import UsageError
from mmemu.views.memmap import (
    ALLOCATED, FREED, RESHUFFLED, REUSED, FrameTips, SlabCodes, diff_frames, frame_classes,
    frame_size_text, parse_span,
)
from mmemu.views.memmap_draw import build_picture, default_geometry
from mmemu.views.memmap_image import png_bytes, svg_text

MAX_PIXELS = 40_000_000         # about 6300 x 6300: beyond that, one clear line


def add_arguments(parser):
    """memmap's options (after --config, --after, --snapshot)."""
    parser.add_argument("-o", "--output", default="memmap.png",
                        help="the picture to write: .png or .svg (default memmap.png); an SVG's "
                             "cells carry tooltips (pfn, zone, owner, flags, slab cache)")
    parser.add_argument("--format", choices=("png", "svg"),
                        help="the format, when the file name does not say it")
    parser.add_argument("--before", metavar="PROGRAM|SNAPSHOT",
                        help="what to compare with: a program run first (then --after's runs on "
                             "the same machine) or a snapshot; without it, --after compares "
                             "with the machine as booted")
    parser.add_argument("--no-diff", action="store_true",
                        help="draw the last state alone, without what changed")
    parser.add_argument("--span", default="ram",
                        help="the frames to draw: ram (mem_map's, the default), all (4 GiB), "
                             "or a physical range START-END or START+SIZE (16M-32M, "
                             "0x100000+64K)")
    parser.add_argument("--zoom", action="append", metavar="START-END",
                        help="a zoom panel of this physical range (repeatable); by default "
                             "up to three, around what changed")
    parser.add_argument("--cols", type=int, help="frames per row (default: about square)")
    parser.add_argument("--scale", type=int, help="pixels per frame, each way")


@dataclass
class MemmapTarget:
    """The states to draw: ``machine`` as it is now (its FrameMap ``after``)
    and, to compare with, ``before``; words for the title."""

    machine: object
    after: object
    before: object = None
    when: str = "at boot"
    compared: str = ""
    notes: list = field(default_factory=list)
    keep: list = field(default_factory=list)      # snapshots to close at the end


def picture_format(args):
    fmt = (args.format or str(args.output).rsplit(".", 1)[-1]).lower()
    if fmt not in ("png", "svg"):
        raise UsageError(f"picture format must be png or svg, not {fmt!r} "
                         f"(name the file .png or .svg, or give --format)")
    return fmt


def open_target(args):
    """The states args ask for (a MemmapTarget)."""
    picture_format(args)
    _check_geometry(args)
    for text in [args.span] + list(args.zoom or []):
        parse_span(text, 1 << 20)                    # a bad range fails before a boot
    if args.before and not (args.after or args.snapshot):
        raise UsageError("--before needs --after PROGRAM or --snapshot FILE: the state to "
                         "compare it with")
    if args.after and args.snapshot:
        raise UsageError("--after runs a program on a live machine; not with --snapshot")
    slabs = SlabCodes()
    span = frames_needed(args)
    t = _before_state(args, slabs, span)
    if args.snapshot:
        from mmemu.views.snapshot import load_snapshot
        snap = load_snapshot(args.snapshot)
        t.keep.append(snap)
        t.machine, t.when = snap, f"in snapshot {os.path.basename(args.snapshot)}"
    elif args.after:
        if t.machine is None:
            t.machine = _boot(args.config)
            t.before = None if args.no_diff else frame_classes(t.machine, span(t.machine), slabs)
            t.compared = "boot"
        result = t.machine.run(args.after)
        t.when = f"after {os.path.basename(args.after)}"
        _note_run(t, args.after, result)
    t.after = frame_classes(t.machine, span(t.machine), slabs)
    if args.no_diff:
        t.before = None
    if t.before is not None and len(t.before.codes) != len(t.after.codes):
        raise UsageError(f"the two states are different machines ({t.before.nr_pages} and "
                         f"{t.after.nr_pages} page frames); compare states of one config")
    return t


def _before_state(args, slabs, span):
    """A MemmapTarget holding the --before state (or the boot, or nothing yet)."""
    t = MemmapTarget(None, None)
    if not args.before:
        if not (args.after or args.snapshot):
            t.machine = _boot(args.config)
        return t
    if _is_snapshot(args.before):
        from mmemu.views.snapshot import load_snapshot
        snap = load_snapshot(args.before)
        t.keep.append(snap)
        t.before = frame_classes(snap, span(snap), slabs)
        t.compared = f"snapshot {os.path.basename(args.before)}"
        return t
    m = _boot(args.config)
    result = m.run(args.before)
    _note_run(t, args.before, result)
    t.before = frame_classes(m, span(m), slabs)
    t.compared = os.path.basename(args.before)
    if args.after:
        t.machine = m                # the --after program runs on this machine next
    return t


def _boot(config):
    from mmemu.machine import Machine
    return Machine(config, echo=False)


def _is_snapshot(path):
    """An ELF core file (what `mmemu run --dump` writes), not a program."""
    if str(path).endswith(".c"):
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(18)
    except OSError as e:
        raise UsageError(f"--before: cannot read {path}: {e.strerror}") from None
    return head[:4] == b"\x7fELF" and head[16:18] == b"\x04\x00"        # ET_CORE


def _note_run(t, program, result):
    if result.reason != "exit" or result.status:
        t.notes.append(f"{os.path.basename(program)} ended with {result.reason}, "
                       f"exit status {result.status}")


def frames_needed(args):
    """fn(machine) -> how many frames from pfn 0 the span and zooms reach."""
    def needed(machine):
        nr = machine.mem_map.nr_pages
        return max(parse_span(text, nr)[1] for text in [args.span] + list(args.zoom or []))
    return needed


def _check_geometry(args):
    for name in ("cols", "scale"):
        value = getattr(args, name)
        if value is not None and not 1 <= value <= (1 << 14 if name == "cols" else 64):
            raise UsageError(f"--{name} {value} is out of range "
                             f"(1..{1 << 14 if name == 'cols' else 64})")


def draw(target, args):
    """The Picture args ask for, of target's states."""
    fm, before, m = target.after, target.before, target.machine
    first, last = parse_span(args.span, fm.nr_pages)
    last = min(last, len(fm.codes))
    if first >= last:
        raise UsageError(f"span {args.span} has no frames on this machine "
                         f"(its frames end at pfn 0x{len(fm.codes):x})")
    cols, scale = _geometry(args, last - first)
    diff = diff_frames(before, fm) if before is not None else None
    zooms = None
    if args.zoom:
        zooms = [parse_span(z, fm.nr_pages) for z in args.zoom]
        zooms = [(lo, min(hi, len(fm.codes))) for lo, hi in zooms if lo < len(fm.codes)]
    tips = FrameTips(m, fm, before, diff) if picture_format(args) == "svg" else None
    notes = _notes(m, target, first, last, cols, scale, diff)
    return build_picture(m, fm, first, last, f"{m.cfg.name}: physical memory {target.when}",
                         notes, before, diff, tips, cols, scale, zooms)


def _geometry(args, frames):
    """(cols, scale) of the map: the options', else about square; refused when huge."""
    cols, scale = default_geometry(frames)
    cols, scale = args.cols or cols, args.scale or scale
    rows = (frames + cols - 1) // cols
    if cols * scale * rows * scale > MAX_PIXELS:
        raise UsageError(f"the picture would be {cols * scale}x{rows * scale} pixels; "
                         f"use fewer --cols, a smaller --scale or a narrower --span")
    return cols, scale


def _notes(m, t, first, last, cols, scale, diff):
    """The lines under the title: the machine, the drawing, what changed, how runs ended."""
    lay = m.layout
    nodes = lay.nr_nodes
    lines = [f"{m.cfg.description}: {lay.max_pfn} page frames of 4 KiB, {nodes} "
             f"node{'s' if nodes > 1 else ''}.  Drawn: pfn 0x{first:x}-0x{last - 1:x}, "
             f"{cols} frames ({frame_size_text(cols)}) a row, "
             f"{scale} pixel{'s' if scale > 1 else ''} a frame."]
    if diff is not None:
        c = diff.counts_in(first, last)
        lines.append(f"Outlined: what changed since {t.compared}: {c.get(ALLOCATED, 0)} frames "
                     f"allocated (red), {c.get(FREED, 0)} freed (blue), {c.get(REUSED, 0)} "
                     f"reused (black), {c.get(RESHUFFLED, 0)} free ones moved (green); "
                     f"unchanged frames are faded.")
    return lines + t.notes


def write_picture(pic, path, fmt):
    data = png_bytes(pic.scene) if fmt == "png" else svg_text(pic.scene).encode()
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror}") from None


def body(target, args):
    try:
        pic = draw(target, args)
        write_picture(pic, args.output, picture_format(args))
    finally:
        for snap in target.keep:
            snap.close()
    line = (f"{args.output}: {pic.width}x{pic.height}, pfn 0x{pic.first:x}-0x{pic.last - 1:x} "
            f"({pic.frames} frames), {pic.cols} per row, {pic.scale} px each")
    if pic.diff is not None:
        c = pic.diff.counts_in(pic.first, pic.last)
        line += (f"; changed: {c.get(ALLOCATED, 0)} allocated, {c.get(FREED, 0)} freed, "
                 f"{c.get(REUSED, 0)} reused, {c.get(RESHUFFLED, 0)} free moved")
    for p in pic.panels:
        w = p.window
        line += f"; zoom {w.label}: pfn 0x{w.first:x}-0x{w.last - 1:x}"
    return line + "\n"
