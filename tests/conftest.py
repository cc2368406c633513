"""Shared fixtures.  mm_*: the page allocator booted without Unicorn."""
import pytest


@pytest.fixture
def mm_boot():
    """A factory: mm_boot("pc-16m", min_free_kbytes=...) -> a freshly booted MmState."""
    from mmemu.init.main import boot_mm
    return boot_mm


@pytest.fixture
def mm_16m(mm_boot):
    """pc-16m's page allocator: DMA (to 8 MiB) and Normal, no HighMem."""
    return mm_boot("pc-16m")
