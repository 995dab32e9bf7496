"""The variable catalogue: aliases, units spellings, roles and helpful errors."""

import pytest

from vecfield.data.catalogue import CATALOGUE, check_units, lookup, units_match


def test_aliases_resolve_to_canonical_entries():
    assert lookup("t2m") is lookup("2t") is CATALOGUE["2m_temperature"]
    assert lookup("tisr").role == "forcing" and lookup("lsm").role == "static"
    assert lookup("z").pressure_level and lookup("tp").role == "accumulation"
    assert {v.role for v in CATALOGUE.values()} == {"state", "forcing", "static", "accumulation"}


def test_unknown_name_suggests_close_matches():
    with pytest.raises(ValueError, match=r"'2m_temprature'; did you mean '2m_temperature'"):
        lookup("2m_temprature")


@pytest.mark.parametrize(
    ("found", "expected", "same"),
    [
        ("m**2 s**-2", "m2 s-2", True),
        ("m^2/s^2", "m**2 s**-2", True),
        ("(0 - 1)", "1", True),
        ("J m**-2", "J/m2", True),
        ("kg kg**-1", "kg/kg", True),
        ("W m**-2", "J m**-2", False),
        ("m", "Pa", False),
    ],
)
def test_unit_spellings(found, expected, same):
    assert units_match(found, expected) is same


def test_wrong_units_name_the_expected_ones():
    check_units("temperature", "K")
    check_units("temperature", None)  # nothing to check
    with pytest.raises(ValueError, match=r"'temperature' has units 'degC' but the catalogue expects 'K'"):
        check_units("temperature", "degC")
    with pytest.raises(ValueError, match="geopotential height"):
        check_units("geopotential_at_surface", "gpm")
