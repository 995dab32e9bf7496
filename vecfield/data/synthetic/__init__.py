"""The embedded default atmosphere: a simulator, not an input/output path.

``held_suarez``: dinosaur-torch's primitive equations with Held & Suarez's forcing plus seasons, a
diurnal cycle and mountains; ``default_dataset``: its three-year calendar (independent runs side by
side), on the WeatherBench2 64 × 32 grid at 500 and 850 hPa and cached as zarr, which
``vecfield.data.sources`` opens as the source kind ``default``.
"""
