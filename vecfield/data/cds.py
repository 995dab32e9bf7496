"""Download ERA5 from the Copernicus Climate Data Store (CDS) with cdsapi, month by month.

One request per month and dataset (``reanalysis-era5-pressure-levels`` and
``reanalysis-era5-single-levels``), in the current CDS syntax (``data_format: netcdf``,
``download_format: unarchived``). Each file is downloaded to ``<name>.part`` and renamed when it
opens as netCDF; files already present are checked and skipped (resume); a file that no longer
opens is downloaded again. Failed requests are retried with exponential backoff. The CDS key is
never printed or logged.
"""

import calendar
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from vecfield.files import atomic_path

PRESSURE_LEVEL_DATASET = "reanalysis-era5-pressure-levels"
SINGLE_LEVEL_DATASET = "reanalysis-era5-single-levels"
PRESSURE_VARIABLES = (
    "geopotential",
    "temperature",
    "u_component_of_wind",
    "v_component_of_wind",
    "specific_humidity",
    "vertical_velocity",
)
SINGLE_VARIABLES = (
    "2m_temperature",
    "10m_u_component_of_wind",
    "10m_v_component_of_wind",
    "mean_sea_level_pressure",
    "total_precipitation",
    "land_sea_mask",
    "geopotential",
)
WB13_LEVELS = (50, 100, 150, 200, 250, 300, 400, 500, 600, 700, 850, 925, 1000)

CREDENTIALS_HELP = """no CDS credentials found. To download ERA5:
  1. register at https://cds.climate.copernicus.eu and accept the ERA5 licences (on each dataset's
     'Download' page: reanalysis-era5-single-levels and reanalysis-era5-pressure-levels);
  2. copy your Personal Access Token from your CDS profile page;
  3. create {path} with these two lines (no 'UID:' prefix):
       url: https://cds.climate.copernicus.eu/api
       key: <your personal access token>
     (or set the environment variables CDSAPI_URL and CDSAPI_KEY)."""


class RetrieveClient(Protocol):
    """What the downloader needs from ``cdsapi.Client``."""

    def retrieve(self, name: str, request: dict[str, Any], target: str) -> Any: ...


@dataclass(frozen=True)
class MonthRequest:
    """One CDS request: ``dataset`` with ``request`` written to ``target``."""

    dataset: str
    request: dict[str, Any]
    target: Path


def _months(start: str, end: str) -> list[tuple[int, int]]:
    try:
        y0, m0 = (int(x) for x in start.split("-"))
        y1, m1 = (int(x) for x in end.split("-"))
    except ValueError as error:
        raise ValueError(f"months must look like YYYY-MM, got start={start!r}, end={end!r}") from error
    if not (1 <= m0 <= 12 and 1 <= m1 <= 12) or (y1, m1) < (y0, m0):
        raise ValueError(f"need valid months with start ≤ end, got {start} … {end}")
    return [(y, m) for y in range(y0, y1 + 1) for m in range(1, 13) if (y0, m0) <= (y, m) <= (y1, m1)]


def month_requests(
    start: str,
    end: str,
    output: str | Path,
    pressure_variables: Sequence[str] = PRESSURE_VARIABLES,
    single_variables: Sequence[str] = SINGLE_VARIABLES,
    levels: Sequence[int] = WB13_LEVELS,
    hours: Sequence[int] = tuple(range(24)),
    area: Sequence[float] | None = None,
    grid: float | None = None,
) -> list[MonthRequest]:
    """The requests for every month from ``start`` to ``end`` (``YYYY-MM``, inclusive).

    Files: ``<output>/era5_pressure_levels_YYYYMM.nc`` and ``<output>/era5_single_levels_YYYYMM.nc``.
    hours: UTC hours to request (all 24 by default: 6-hour precipitation sums hourly values).
    area: [north, west, south, east] in degrees; grid: spacing in degrees (CDS interpolates).
    """
    bad_hours = [h for h in hours if not 0 <= h <= 23]
    if bad_hours:
        raise ValueError(f"hours must be in 0…23, got {bad_hours}")
    output = Path(output)
    requests = []
    for year, month in _months(start, end):
        common: dict[str, Any] = {
            "product_type": ["reanalysis"],
            "year": [f"{year}"],
            "month": [f"{month:02d}"],
            "day": [f"{d:02d}" for d in range(1, calendar.monthrange(year, month)[1] + 1)],
            "time": [f"{h:02d}:00" for h in sorted(hours)],
            "data_format": "netcdf",
            "download_format": "unarchived",
        }
        if area is not None:
            common["area"] = [float(a) for a in area]
        if grid is not None:
            common["grid"] = [float(grid), float(grid)]
        if pressure_variables:
            request = {
                **common,
                "variable": list(pressure_variables),
                "pressure_level": [str(lev) for lev in levels],
            }
            requests.append(
                MonthRequest(
                    PRESSURE_LEVEL_DATASET, request, output / f"era5_pressure_levels_{year}{month:02d}.nc"
                )
            )
        if single_variables:
            requests.append(
                MonthRequest(
                    SINGLE_LEVEL_DATASET,
                    {**common, "variable": list(single_variables)},
                    output / f"era5_single_levels_{year}{month:02d}.nc",
                )
            )
    return requests


def check_credentials(rc_path: str | Path | None = None) -> None:
    """ValueError with setup instructions when neither ``~/.cdsapirc`` (or CDSAPI_RC) nor the
    CDSAPI_URL/CDSAPI_KEY environment variables provide credentials. The key is never echoed."""
    if os.environ.get("CDSAPI_URL") and os.environ.get("CDSAPI_KEY"):
        return
    path = Path(rc_path or os.environ.get("CDSAPI_RC", str(Path.home() / ".cdsapirc"))).expanduser()
    if not path.is_file():
        raise ValueError(CREDENTIALS_HELP.format(path=path))
    keys = {line.split(":", 1)[0].strip() for line in path.read_text().splitlines() if ":" in line}
    if not {"url", "key"} <= keys:
        raise ValueError(
            f"{path} must contain both 'url:' and 'key:' lines.\n" + CREDENTIALS_HELP.format(path=path)
        )


def verify_netcdf(path: Path) -> bool:
    """True when ``path`` opens as netCDF and its data can be read to the end."""
    from vecfield.data.sources import SOURCE_OPENERS

    try:
        SOURCE_OPENERS["netcdf"](str(path))
    except ValueError:
        return False
    return True


def _redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def download(
    requests: Sequence[MonthRequest],
    client: RetrieveClient | None = None,
    retries: int = 4,
    backoff_seconds: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
    log: Callable[[str], None] = print,
) -> list[Path]:
    """Run ``requests`` (skipping complete files); returns the target paths.

    client: anything with ``retrieve(name, request, target)``; default ``cdsapi.Client()`` after
    :func:`check_credentials`. A request failing ``retries + 1`` times raises RuntimeError; the
    files already downloaded stay, so running again resumes.
    """
    if client is None:
        check_credentials()
        import cdsapi

        client = cdsapi.Client(quiet=True, progress=False)
    secrets = [str(getattr(client, "key", "") or ""), os.environ.get("CDSAPI_KEY", "")]
    done = []
    for item in requests:
        item.target.parent.mkdir(parents=True, exist_ok=True)
        if item.target.exists():
            if verify_netcdf(item.target):
                log(f"skip {item.target.name}: already complete")
                done.append(item.target)
                continue
            log(f"{item.target.name} is incomplete or corrupt: downloading it again")
        for attempt in range(retries + 1):
            try:
                log(f"request {item.dataset} → {item.target.name} (attempt {attempt + 1})")
                with atomic_path(item.target) as partial:  # removed again if anything below fails
                    client.retrieve(item.dataset, item.request, str(partial))
                    if not verify_netcdf(partial):
                        raise OSError(f"the downloaded {item.target.name} does not open as netCDF")
                break
            except Exception as error:  # network, CDS queue and file errors are all retried
                message = _redact(f"{type(error).__name__}: {error}", secrets)
                if attempt == retries:
                    raise RuntimeError(
                        f"{item.target.name} failed {retries + 1} times (last: {message}); run the "
                        "download again later: finished months are kept"
                    ) from None
                wait = backoff_seconds * 2**attempt
                log(f"attempt {attempt + 1} failed ({message}); retrying in {wait:.0f} s")
                sleep(wait)
        done.append(item.target)
    return done
