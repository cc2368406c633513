"""The machines the fuzzers run on, and configs with fields changed."""
import dataclasses

from mmemu.config import MachineConfig, load_config

# Machines the fuzzers use: small ones, so that machine.check() stays cheap;
# one with HighMem (kmap has real work) and one with two nodes (nid arguments).
FUZZ_CONFIGS = {
    "pc-16m": ("pc-16m", {}),
    "pc-128m-highmem": ("pc-128m", {"highmem": 32 << 20}),   # highmem=32M: 96 MiB lowmem
    "numa-2n": ("numa-2n", {}),
}


def fuzz_config(name, debug_vm=True):
    """A MachineConfig by FUZZ_CONFIGS name (or any config name or path)."""
    base, changes = FUZZ_CONFIGS.get(name, (name, {}))
    cfg = machine_config(base, debug_vm=debug_vm, **changes)
    if name in FUZZ_CONFIGS:
        cfg.name = name
    return cfg


def machine_config(config, **changes):
    """A MachineConfig from a name, path or MachineConfig, with fields changed
    (a change of None leaves the field as it is)."""
    cfg = config if isinstance(config, MachineConfig) else load_config(config)
    changes = {k: v for k, v in changes.items() if v is not None}
    return dataclasses.replace(cfg, **changes) if changes else cfg


def config_name(config):
    return config if isinstance(config, str) else getattr(config, "name", str(config))
