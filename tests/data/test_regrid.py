"""Conservative regridding preserves area-weighted means; bilinear reproduces linear fields."""

import numpy as np
import pytest
import xarray as xr

from vecfield.data.regrid import crop_area, regrid, regular_grid
from vecfield.data.sources import open_dataset


def _pole_grid_weights(latitude: np.ndarray) -> np.ndarray:
    """GraphCast's closed-form cell weights with poles: cos φ sin(Δ/2) inside, sin²(Δ/4) at the poles."""
    delta = np.deg2rad(latitude[1] - latitude[0])
    weights = np.cos(np.deg2rad(latitude)) * np.sin(delta / 2)
    weights[[0, -1]] = np.sin(delta / 4) ** 2
    return weights


def _global_mean(var: xr.DataArray) -> np.ndarray:
    w = xr.DataArray(_pole_grid_weights(var["latitude"].values), dims="latitude")
    return (var.astype(np.float64) * w).sum(["latitude", "longitude"]).values / (
        w.sum().item() * var.sizes["longitude"]
    )


@pytest.mark.parametrize(
    ("path", "kwargs", "resolution"),
    [
        ("era5/era5-levels-members.grib", {"member": 0}, 6.0),
        ("era5/eraint_uvz.nc", {"select": {"month": 1}}, 3.0),
    ],
)
def test_conservative_coarsening_preserves_global_mean(shared_data, path, kwargs, resolution):
    ds = open_dataset(shared_data / path, **kwargs).load()
    coarse = regrid(ds, resolution, include_poles=True)  # auto → conservative (integer factor)
    lat, lon = regular_grid(resolution, True)
    np.testing.assert_array_equal(coarse["latitude"].values, lat)
    np.testing.assert_array_equal(coarse["longitude"].values, lon)
    for name in ds.data_vars:
        fine, coarse_mean = _global_mean(ds[name]), _global_mean(coarse[name])
        np.testing.assert_allclose(coarse_mean, fine, rtol=1e-6, atol=1e-6 * np.abs(fine).max())


def test_conservative_block_mean_without_poles():
    """Without poles and a factor 2: rows pair up (weights Δsin φ); cells centred on λ = 0, Δ, … take the
    centre column and half of each neighbour (periodic)."""
    lat, lon = regular_grid(2.8125, False)
    rng = np.random.default_rng(1)
    data = rng.normal(size=(lat.size, lon.size))
    ds = xr.Dataset({"t": (("latitude", "longitude"), data)}, coords={"latitude": lat, "longitude": lon})
    coarse = regrid(ds, 5.625, include_poles=False, method="conservative")["t"].values
    w = np.diff(np.sin(np.deg2rad(np.linspace(-90, 90, lat.size + 1))))
    rows = (data * w[:, None]).reshape(32, 2, 128).sum(1) / w.reshape(32, 2).sum(1)[:, None]
    blocks = 0.5 * rows[:, ::2] + 0.25 * (
        np.roll(rows, 1, axis=1)[:, ::2] + np.roll(rows, -1, axis=1)[:, ::2]
    )
    np.testing.assert_allclose(coarse, blocks, rtol=1e-12)


def test_bilinear_is_exact_for_fields_linear_in_latitude_and_periodic_longitude():
    lat, lon = regular_grid(3.0, True)
    field = 2.0 * lat[:, None] + 0.0 * lon[None, :]
    ds = xr.Dataset({"t": (("latitude", "longitude"), field)}, coords={"latitude": lat, "longitude": lon})
    out = regrid(ds, 5.625, include_poles=False)  # 5.625 / 3 is no integer → bilinear
    target_lat, _ = regular_grid(5.625, False)
    np.testing.assert_allclose(
        out["t"].values, np.broadcast_to(2.0 * target_lat[:, None], (32, 64)), atol=1e-10
    )
    # periodicity: a wave in longitude is interpolated across the 360° seam without NaNs
    wave = ds.assign(t=(("latitude", "longitude"), np.broadcast_to(np.cos(np.deg2rad(lon)), field.shape)))
    assert not np.isnan(regrid(wave, 5.625, False)["t"].values).any()


def test_crop_area_across_the_meridian():
    lat, lon = regular_grid(5.0, True)
    ds = xr.Dataset(
        {"t": (("latitude", "longitude"), np.zeros((lat.size, lon.size)))},
        coords={"latitude": lat, "longitude": lon},
    )
    europe = crop_area(ds, north=70, west=-25, south=35, east=45)
    assert europe["longitude"].values.tolist() == [*range(335, 360, 5), *range(0, 50, 5)]
    assert europe["latitude"].values.tolist() == list(range(35, 75, 5))
    with pytest.raises(ValueError, match="south < north"):
        crop_area(ds, north=10, west=0, south=20, east=10)


def test_bad_resolution_is_an_error():
    with pytest.raises(ValueError, match="does not divide"):
        regular_grid(7.0, False)
