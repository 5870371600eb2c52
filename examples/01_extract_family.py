"""Extract a Monte Carlo family of a built-in neuron, look at it, and read it back with plain h5py.

Run:  .venv/bin/python examples/01_extract_family.py   (writes output/examples/)
"""

from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401  (registers the Blosc filter of the store's compressed arrays)
import numpy as np

import circuitnn
from circuitnn.extract.plots import plot_family

out = Path("output/examples")
store = out / "families.h5"
family = circuitnn.extract_family(
    "mos_diffpair", n=1000, seed=1, store=store, options=circuitnn.RunOptions(jobs=2)
)
print(f"{family.neuron}: {family.n} instances, {len(family.failed)} failed, key {family.key}")
for name, stats in family.summary().items():
    print(f"  {name:10s} mean {stats['mean']:.4g}  σ {stats['std']:.3g}")

# Trace the most offset instance back to its devices.
worst = int(np.nanargmax(np.abs(family.descriptors["midpoint"])))
print(
    f"largest offset: instance {worst}, "
    f"midpoint {family.descriptors['midpoint'][worst] * 1e3:.2f} mV"
)
for name in ("dvt1", "dvt2", "dbeta1", "dbeta2"):
    print(f"  {name} = {family.parameter(name)[worst]:.4g}")
print(f"picture: {plot_family(family, out / 'mos_diffpair.png')}")

# The store is plain HDF5 (its large arrays compressed with hdf5plugin's Blosc filter).
with h5py.File(store, "r") as handle:
    group = handle["families"][family.key]
    print("datasets:", sorted(group))
    print("curves:", group["curves"].shape, group["curves"].attrs["units"])
    assert np.array_equal(group["curves"][()], family.curves)
