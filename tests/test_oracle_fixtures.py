"""mmemu against every stored real-kernel capture, offline (no QEMU).

Each folder of tests/fixtures/oracle/ is one shipped config booted on the
pinned reference kernel with ``nokaslr`` (``tools/oracle.py
--update-fixtures``); mmemu booted on the same config must state every fact
the real kernel stated, exactly.  tests/fixtures/oracle-kaslr/ holds
qemu-pc-1g booted with KASLR at two load addresses: there the managed pages
may lie within the kernel's own boot-to-boot spread and what follows from
them must follow by mmemu's functions.
"""
import re
from functools import lru_cache
from pathlib import Path

import pytest

from mmemu.harness.readme import README, read_block
from mmemu.oracle.compare import format_text
from mmemu.oracle.results import README_BLOCK, family
from mmemu.oracle.run import run_oracle

FIXTURES = Path(__file__).parent / "fixtures" / "oracle"
KASLR = Path(__file__).parent / "fixtures" / "oracle-kaslr"
STORED = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())


@lru_cache(maxsize=None)
def stored_result(name):
    return run_oracle(name, capture=FIXTURES / name)


def test_every_family_config_has_a_stored_capture():
    assert set(family()) <= set(STORED), set(family()) - set(STORED)


def test_readme_table_is_the_tools_output():
    # README's oracle block is written by tools/oracle.py --results; its
    # counts must be what the comparison gives on the stored captures.
    rows = [line.split("|")[1:-1] for line in read_block(README.read_text(), README_BLOCK)
            .splitlines() if line.startswith("| ") and not line.startswith("| config")]
    table = {cells[0].strip(): (int(cells[3]), int(cells[4])) for cells in rows}
    assert set(table) == set(family())
    for name, (facts, exact) in table.items():
        cmp_ = stored_result(name).comparison
        assert (facts, exact) == (len(cmp_.facts), len(cmp_.facts) - len(cmp_.failures)), name
    assert re.search(r"Real kernel: Linux 6\.1\.0-50-686 \(Debian linux-image-6\.1\.0-50-686 "
                     r"6\.1\.176-1\)", read_block(README.read_text(), README_BLOCK))


@pytest.mark.parametrize("name", STORED)
def test_mmemu_states_every_fact_of_the_real_boot(name):
    result = stored_result(name)
    assert result.seconds is None                       # nothing was booted
    assert result.comparison.exact == result.comparison.facts
    assert not result.comparison.doubtful
    assert not result.comparison.failures, format_text(result.comparison)


@pytest.mark.parametrize("folder", sorted(p.name for p in KASLR.iterdir()))
def test_mmemu_within_the_kaslr_spread(folder):
    result = run_oracle("qemu-pc-1g", capture=KASLR / folder, kaslr=True)
    assert result.comparison.kaslr
    assert not result.comparison.failures, format_text(result.comparison)
