"""The guided tour (docs/tour.md) runs as it reads: every program and output in it is current.

Each generated block is made afresh (its program read, its command run in
guest/examples/tour as a reader would) and compared with the document; a
difference means the tour went stale: run tools/tour.py and read the diff.
"""
import re
from pathlib import Path

import pytest

from mmemu.harness import tour
from mmemu.harness.readme import read_block
from mmemu.runtime.build import build

TEXT = tour.TOUR.read_text()
BLOCKS = tour.blocks(TEXT)
PROGRAMS = sorted(tour.TOUR_DIR.glob("*.c"))
STEPS = sorted({tour.step_of(name) for name, _ in BLOCKS} - {"00"})


@pytest.fixture(scope="module")
def bindir(tmp_path_factory):
    return tour._mmemu_shim(tmp_path_factory.mktemp("bin"))


@pytest.mark.parametrize("name,cmd", BLOCKS, ids=[name for name, _ in BLOCKS])
def test_block_is_what_running_it_gives(name, cmd, bindir):
    body, pictures = tour.render(name, cmd, bindir)
    assert body == read_block(TEXT, name), (
        f"docs/tour.md block {name} is stale: run tools/tour.py {name} and check the diff")
    for path, data in pictures.items():
        assert tour.same_picture(path, data), f"{path.name} is stale: run tools/tour.py {name}"


def test_every_step_has_a_program_a_run_on_a_named_config_and_a_view():
    assert STEPS == [f"{i:02d}" for i in range(1, len(STEPS) + 1)]
    assert len(STEPS) >= 12
    for step in STEPS:
        mine = [(n, c) for n, c in BLOCKS if tour.step_of(n) == step]
        programs = [c for n, c in mine if n.endswith("-program")]
        commands = [c for n, c in mine if not tour.is_file_block(n)]
        pictures = [n for n in mine if tour.is_picture_block(n[0])]
        assert all(tour.picture_path(c).name.startswith("tour-") for _, c in pictures)
        assert len(programs) == 1, step
        assert programs[0].startswith(f"{step}_"), step
        assert any(c.startswith("mmemu run ") and c.endswith(programs[0]) for c in commands), step
        # The machine is always named: the default may change flavour.
        for c in commands:
            assert re.search(r"--config \S+\.yaml", c), c
        # A run, then a view that shows its effect; in the steps about a
        # kernel report (10: slub_debug's, 16: a user task's segfault) the
        # report is the effect.
        views = [c for c in commands if not c.startswith("mmemu run ")]
        assert views or step in ("10", "16"), step


def test_every_tour_program_is_in_the_tour_and_every_config_pins_the_686_kernel():
    shown = {c for n, c in BLOCKS if n.endswith("-program")}
    assert shown == {p.name for p in PROGRAMS}
    for config in re.findall(r"--config (\S+\.yaml)", TEXT):
        text = (tour.TOUR_DIR / config).read_text()
        assert re.search(r"^pae: false\b", text, re.M), config


@pytest.mark.parametrize("program", PROGRAMS, ids=[p.name for p in PROGRAMS])
def test_program_builds_without_a_warning(program, tmp_path):
    # A warning prints only when the build is not cached, so the tour's
    # output would depend on the build cache: -Werror keeps them out.
    build(program, tmp_path / "prog.elf", cflags=("-Werror",))


def test_the_tool_finds_a_stale_block_and_rewrites_it(tmp_path):
    text = ("intro\n<!-- begin generated: 01-program (01_nodes.c) -->\n```c\nold\n```\n"
            "<!-- end generated: 01-program -->\n")
    assert tour.stale(text) == ["01-program"]
    fresh = tour.generate(text)
    program = (tour.TOUR_DIR / "01_nodes.c").read_text()
    assert read_block(fresh, "01-program") == f"```c\n{program}```\n"
    assert tour.stale(fresh) == []
    with pytest.raises(tour.TourError, match="blocks opened"):
        tour.blocks('<!-- begin generated: 02-x (grep -E "(a|b)") -->\n'
                    '<!-- end generated: 02-x -->\n')


def test_a_failing_command_is_an_error_not_an_output(bindir):
    with pytest.raises(tour.TourError, match="exit status 2"):
        tour.render("99-run", "mmemu run --config no-such.yaml 01_nodes.c", bindir)
    with pytest.raises(tour.TourError, match="ends with -o NAME.png"):
        tour.render("99-picture", "mmemu memmap --config tour-1g.yaml", bindir)


def test_readme_links_the_tour():
    readme = (Path(tour.ROOT) / "README.md").read_text()
    assert "(docs/tour.md)" in readme
