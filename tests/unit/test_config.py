"""Configuration: defaults, precedence, path resolution and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from careful_monitor.config import load_config
from careful_monitor.errors import ConfigError


def test_defaults_without_a_file(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(None, environ={})
    assert cfg.window.size == 1000 and cfg.policy.fdr == 0.01 and cfg.http.port == 9308
    assert cfg.store_url == f"sqlite:///{tmp_path / 'careful.db'}"


def test_precedence_flags_over_env_over_file(tmp_path: Path) -> None:
    f = tmp_path / "sub" / "c.yaml"
    f.parent.mkdir()
    f.write_text("store: {url: 'sqlite:///data/x.db'}\nhttp: {port: 1000}\nwindow: {size: 500, min_size: 100}\n")
    cfg = load_config(f, environ={})
    assert cfg.http.port == 1000 and cfg.window.size == 500
    assert cfg.store_url == f"sqlite:///{f.parent / 'data' / 'x.db'}"  # relative to the config's folder
    env = {"CAREFUL_MONITOR_HTTP__PORT": "2000", "CAREFUL_MONITOR_STORE__URL": "postgresql://u@h/db",
           "CAREFUL_MONITOR_KAFKA__TOPICS__EVENTS": "ev"}
    cfg = load_config(f, environ=env)
    assert cfg.http.port == 2000 and cfg.store_url == "postgresql://u@h/db" and cfg.kafka.topics.events == "ev"
    cfg = load_config(f, environ=env, overrides={"http": {"port": 3000}})
    assert cfg.http.port == 3000
    cfg = load_config(None, environ={"CAREFUL_MONITOR_CONFIG": str(f)})
    assert cfg.http.port == 1000


@pytest.mark.parametrize("text,key", [
    ("window: {size: 1000, min_sise: 3}", "window.min_sise"),
    ("policy: {fdr: 2}", "policy.fdr"),
    ("http: {port: nope}", "http.port"),
    ("window: {size: 100, min_size: 500}", "window"),
    ("models: {m: {anchor: a, training_mix: {b: 1}}}", "models.m.training_mix"),
    ("models: {m: {anchor: a, features: {amount: numeric}}}", "models.m.features"),
    ("- just a list", "(root)"),
])
def test_errors_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(f, environ={})
    assert err.value.key == key
    assert err.value.exit_code == 2 and "config error" in str(err.value)


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml", environ={})
    f = tmp_path / "bad.yaml"
    f.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(f, environ={})


leaf = st.none() | st.booleans() | st.integers(-5, 5000) | st.floats(allow_nan=False) | st.text(max_size=8)
sections = st.sampled_from(["window", "policy", "profile", "limits", "kafka", "store", "http", "models", "bogus"])
nested = st.dictionaries(sections, st.dictionaries(st.text(max_size=8), leaf, max_size=3) | leaf, max_size=4)


@settings(max_examples=200, deadline=None)
@given(nested)
def test_property_any_yaml_gives_a_config_or_a_config_error(tmp_path_factory, data) -> None:
    f = tmp_path_factory.mktemp("cfg") / "c.yaml"
    f.write_text(yaml.safe_dump(data))
    try:
        load_config(f, environ={})
    except ConfigError as err:
        assert err.key
