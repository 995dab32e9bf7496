import numpy as np
import pytest
import xarray as xr

from vecfield.data.forcings import (
    SOLAR_CONSTANT,
    add_forcings,
    day_progress,
    instantaneous_solar_flux,
    toa_incident_solar_radiation,
    year_progress,
)


def _daily_mean_insolation(lat_deg: float, declination_deg: float, distance_au: float) -> float:
    """Closed-form daily-mean TOA insolation (W m⁻²) for a fixed declination and distance."""
    phi, dec = np.deg2rad(lat_deg), np.deg2rad(declination_deg)
    h0 = np.arccos(np.clip(-np.tan(phi) * np.tan(dec), -1.0, 1.0))
    return (
        SOLAR_CONSTANT
        / np.pi
        / distance_au**2
        * (h0 * np.sin(phi) * np.sin(dec) + np.cos(phi) * np.cos(dec) * np.sin(h0))
    )


@pytest.mark.parametrize(
    ("day", "declination", "distance"),
    [
        ("2020-03-20", 0.0, 0.9961),  # March equinox (perihelion side of the orbit)
        ("2020-06-21", 23.44, 1.0163),  # June solstice, near aphelion
        ("2020-12-21", -23.44, 0.9838),  # December solstice, near perihelion
    ],
)
def test_daily_mean_insolation_matches_textbook_values(day: str, declination: float, distance: float) -> None:
    """24 hourly accumulations sum to the closed-form daily insolation within 1 %."""
    times = np.datetime64(day) + np.arange(1, 25) * np.timedelta64(1, "h")
    latitude = np.array([-60.0, -30.0, 0.0, 30.0, 60.0])
    longitude = np.array([0.0, 90.0, 180.0, 270.0])
    daily = toa_incident_solar_radiation(times, latitude, longitude).sum(axis=0) / 86_400.0
    for i, lat in enumerate(latitude):
        expected = _daily_mean_insolation(lat, declination, distance)
        # longitude does not change a daily mean; polar night gives zero on both sides
        np.testing.assert_allclose(daily[i], expected, rtol=0.01, atol=1.0)


def test_equator_equinox_and_pole_solstice_known_numbers() -> None:
    """Daily means: ≈ S₀/π at the equator at equinox; ≈ 524 W m⁻² at the North Pole in June."""
    equinox = np.datetime64("2020-03-20") + np.arange(1, 25) * np.timedelta64(1, "h")
    solstice = np.datetime64("2020-06-21") + np.arange(1, 25) * np.timedelta64(1, "h")
    equator = toa_incident_solar_radiation(equinox, np.array([0.0]), np.array([0.0])).sum() / 86_400
    pole = toa_incident_solar_radiation(solstice, np.array([90.0]), np.array([0.0])).sum() / 86_400
    assert equator == pytest.approx(SOLAR_CONSTANT / np.pi / 0.9961**2, rel=0.01)
    assert pole == pytest.approx(524.0, rel=0.01)


def test_accumulation_covers_the_hour_before_the_valid_time() -> None:
    """ERA5's tisr convention: J m⁻² accumulated over (t − 1 h, t]; compare with a 1-second integral."""
    t = np.array([np.datetime64("2021-05-04T07:00")])
    lat, lon = np.linspace(-80, 80, 9), np.linspace(0, 350, 8)
    fine = np.datetime64("2021-05-04T06:00") + (np.arange(3600) + 0.5).astype("timedelta64[s]")
    reference = instantaneous_solar_flux(fine, lat, lon).sum(axis=0)  # 1-s steps → J m⁻²
    np.testing.assert_allclose(toa_incident_solar_radiation(t, lat, lon)[0], reference, rtol=2e-3, atol=2e3)
    # shifting the window forward by an hour gives a different field, so the window really is "previous hour"
    later = toa_incident_solar_radiation(t + np.timedelta64(1, "h"), lat, lon)[0]
    assert np.abs(later - reference).max() > 1e5


def test_progress_features() -> None:
    t = np.array(["1970-01-01T00:00", "1970-01-01T12:00"], dtype="datetime64[ns]")
    np.testing.assert_allclose(year_progress(t), [0.0, 0.5 / 365.24219])
    np.testing.assert_allclose(
        day_progress(t, np.array([0.0, 90.0, 270.0])), [[0, 0.25, 0.75], [0.5, 0.75, 0.25]]
    )
    with pytest.raises(TypeError, match="datetime64"):
        year_progress(np.array([1.0, 2.0]))


def test_add_forcings_replaces_and_requires_canonical_coords() -> None:
    ds = xr.Dataset(
        {"toa_incident_solar_radiation": (("time", "latitude", "longitude"), np.full((2, 3, 4), -1.0))},
        coords={
            "time": np.array(["2020-01-01T00", "2020-01-01T06"], dtype="datetime64[ns]"),
            "latitude": [-45.0, 0.0, 45.0],
            "longitude": [0.0, 90.0, 180.0, 270.0],
        },
    )
    out = add_forcings(ds)
    assert float(out["toa_incident_solar_radiation"].min()) >= 0.0
    assert set(out["day_progress_sin"].dims) == {"time", "longitude"}
    with pytest.raises(ValueError, match="canonical"):
        add_forcings(ds.rename(latitude="lat"))
