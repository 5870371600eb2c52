"""The HDF5 store of families: an index file plus one HDF5 file per family, the journal of
extractions in progress, the writers that fill family files in bounded memory.

Stage 4 of the flow (see ``docs/architecture.md``); the only package that imports h5py.
``index`` (:class:`Store`: keys, load, commit), ``family_file`` (the schema of a family's
group), ``writers`` (scratch-file writers), ``journal`` (finished chunks), ``files`` (atomic
rewrites, reserved space, the file format), ``tables`` (reading users' HDF5 data tables),
``repair`` (checking and repairing a store), ``paths`` (where results may be written).
"""

from __future__ import annotations

from circuitnn.store.files import LIBVER, REASON_BYTES, RESERVE_MARGIN, SCHEMA_VERSION
from circuitnn.store.index import Store, StoreWarning
from circuitnn.store.journal import Journal
from circuitnn.store.writers import ANALYSIS_ROWS, AnalysisWriter, FamilyWriter

__all__ = [
    "ANALYSIS_ROWS",
    "LIBVER",
    "REASON_BYTES",
    "RESERVE_MARGIN",
    "SCHEMA_VERSION",
    "AnalysisWriter",
    "FamilyWriter",
    "Journal",
    "Store",
    "StoreWarning",
]
