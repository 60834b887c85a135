"""numpy record dtypes of the core's C structs, and the check that an array matches one.

A dtype is read from its struct (``np.asarray(<Event[:1]> &record).dtype`` in
the module that declares it, as scikit-learn builds ``NODE_DTYPE``), so the
two cannot drift; padding members, named with a leading underscore, are left
out of the public fields.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def struct_dtype(one_record: Any) -> np.dtype[np.void]:
    """The record dtype of a C struct, from a typed memoryview of one; padding left out."""
    layout = np.asarray(one_record).dtype
    fields = dict(layout.fields or {})
    names = [name for name in layout.names or () if not name.startswith("_")]
    return np.dtype({"names": names,
                     "formats": [fields[name][0] for name in names],
                     "offsets": [fields[name][1] for name in names],
                     "itemsize": layout.itemsize})


def as_records(records: Any, dtype: np.dtype[np.void], what: str,
               dtype_name: str) -> np.ndarray:
    """`records` as a contiguous one-dimensional array of `dtype`, or TypeError.

    An array of the same fields (matched by name, each of the same type) in
    another layout, e.g. packed or reordered, is copied field by field:
    ``astype`` between record dtypes would pair fields by position.
    """
    if not isinstance(records, np.ndarray) or records.ndim != 1:
        shape = f" of shape {records.shape}" if isinstance(records, np.ndarray) else ""
        raise TypeError(f"{what} must be a one-dimensional numpy array of {dtype_name}, "
                        f"got {type(records).__name__}{shape}")
    if records.dtype == dtype:
        return np.ascontiguousarray(records)
    given = dict(records.dtype.fields or {})
    wanted = dict(dtype.fields or {})
    if set(given) != set(wanted) or any(given[name][0] != wanted[name][0] for name in wanted):
        raise TypeError(f"{what} must have the fields of {dtype_name} ({', '.join(wanted)}), "
                        f"got dtype {records.dtype}")
    converted = np.zeros(len(records), dtype=dtype)
    for name in dtype.names or ():
        converted[name] = records[name]
    return converted
