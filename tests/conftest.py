"""Shared fixtures.  mm_*: the page allocator booted without Unicorn.

Kernel flavours.  mmemu models two kernels, Debian's 686 and 686-pae
(mmemu/flavour.py); a config without a ``pae:`` key boots the flavour
$MMEMU_KERNEL names.  Test modules whose results depend on the flavour are
marked ``pytestmark = pytest.mark.flavours``: each of their tests runs once
per flavour (ids ``[686]`` and ``[686-pae]``), with MMEMU_KERNEL set for the
whole module run, so the generic configs (pc-1g, pc-16m, ...) and the guest
programs (built with -DCONFIG_X86_PAE on 686-pae) boot that flavour.
Configs that name their kernel (qemu-pc-1g: 686, qemu-pc-1g-pae: 686-pae)
keep it.  ``pytest --kernel 686`` (or 686-pae) runs one flavour only; the
default is both.  Other tests run once, on 686.

A module-scoped fixture in a marked module must take ``kernel_flavour``,
so that it is made again for the second flavour; collection fails if one
does not (pytest would otherwise hand the 686 machine to the 686-pae run).
"""
import pytest

FLAVOURS = ("686", "686-pae")
UNMARKED_FLAVOUR = "686"


def pytest_addoption(parser):
    parser.addoption("--kernel", choices=FLAVOURS + ("both",), default="both",
                     help="kernel flavour(s) the flavour-dependent tests boot (default: both)")


def pytest_configure(config):
    config.addinivalue_line("markers", "flavours: run each test once per kernel flavour "
                                       "(686 and 686-pae); see tests/conftest.py")


def selected_flavours(config):
    choice = config.getoption("--kernel")
    return FLAVOURS if choice == "both" else (choice,)


def pytest_generate_tests(metafunc):
    if metafunc.definition.get_closest_marker("flavours") is not None:
        metafunc.parametrize("kernel_flavour", selected_flavours(metafunc.config),
                             indirect=True, scope="module")


@pytest.fixture(scope="module", autouse=True)
def kernel_flavour(request):
    """The flavour this test runs on: "686" or "686-pae" (MMEMU_KERNEL is set to it)."""
    flavour = getattr(request, "param", UNMARKED_FLAVOUR)
    patch = pytest.MonkeyPatch()
    patch.setenv("MMEMU_KERNEL", flavour)
    yield flavour
    patch.undo()


def pytest_collection_modifyitems(session, config, items):
    """Refuse a module-scoped fixture of a marked module that ignores the flavour."""
    for item in items:
        if item.get_closest_marker("flavours") is None:
            continue
        info = item._fixtureinfo
        for name in info.names_closure:
            defs = info.name2fixturedefs.get(name)
            if not defs or name == "kernel_flavour":
                continue
            fixdef = defs[-1]
            if fixdef.scope not in ("module", "package", "session") or not _ours(fixdef):
                continue
            if not _depends_on_flavour(name, info.name2fixturedefs):
                raise pytest.UsageError(
                    f"{item.nodeid}: fixture '{name}' is {fixdef.scope}-scoped in a "
                    f"flavour-parametrized module; give it a kernel_flavour argument")


def _ours(fixdef):
    """A fixture defined by the test suite (not by pytest or a plugin)."""
    module = getattr(fixdef.func, "__module__", "") or ""
    return module.startswith(("test_", "tests.", "conftest")) or module == "conftest"


def _depends_on_flavour(name, defs, seen=None):
    seen = seen or set()
    if name == "kernel_flavour":
        return True
    if name in seen or name not in defs:
        return False
    seen.add(name)
    return any(_depends_on_flavour(arg, defs, seen) for arg in defs[name][-1].argnames)


@pytest.fixture
def mm_boot():
    """A factory: mm_boot("pc-16m", min_free_kbytes=...) -> a freshly booted MmState."""
    from mmemu.init.main import boot_mm
    return boot_mm


@pytest.fixture
def mm_16m(mm_boot):
    """pc-16m's page allocator: DMA (to 8 MiB) and Normal, no HighMem."""
    return mm_boot("pc-16m")
