"""Opening real ERA5 files into the canonical layout, and the errors bad input gets."""

import numpy as np
import pytest
import xarray as xr

from vecfield.data.canonical import to_canonical
from vecfield.data.checks import check_no_nans, check_time_axis, select_levels
from vecfield.data.sources import open_dataset

GRIB = "era5/era5-levels-members.grib"
NETCDF = "era5/eraint_uvz.nc"


def _raw_grib(shared_data):
    return xr.open_dataset(shared_data / GRIB, engine="cfgrib", backend_kwargs={"indexpath": ""})


def test_grib_opens_canonical_with_values_at_known_points(shared_data):
    raw = _raw_grib(shared_data)
    ds = open_dataset(shared_data / GRIB, member=3)
    assert dict(ds.sizes) == {"time": 4, "level": 2, "latitude": 61, "longitude": 120}
    assert list(ds.data_vars) == ["geopotential", "temperature"]
    assert ds["geopotential"].dims == ("time", "level", "latitude", "longitude")
    assert np.all(np.diff(ds["latitude"].values) > 0) and ds["latitude"].values[0] == -90.0
    assert ds["level"].values.tolist() == [500, 850]
    np.testing.assert_array_equal(ds["time"].values, raw["valid_time"].values)
    # raw points (descending latitude, level 850 first) land at the same canonical coordinates
    for it, ilev, ilat, ilon in [(1, 1, 5, 10), (3, 0, 40, 119), (0, 0, 0, 0), (2, 1, 60, 37)]:
        point = raw.isel(number=3, time=it, isobaricInhPa=ilev, latitude=ilat, longitude=ilon)
        for short, name in [("z", "geopotential"), ("t", "temperature")]:
            got = ds[name].sel(
                time=point["valid_time"].values,
                level=int(point["isobaricInhPa"]),
                latitude=float(point["latitude"]),
                longitude=float(point["longitude"]),
            )
            assert float(got) == float(point[short])
    # the flip: canonical row 0 is the raw last row (south pole)
    np.testing.assert_array_equal(
        ds["temperature"].isel(time=0, level=0, latitude=0).values,
        raw["t"].isel(number=3, time=0, latitude=-1).sel(isobaricInhPa=500).values,
    )


def test_grib_members_kept_as_realization(shared_data):
    raw = _raw_grib(shared_data)
    ds = open_dataset(shared_data / GRIB, keep_members=True)
    assert ds["temperature"].dims == ("realization", "time", "level", "latitude", "longitude")
    np.testing.assert_array_equal(
        ds["temperature"].sel(level=850).values[:, :, ::-1], raw["t"].sel(isobaricInhPa=850).values
    )


def test_ensemble_without_a_choice_is_an_error(shared_data):
    with pytest.raises(ValueError, match=r"10 ensemble members.*member=<id>"):
        open_dataset(shared_data / GRIB)
    with pytest.raises(ValueError, match=r"member=42 is not in the source"):
        open_dataset(shared_data / GRIB, member=42)


def test_netcdf_opens_canonical_with_wrapped_longitude(shared_data):
    raw = xr.open_dataset(shared_data / NETCDF)
    ds = open_dataset(shared_data / NETCDF, select={"month": 7})
    assert dict(ds.sizes) == {"level": 3, "latitude": 241, "longitude": 480}
    lon = ds["longitude"].values
    assert lon[0] == 0.0 and lon[-1] == 359.25 and np.all(np.diff(lon) > 0)
    assert np.all(np.diff(ds["latitude"].values) > 0)
    for lat, raw_lon, level in [
        (45.0, -90.0, 500),
        (-30.0, -180.0, 200),
        (89.25, 179.25, 850),
        (0.0, 0.0, 500),
    ]:
        expected = raw["z"].sel(month=7, level=level, latitude=lat, longitude=raw_lon)
        got = ds["geopotential"].sel(level=level, latitude=lat, longitude=raw_lon % 360)
        assert float(got) == float(expected)
    # u at −180° is column 240 of the canonical grid
    np.testing.assert_array_equal(
        ds["u_component_of_wind"].sel(level=850).values[::-1, 240],
        raw["u"].sel(month=7, level=850).values[:, 0],
    )


def test_extra_dimension_is_an_error_that_says_how_to_select(shared_data):
    with pytest.raises(ValueError, match=r"\['month'\].*select=\{'month': 1\}"):
        open_dataset(shared_data / NETCDF)


def test_misspelled_variable_lists_close_matches(shared_data):
    with pytest.raises(ValueError, match=r"'temprature'; did you mean 'temperature'.*Available"):
        open_dataset(shared_data / GRIB, member=0, variables=["temprature"])


def test_missing_level_lists_available(shared_data):
    ds = open_dataset(shared_data / GRIB, member=0)
    with pytest.raises(ValueError, match=r"\[700\] hPa.*available levels: \[500, 850\]"):
        select_levels(ds, [500, 700])


def test_grib_in_read_only_folder_writes_no_index(shared_data):
    before = sorted(p.name for p in (shared_data / "era5").iterdir())
    open_dataset(shared_data / GRIB, member=1)["temperature"].load()
    assert sorted(p.name for p in (shared_data / "era5").iterdir()) == before


def test_truncated_file_is_named(tmp_path, shared_data):
    broken = tmp_path / "pl_201701.nc"
    broken.write_bytes((shared_data / NETCDF).read_bytes()[:50_000])
    with pytest.raises(ValueError, match=r"pl_201701.nc.*corrupt or truncated"):
        open_dataset(broken, select={"month": 1})
    missing = tmp_path / "nothing.zarr"
    with pytest.raises(ValueError, match=r"does not exist"):
        open_dataset(missing)


def _synthetic(**overrides):
    time = np.arange("2020-01-01T00", "2020-01-02T00", 6, dtype="datetime64[h]").astype("datetime64[ns]")
    data = np.random.default_rng(0).normal(size=(time.size, 2, 3, 4)).astype(np.float32)
    ds = xr.Dataset(
        {
            "z": (
                ("valid_time", "pressure_level", "latitude", "longitude"),
                data * 100 + 5e4,
                {"units": "m**2 s**-2"},
            )
        },
        coords={
            "valid_time": time,
            "pressure_level": [850.0, 500.0],
            "latitude": [60.0, 0.0, -60.0],
            "longitude": [0.0, 90.0, 180.0, 270.0],
        },
    )
    return ds.assign(**overrides)


def test_geopotential_height_is_reported_as_such():
    ds = _synthetic()
    ds["z"].attrs["units"] = "m"
    with pytest.raises(ValueError, match=r"geopotential height, not geopotential.*9.80665"):
        to_canonical(ds)
    ds["z"].attrs["units"] = "m2/s2"
    assert to_canonical(ds)["geopotential"].attrs["units"] == "m**2 s**-2"


def test_expver_dimension_merges_era5_and_era5t():
    ds = _synthetic()
    final = ds.copy(deep=True)
    final["z"][2:] = np.nan  # ERA5 final ends; ERA5T continues
    early = ds.copy(deep=True) + 1.0
    merged = to_canonical(xr.concat([final, early], dim=xr.DataArray([1, 5], dims="expver", name="expver")))
    expected = to_canonical(ds)["geopotential"].values
    np.testing.assert_array_equal(merged["geopotential"].values[:2], expected[:2])
    np.testing.assert_array_equal(merged["geopotential"].values[2:], expected[2:] + 1.0)


def test_time_axis_errors():
    ds = to_canonical(_synthetic())
    assert check_time_axis(ds) == np.timedelta64(6, "h")
    with pytest.raises(ValueError, match=r"duplicated time steps"):
        check_time_axis(xr.concat([ds, ds.isel(time=[1])], "time"))
    with pytest.raises(
        ValueError,
        match=r"non-uniform time steps: expected 360 minutes but 2020-01-01T06:00 → 2020-01-01T18:00",
    ):
        check_time_axis(ds.isel(time=[0, 1, 3]))


def test_nans_are_counted_and_located():
    ds = to_canonical(_synthetic())
    ds["geopotential"][1, 0, 2, 3] = np.nan
    ds["geopotential"][1, 0, 0, 0] = np.nan
    with pytest.raises(
        ValueError, match=r"geopotential: 2 NaNs, e.g. time=2020-01-01T06, level=500: 2 points"
    ):
        check_no_nans(ds)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_local_zarr_v2_and_v3_and_memory_url(tmp_path, zarr_format):
    raw = _synthetic()
    raw.to_zarr(tmp_path / "s.zarr", zarr_format=zarr_format)
    expected = to_canonical(raw)
    xr.testing.assert_identical(open_dataset(tmp_path / "s.zarr").drop_attrs(), expected.drop_attrs())
    url = f"memory://vecfield-test-{zarr_format}.zarr"
    raw.to_zarr(url, zarr_format=zarr_format, mode="w")
    xr.testing.assert_identical(open_dataset(url).load().drop_attrs(), expected.drop_attrs())


def test_single_time_grib_keeps_a_time_dimension(shared_data):
    raw = _raw_grib(shared_data).isel(time=2)  # scalar time, valid_time and step
    ds = to_canonical(raw, member=0)
    assert ds["temperature"].dims == ("time", "level", "latitude", "longitude")
    np.testing.assert_array_equal(ds["time"].values, [raw["valid_time"].values])


@pytest.mark.parametrize("fraction", [0.6, 0.55, 0.6137])
def test_truncated_grib_is_reported_as_truncated(shared_data, tmp_path, fraction):
    """The ERA5 GRIB cut at 60 % opened with 3 of 4 times and NaN fields. Cuts between messages
    (0.6: fields missing; 0.55: cfgrib drops a variable) and inside one (0.6137) are all reported."""
    from vecfield.data.sources import verify_grib_file

    data = (shared_data / GRIB).read_bytes()
    assert verify_grib_file(shared_data / GRIB) == 160  # 10 members × 4 times × 2 levels × 2 variables
    cut = tmp_path / "cut.grib"
    cut.write_bytes(data[: int(fraction * len(data))])
    with pytest.raises(ValueError, match=r"is truncated or corrupt.*download it again"):
        open_dataset(cut, member=0)
