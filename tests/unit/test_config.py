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


def test_each_layer_wins_over_the_next(tmp_path: Path) -> None:
    """One key set in every layer: flag > environment > file > default; siblings merge, not replace."""
    f = tmp_path / "c.yaml"
    f.write_text("http: {port: 1000, host: 0.0.0.0}\nkafka: {topics: {events: file-ev, alerts: file-al}}\n")
    env = {"CAREFUL_MONITOR_HTTP__PORT": "2000", "CAREFUL_MONITOR_KAFKA__TOPICS__EVENTS": "env-ev"}
    assert load_config(None, environ={}).http.port == 9308
    assert load_config(f, environ={}).http.port == 1000
    assert load_config(None, environ=env).http.port == 2000
    cfg = load_config(f, environ=env)
    assert (cfg.http.port, cfg.http.host) == (2000, "0.0.0.0")
    assert (cfg.kafka.topics.events, cfg.kafka.topics.alerts, cfg.kafka.topics.dead_letters) == (
        "env-ev", "file-al", "careful.dead-letters")
    cfg = load_config(f, environ=env, overrides={"http": {"port": 3000}, "kafka": {"topics": {"events": "flag-ev"}}})
    assert (cfg.http.port, cfg.http.host, cfg.kafka.topics.events, cfg.kafka.topics.alerts) == (
        3000, "0.0.0.0", "flag-ev", "file-al")


def test_environment_values_are_validated_like_the_file(tmp_path: Path) -> None:
    cfg = load_config(None, environ={"CAREFUL_MONITOR_POLICY__MIN_EFFECT__KS": "0.2",
                                     "CAREFUL_MONITOR_KAFKA__SECURITY__SASL_MECHANISM": "null",
                                     "CAREFUL_MONITOR_KAFKA__SECURITY__USERNAME": "None",
                                     "CAREFUL_MONITOR_POLICY__DETECTOR": "none",  # a word the key allows stays a word
                                     "CAREFUL_MONITOR_STORE__AUTO_MIGRATE": "false"})
    assert cfg.policy.min_effect.ks == 0.2 and cfg.kafka.security.sasl_mechanism is None
    assert cfg.kafka.security.username is None and cfg.policy.detector == "none" and cfg.store.auto_migrate is False
    with pytest.raises(ConfigError) as err:
        load_config(None, environ={"CAREFUL_MONITOR_HTTP__PORT": "not-a-port"})
    assert err.value.key == "http.port" and "not-a-port" in err.value.problem
    with pytest.raises(ConfigError) as err:  # an unknown key in a known section, named as in a file
        load_config(None, environ={"CAREFUL_MONITOR_STORE__URLL": "x"})
    assert err.value.key == "store.urll"
    f = tmp_path / "c.yaml"
    f.write_text("window: {size: 500, min_size: 100}\n")
    # valid only together with the file's window.size
    assert load_config(f, environ={"CAREFUL_MONITOR_WINDOW__MIN_SIZE": "400"}).window.min_size == 400
    with pytest.raises(ConfigError) as err:
        load_config(f, environ={"CAREFUL_MONITOR_WINDOW__MIN_SIZE": "600"})
    assert err.value.key == "window" and "must not exceed size (500)" in err.value.problem


def test_non_config_variables_are_left_alone() -> None:
    cfg = load_config(None, environ={"CAREFUL_MONITOR_LOG_LEVEL": "debug", "CAREFUL_MONITOR_REGENERATE_GOLDEN": "1",
                                     "PATH": "/bin", "careful_monitor_store__url": "ignored: the prefix is upper-case"})
    assert cfg.store.url == "sqlite:///careful.db"


@pytest.mark.parametrize("var", ["CAREFUL_MONITOR_MODELS__TICKET_ROUTER__ANCHOR", "CAREFUL_MONITOR_MODELS",
                                 "CAREFUL_MONITOR_models__m__features"])
def test_models_from_the_environment_are_refused(var: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, environ={var: "x"})
    assert err.value.key == var and err.value.exit_code == 2
    assert "file only" in err.value.problem and "'models:' in the config file" in err.value.fix


@pytest.mark.parametrize("var,meant", [
    ("CAREFUL_MONITOR_STORE_URL", "CAREFUL_MONITOR_STORE__URL"),
    ("CAREFUL_MONITOR_KAFKA_BOOTSTRAP", "CAREFUL_MONITOR_KAFKA__BOOTSTRAP"),
    ("CAREFUL_MONITOR_DEAD_LETTERS_PATH", "CAREFUL_MONITOR_DEAD_LETTERS__PATH"),
    ("CAREFUL_MONITOR_KAFKA__TOPICS_EVENTS", "CAREFUL_MONITOR_KAFKA__TOPICS__EVENTS"),
    ("CAREFUL_MONITOR_KAFKA__SECURITY__PASSWORD__FILE", "CAREFUL_MONITOR_KAFKA__SECURITY__PASSWORD_FILE"),
    ("CAREFUL_MONITOR_STORE_NOPE", "CAREFUL_MONITOR_STORE__NOPE"),  # not a key either, but the nesting is the first fix
])
def test_a_single_underscore_after_a_section_is_refused_with_a_hint(var: str, meant: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, environ={var: "x"})
    assert err.value.key == var and err.value.fix == f"did you mean {meant}?"
    assert f"did you mean {meant}?" in str(err.value)


def test_unknown_sections_and_whole_sections_are_refused() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, environ={"CAREFUL_MONITOR_BOGUS__X": "1"})
    assert err.value.key == "CAREFUL_MONITOR_BOGUS__X" and "'bogus' is not a config section" in err.value.problem
    assert "WINDOW, POLICY, PROFILE, LIMITS, DEAD_LETTERS, KAFKA, STORE, HTTP" in err.value.fix
    for var in ("CAREFUL_MONITOR_STORE", "CAREFUL_MONITOR_KAFKA__TOPICS"):
        with pytest.raises(ConfigError) as err:  # a section is not a key, not even as JSON
            load_config(None, environ={var: '{"url": "x"}'})
        assert err.value.key == var and f"{var}__<KEY>" in err.value.fix


names = st.lists(st.sampled_from(["STORE", "URL", "KAFKA", "TOPICS", "EVENTS", "MODELS", "HTTP", "PORT", "DEAD",
                                  "LETTERS", "PATH", "BOGUS", "LOG", "LEVEL", "CONFIG", "", "x"]), max_size=4)
env_var = st.tuples(names, st.lists(st.sampled_from(["_", "__", "___"]), min_size=3, max_size=3)).map(
    lambda t: "CAREFUL_MONITOR_" + "".join(p + s for p, s in zip(t[0], t[1], strict=False)).rstrip("_"))
env_value = st.sampled_from(["", "null", "None", "1", "70000", "x", "{}", '{"url": "y"}', "[1]"]) | st.text(max_size=8)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(env_var, env_value, max_size=4))
def test_property_any_environment_gives_a_config_or_a_config_error(environ) -> None:
    environ.pop("CAREFUL_MONITOR_CONFIG", None)  # names a file; its errors are covered above
    try:
        load_config(None, environ=environ)
    except ConfigError as err:
        assert err.key
