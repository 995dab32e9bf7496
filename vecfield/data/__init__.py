"""ERA5 and other sources through xarray/zarr/dask, in one canonical layout."""
