from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from appliance.config import ConfigError, load_config, settings_table

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_need_no_file() -> None:
    config = load_config(environ={})
    assert config.server.port == 8080
    assert config.server.host == "127.0.0.1"
    assert config.base_url == "http://127.0.0.1:8080"
    assert not config.https
    assert config.data_dir == Path("./data").resolve()


def test_file_then_environment_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "vitrine.toml"
    path.write_text('[server]\nport = 9000\nhost = "0.0.0.0"\n[limits]\nlogin_attempts = 3\n')
    config = load_config(path, environ={})
    assert (config.server.port, config.server.host, config.limits.login_attempts) == (
        9000,
        "0.0.0.0",
        3,
    )
    assert config.base_url == "http://127.0.0.1:9000"
    config = load_config(path, environ={"VITRINE_SERVER_PORT": "9100"})
    assert config.server.port == 9100
    config = load_config(
        path, environ={"VITRINE_SERVER_PORT": "9100"}, overrides={"server.port": "9200"}
    )
    assert config.server.port == 9200


def test_public_url_sets_https() -> None:
    config = load_config(environ={"VITRINE_SERVER_PUBLIC_URL": "https://live.shop.example"})
    assert config.https
    assert config.base_url == "https://live.shop.example"


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"VITRINE_SERVER_PORT": "eighty"}, "server.port: expected an integer, got 'eighty'"),
        ({"VITRINE_SERVER_PORT": "70000"}, "server.port: expected a port number"),
        ({"VITRINE_SERVER_PROXY_HEADERS": "maybe"}, "server.proxy_headers: expected true or false"),
        ({"VITRINE_SERVER_PUBLIC_URL": "shop.example"}, "server.public_url: expected an http://"),
        (
            {"VITRINE_LIMITS_MAX_IMAGE_BYTES": "0"},
            "limits.max_image_bytes: expected a number greater than 0",
        ),
    ],
)
def test_bad_environment_values_name_the_key(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(environ=env)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_file_values(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[server]\nport = "80"\n')
    with pytest.raises(ConfigError, match=r"server.port: expected an integer, got '80'"):
        load_config(path, environ={})
    path.write_text("[server]\nprot = 80\n")
    with pytest.raises(ConfigError, match=r"server.prot: unknown setting"):
        load_config(path, environ={})
    path.write_text("[sever]\nport = 80\n")
    with pytest.raises(ConfigError, match=r"sever: unknown section"):
        load_config(path, environ={})
    path.write_text("[server\n")
    with pytest.raises(ConfigError, match=r"not valid TOML"):
        load_config(path, environ={})
    with pytest.raises(ConfigError, match=r"no such file"):
        load_config(tmp_path / "missing.toml", environ={})


def test_example_file_documents_every_key_with_its_default() -> None:
    text = (ROOT / "config.example.toml").read_text()
    example = tomllib.loads(text)
    for info in settings_table():
        assert info.key in example.get(info.section, {}), (
            f"{info.name} missing from config.example.toml"
        )
        assert example[info.section][info.key] == info.default, f"{info.name} default differs"
        assert info.env in text, f"{info.env} not mentioned in config.example.toml"
    known = {(i.section, i.key) for i in settings_table()}
    for section, body in example.items():
        for key in body:
            assert (section, key) in known, f"{section}.{key} in the example is not a setting"
    # The example file itself loads.
    load_config(ROOT / "config.example.toml", environ={})


def test_operator_guide_documents_every_key() -> None:
    guide = (ROOT / "docs" / "operator.md").read_text()
    for info in settings_table():
        assert f"`{info.name}`" in guide, f"{info.name} missing from docs/operator.md"
