"""``g2-zpe``: zero-point vibrational energies of the G2 molecules, with descriptors computed from
their stored geometries (needs the ``ase`` package: ``pip install 'circuitnn[materials]'``).

Source: the G2-1 and G2-2 molecule sets that ``ase`` ships (``ase.data.g2_1``, ``ase.data.g2_2``;
G2/97 of Curtiss, Raghavachari, Redfern and Pople, with the thermochemistry compiled by Staroverov
et al., J. Chem. Phys. 119, 12129 (2003)). Every molecule of the two sets that has a zero-point
energy is used (148 of 171; the atoms and a few radicals have none). The target is that ZPE in
kcal/mol (B3LYP harmonic frequencies); the geometries are MP2(full)/6-31G(d) optima in Å. It is
the same kind of target as QM9's zero-point vibrational energy, on an offline set of
molecules.

Descriptors (one row per molecule), all from the element symbols and the stored positions:

- ``n_<El>``: the number of atoms of each element that occurs in the set (H, Li, Be, B, C, N, O,
  F, Na, Al, Si, P, S, Cl);
- ``atoms``: the number of atoms; ``modes``: vibrational modes, 3N − 5 for a linear molecule
  (smallest principal moment of inertia ≈ 0) and 3N − 6 otherwise;
- bonds: atom pairs closer than 1.25 × the sum of their covalent radii
  (``ase.data.covalent_radii``):
  ``bonds`` all, ``bonds_h`` those with a hydrogen, ``bonds_heavy`` the others;
- ``inverse_mass_sum``: Σ over bonds of 1/√μ (amu^−½, μ the pair's reduced mass: a harmonic
  stretch's frequency scales as √(k/μ)); ``inverse_length_sum``: Σ over bonds of 1/d (Å⁻¹; shorter
  bonds are stiffer); ``mean_bond_length`` (Å);
- ``gyration_radius``: the mass-weighted radius of gyration (Å); ``max_distance``: the largest
  interatomic distance (Å).

Split by seed into train / validation / test (default 70 / 15 / 15 %) and standardized on the
training split like every table, so errors in network units are in units of the training
targets' standard deviation; ``Dataset.scaler.target_error`` gives kcal/mol.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from circuitnn.data.dataset import Dataset, make_dataset
from circuitnn.errors import ConfigError

ELEMENTS = ("H", "Li", "Be", "B", "C", "N", "O", "F", "Na", "Al", "Si", "P", "S", "Cl")
BOND_FACTOR = 1.25  # a bond: distance < BOND_FACTOR × (sum of covalent radii)
LINEAR_INERTIA = 1e-3  # amu·Å²: a smallest principal moment below this makes a molecule linear
DESCRIPTORS = (
    *(f"n_{element}" for element in ELEMENTS),
    "atoms",
    "modes",
    "bonds",
    "bonds_h",
    "bonds_heavy",
    "inverse_mass_sum",
    "inverse_length_sum",
    "mean_bond_length",
    "gyration_radius",
    "max_distance",
)


def _ase() -> Any:
    try:
        return importlib.import_module("ase")
    except ImportError:
        raise ConfigError(
            "the g2-zpe data set needs the ase package: pip install 'circuitnn[materials]' "
            "(or pip install ase)"
        ) from None


def g2_molecules() -> list[tuple[str, Any, float]]:
    """``(name, ase.Atoms, ZPE in kcal/mol)`` of every G2-1 and G2-2 molecule with a zero-point
    energy, in the order ``ase`` lists them."""
    ase = _ase()
    from ase.data import g2_1, g2_2

    molecules = []
    for source in (g2_1, g2_2):
        for name, entry in source.data.items():
            if "ZPE" in entry:
                atoms = ase.Atoms(entry["symbols"], positions=entry["positions"])
                molecules.append((str(name), atoms, float(entry["ZPE"])))
    return molecules


def descriptors(atoms: Any) -> np.ndarray:
    """The :data:`DESCRIPTORS` of one molecule (``ase.Atoms``), in that order."""
    from ase.data import covalent_radii

    symbols = atoms.get_chemical_symbols()
    unknown = sorted(set(symbols) - set(ELEMENTS))
    if unknown:
        raise ConfigError(f"g2-zpe: element(s) {unknown} outside {ELEMENTS}")
    counts = [symbols.count(element) for element in ELEMENTS]
    count = len(atoms)
    masses = atoms.get_masses()
    distances = atoms.get_all_distances()
    radii = covalent_radii[atoms.numbers]
    upper = np.triu(np.ones((count, count), dtype=bool), k=1)
    bonded = upper & (distances < BOND_FACTOR * (radii[:, None] + radii[None, :]))
    first, second = np.nonzero(bonded)
    hydrogen = np.array(
        [symbols[i] == "H" or symbols[j] == "H" for i, j in zip(first, second, strict=True)]
    )
    lengths = distances[first, second]
    reduced = masses[first] * masses[second] / (masses[first] + masses[second])
    inertia = atoms.get_moments_of_inertia()  # principal moments, amu·Å²
    linear = count == 2 or float(np.min(inertia)) < LINEAR_INERTIA
    centre = atoms.get_center_of_mass()
    squared = np.sum((atoms.positions - centre) ** 2, axis=1)
    gyration = np.sqrt(np.sum(masses * squared) / masses.sum())
    if not len(lengths):
        raise ConfigError(f"g2-zpe: {atoms.get_chemical_formula()} has no bond")
    return np.array(
        [
            *counts,
            count,
            3 * count - (5 if linear else 6),
            len(lengths),
            int(hydrogen.sum()),
            int((~hydrogen).sum()),
            float(np.sum(1.0 / np.sqrt(reduced))),
            float(np.sum(1.0 / lengths)),
            float(lengths.mean()),
            float(gyration),
            float(distances.max()),
        ],
        dtype=np.float64,
    )


def g2_zpe(*, seed: int = 0, validation: float = 0.15, test: float = 0.15) -> Dataset:
    """The ``g2-zpe`` regression data set (module docstring): 148 molecules × 24 geometry
    descriptors → zero-point energy (kcal/mol), split by ``seed`` and standardized."""
    molecules = g2_molecules()
    x = np.stack([descriptors(atoms) for _, atoms, _ in molecules])
    y = np.array([zpe for _, _, zpe in molecules])
    ase = _ase()
    return make_dataset(
        x,
        y,
        task="regression",
        feature_names=DESCRIPTORS,
        target_name="zpe_kcal_per_mol",
        name="g2-zpe",
        source=f"ase {ase.__version__}: ase.data.g2_1 + g2_2 (ZPE, B3LYP; MP2 geometries)",
        validation=validation,
        test=test,
        seed=seed,
    )


__all__ = ["DESCRIPTORS", "ELEMENTS", "descriptors", "g2_molecules", "g2_zpe"]
