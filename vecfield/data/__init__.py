"""ERA5 and other sources through xarray/zarr/dask, in one canonical layout.

Modules: ``sources`` (open any source), ``canonical`` (the layout), ``catalogue`` (names, units,
roles), ``checks`` (time axis, NaNs, levels), ``regrid``, ``derived`` (6-hour precipitation,
TISR check, structural features), ``forcings``, ``statistics``, ``build`` (training datasets),
``cds`` (downloads) and ``streaming`` (windowed torch datasets; imports torch).
"""

from vecfield.data.canonical import to_canonical
from vecfield.data.catalogue import CATALOGUE
from vecfield.data.sources import SOURCE_OPENERS, open_dataset

__all__ = ["CATALOGUE", "SOURCE_OPENERS", "open_dataset", "to_canonical"]
