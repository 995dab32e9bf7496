"""The embedded default atmosphere: a simulator, not an input/output path.

``shallow_water``: a two-layer spectral shallow-water model on the sphere; ``default_dataset``:
its forced three-year run, interpolated to the WeatherBench2 64 × 32 grid and cached as zarr,
which ``vecfield.data.sources`` opens as the source kind ``default``.
"""
