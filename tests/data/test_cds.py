"""CDS download with an injected fake client that writes real netCDF files in the new-CDS layout."""

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from vecfield.config import load_config
from vecfield.data.build import build_dataset
from vecfield.data.cds import check_credentials, download, month_requests
from vecfield.data.config import DatasetConfig
from vecfield.data.sources import open_dataset

SECRET = "abcd1234-very-secret-token"
SHORT = {
    "geopotential": "z",
    "temperature": "t",
    "2m_temperature": "t2m",
    "total_precipitation": "tp",
    "land_sea_mask": "lsm",
}
UNITS = {"z": "m**2 s**-2", "t": "K", "t2m": "K", "tp": "m", "lsm": "(0 - 1)"}


def _value(name: str, hours: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """A known field: distinct per variable, hour, latitude and longitude."""
    offset = {"z": 5e4, "t": 250.0, "t2m": 280.0, "tp": 0.0, "lsm": 0.0}[name]
    scale = {"z": 10.0, "t": 0.1, "t2m": 0.1, "tp": 1e-6, "lsm": 0.0}[name]
    return (
        offset
        + scale * (hours[:, None, None] % 97 + lat[None, :, None] / 90 + lon[None, None, :] / 360)
        + (lat[None, :, None] > 0) * (name == "lsm")
    )


class FakeCDS:
    """Writes what the new CDS returns: valid_time, pressure_level, number, expver, latitude 90 → −90."""

    key = SECRET

    def __init__(self, failures: int = 0) -> None:
        self.calls: list[str] = []
        self.failures = failures

    def retrieve(self, name: str, request: dict, target: str) -> None:
        self.calls.append(target)
        if self.failures:
            self.failures -= 1
            raise ConnectionError(f"503 from CDS for key {SECRET}")
        year, month = int(request["year"][0]), int(request["month"][0])
        days, hours = [int(d) for d in request["day"]], [int(t[:2]) for t in request["time"]]
        time = np.array(
            [np.datetime64(f"{year}-{month:02d}-{d:02d}T{h:02d}", "ns") for d in days for h in hours]
        )
        since_2020 = (time - np.datetime64("2020-01-01T00", "ns")) // np.timedelta64(1, "h")
        lat, lon = np.linspace(90, -90, 7), np.arange(0, 360, 30.0)
        coords = {
            "valid_time": time,
            "latitude": lat,
            "longitude": lon,
            "number": 0,
            "expver": ("valid_time", np.full(time.size, "0001")),
        }
        data = {}
        for variable in request["variable"]:
            short = SHORT[variable]
            if variable == "geopotential" and "pressure_level" not in request:
                continue  # keep the fake small: no surface geopotential
            field = _value(short, since_2020, lat, lon)
            if "pressure_level" in request:
                levels = [int(p) for p in request["pressure_level"]]
                coords["pressure_level"] = np.array(levels, dtype=float)
                field = np.stack([field * (1 + i) for i in range(len(levels))], axis=1)
                data[short] = (
                    ("valid_time", "pressure_level", "latitude", "longitude"),
                    field.astype(np.float32),
                    {"units": UNITS[short]},
                )
            else:
                data[short] = (
                    ("valid_time", "latitude", "longitude"),
                    field.astype(np.float32),
                    {"units": UNITS[short]},
                )
        xr.Dataset(data, coords=coords).to_netcdf(target, engine="netcdf4")


def _requests(folder):
    return month_requests(
        "2020-01",
        "2020-02",
        folder,
        pressure_variables=["geopotential", "temperature"],
        single_variables=["2m_temperature", "total_precipitation", "land_sea_mask"],
        levels=[500, 850],
    )


def test_month_requests_use_the_new_cds_syntax(tmp_path):
    requests = _requests(tmp_path)
    assert [r.target.name for r in requests] == [
        "era5_pressure_levels_202001.nc",
        "era5_single_levels_202001.nc",
        "era5_pressure_levels_202002.nc",
        "era5_single_levels_202002.nc",
    ]
    pressure, single = requests[2].request, requests[3].request
    assert requests[2].dataset == "reanalysis-era5-pressure-levels"
    assert requests[3].dataset == "reanalysis-era5-single-levels"
    assert pressure["data_format"] == "netcdf" and pressure["download_format"] == "unarchived"
    assert (
        len(pressure["day"]) == 29
        and pressure["time"][:2] == ["00:00", "01:00"]
        and len(single["time"]) == 24
    )
    assert pressure["pressure_level"] == ["500", "850"] and "pressure_level" not in single
    with pytest.raises(ValueError, match="YYYY-MM"):
        month_requests("2020", "2020-02", tmp_path)


def test_missing_credentials_explain_how_to_create_them(tmp_path, monkeypatch):
    monkeypatch.delenv("CDSAPI_URL", raising=False)
    monkeypatch.delenv("CDSAPI_KEY", raising=False)
    rc = tmp_path / ".cdsapirc"
    monkeypatch.setenv("CDSAPI_RC", str(rc))
    with pytest.raises(
        ValueError, match=r"(?s)no CDS credentials.*url: https://cds.climate.copernicus.eu/api"
    ):
        check_credentials()
    rc.write_text(f"url: https://cds.climate.copernicus.eu/api\nkey: {SECRET}\n")
    check_credentials()
    rc.write_text("url: https://cds.climate.copernicus.eu/api\n")
    with pytest.raises(ValueError, match="must contain both") as error:
        check_credentials()
    assert SECRET not in str(error.value)


def test_download_retries_resumes_and_never_logs_the_key(tmp_path):
    logs: list[str] = []
    waits: list[float] = []
    client = FakeCDS(failures=2)
    paths = download(_requests(tmp_path), client=client, sleep=waits.append, log=logs.append)
    assert waits == [30.0, 60.0]  # exponential backoff
    assert all(p.is_file() for p in paths) and not list(tmp_path.glob(".*.tmp-*"))
    assert all(SECRET not in line for line in logs) and any("***" in line for line in logs)
    # resume: complete files are verified and skipped; a truncated one is fetched again
    broken = paths[3]
    broken.write_bytes(broken.read_bytes()[:2000])
    client.calls.clear()
    download(_requests(tmp_path), client=client, sleep=waits.append, log=logs.append)
    (fetched,) = client.calls  # only the truncated file, to a temporary beside it
    assert Path(fetched).parent == broken.parent and Path(fetched).name.startswith(f".{broken.name}.tmp-")
    with pytest.raises(RuntimeError, match=r"failed 2 times.*run the download again") as error:
        paths[0].unlink()
        download(
            _requests(tmp_path)[:1],
            client=FakeCDS(failures=5),
            retries=1,
            sleep=waits.append,
            log=logs.append,
        )
    assert SECRET not in str(error.value)


def test_downloaded_files_open_canonical_and_build(tmp_path):
    download(_requests(tmp_path / "cds")[:2], client=FakeCDS(), sleep=lambda s: None, log=lambda s: None)
    pressure = open_dataset(tmp_path / "cds" / "era5_pressure_levels_202001.nc")
    assert pressure["geopotential"].dims == ("time", "level", "latitude", "longitude")
    assert pressure["level"].values.tolist() == [500, 850]
    hours = np.array([30])
    expected = _value("z", hours, np.array([60.0]), np.array([90.0]))[0, 0, 0] * 2  # level index 1 = 850
    got = pressure["geopotential"].sel(time="2020-01-02T06", level=850, latitude=60.0, longitude=90.0)
    assert float(got) == pytest.approx(expected, rel=1e-6)
    # the limited-area preset, pointed at these files (the fake ignores `area`, so crop here)
    cds = tmp_path / "cds"
    overrides = [
        f"dataset.output={tmp_path / 'europe.zarr'}",
        f"dataset.sources=[{{kind: netcdf, path: '{cds}/era5_pressure_levels_*.nc'}}, "
        f"{{kind: netcdf, path: '{cds}/era5_single_levels_*.nc'}}]",
        "dataset.variables=[geopotential, 2m_temperature, total_precipitation_6hr]",
        "dataset.static=[land_sea_mask]",
        "dataset.time={start: '2020-01-01T06', end: '2020-01-02T18'}",
        "dataset.splits={train: ['2020-01-01T06', '2020-01-02T06'], val: ['2020-01-02T12', '2020-01-02T18']}",
        "dataset.grid.area=[90, -60, -30, 60]",
    ]
    config = load_config("configs/era5_regional_europe.yaml", {"dataset": DatasetConfig}, overrides)[
        "dataset"
    ]
    ds = xr.open_zarr(build_dataset(config, progress=False))
    hourly = _value("tp", np.arange(30 - 5, 31), np.array([-30.0]), np.array([300.0]))[:, 0, 0]
    assert ds["longitude"].values.tolist() == [300.0, 330.0, 0.0, 30.0, 60.0]  # west → east across 0°
    assert ds["latitude"].values.tolist() == [-30.0, 0.0, 30.0, 60.0, 90.0]
    assert ds["geopotential"].sizes["level"] == 2  # the preset's levels 500 and 850
    tp6 = ds["total_precipitation_6hr"].sel(time="2020-01-02T06", latitude=-30.0, longitude=300.0)
    assert float(tp6) == pytest.approx(hourly.astype(np.float32).sum(), rel=1e-5)
    assert float(ds["land_sea_mask"].sel(latitude=60.0, longitude=0.0)) == 1.0


def test_pipeline_without_credentials_says_how_to_create_them(tmp_path, monkeypatch):
    from pipelines.download_era5 import main

    monkeypatch.delenv("CDSAPI_URL", raising=False)
    monkeypatch.delenv("CDSAPI_KEY", raising=False)
    monkeypatch.setenv("CDSAPI_RC", str(tmp_path / "missing-rc"))
    with pytest.raises(ValueError, match="Personal Access Token"):
        main(["--start", "2020-01", "--end", "2020-01", "--output", str(tmp_path / "out")])
