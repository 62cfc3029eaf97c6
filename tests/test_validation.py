import pytest

from tfposenc.validation import env_switch


@pytest.mark.parametrize(
    "value, on",
    [
        (None, True),
        ("1", True),
        ("yes", True),
        ("", True),
        ("0", False),
        (" Off ", False),
        ("FALSE", False),
        ("no", False),
    ],
)
def test_env_switch_is_on_unless_set_to_an_off_value(monkeypatch, value, on):
    name = "TFPOSENC_TEST_SWITCH"
    if value is None:
        monkeypatch.delenv(name, raising=False)
    else:
        monkeypatch.setenv(name, value)
    assert env_switch(name) is on
