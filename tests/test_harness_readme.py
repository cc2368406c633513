"""Generated README blocks: the markers tools rewrite between."""
import pytest

from mmemu.harness.readme import BlockError, block_names, read_block, replace_block

DOC = """# t
<!-- begin generated: bench (python3 tools/bench.py --markdown) -->
| old |
<!-- end generated: bench -->
tail
"""


def test_replace_block_keeps_the_rest_of_the_file():
    out = replace_block(DOC, "bench", "| new |")
    assert read_block(out, "bench") == "| new |\n"
    assert out.startswith("# t\n") and out.endswith("tail\n")
    assert block_names(out) == ["bench"]


def test_missing_or_duplicate_block_is_an_error():
    with pytest.raises(BlockError):
        read_block(DOC, "oracle")
    with pytest.raises(BlockError):
        replace_block(DOC + DOC, "bench", "x")
