from __future__ import annotations

import string

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nimble_oke.config_file import parse_yaml
from nimble_oke.domain.config import NimbleConfig, build_config, env_overrides
from nimble_oke.errors import ConfigError


def test_defaults_are_the_sim_target_and_one_size_key() -> None:
    cfg = build_config()
    assert cfg.target == "sim"
    assert cfg.gpu_pool.shape == "VM.GPU.A10.1"
    assert cfg.cache.size_gb == 200
    # correction C1: the cache has exactly one size key
    size_keys = [k for k in type(cfg.cache).model_fields if "size" in k]
    assert size_keys == ["size_gb"]


def test_precedence_flag_over_env_over_file() -> None:
    file = {"gpu_pool": {"shape": "VM.GPU.A10.2", "nodes": 2}, "budget": {"max_usd": 20}}
    env = {"NIMBLE_GPU_POOL_NODES": "3", "NIMBLE_BUDGET_MAX_USD": "30"}
    flags = {"budget.max_usd": 40.0, "gpu_pool.shape": None}
    cfg = build_config(file, env, flags)
    assert cfg.gpu_pool.shape == "VM.GPU.A10.2"  # file (flag not given)
    assert cfg.gpu_pool.nodes == 3  # env beats file
    assert cfg.budget.max_usd == 40.0  # flag beats env


def test_env_values_parse_as_yaml_scalars_and_lists() -> None:
    env = {
        "NIMBLE_GPU_POOL_PREEMPTIBLE": "true",
        "NIMBLE_GPU_POOL_AVAILABILITY_DOMAINS": "[AD-2, AD-3]",
        "NIMBLE_TARGET": "oci",
        "NIMBLE_HOME": "/ignored",
    }
    cfg = build_config({}, env)
    assert cfg.gpu_pool.preemptible is True
    assert cfg.gpu_pool.availability_domains == ["AD-2", "AD-3"]
    assert cfg.target == "oci"


def test_env_typo_in_a_known_section_is_an_error() -> None:
    with pytest.raises(ConfigError, match="NIMBLE_GPU_POOL_SHAPEE.*gpu_pool has no field 'shapee'"):
        env_overrides({"NIMBLE_GPU_POOL_SHAPEE": "x"})


def test_error_names_path_value_and_allowed() -> None:
    with pytest.raises(ConfigError) as info:
        build_config({"target": "aws"}, source="nimble.yaml")
    text = str(info.value)
    assert "nimble.yaml: target = 'aws'" in text
    assert "'sim' or 'oci'" in text


def test_unknown_key_lists_allowed_keys() -> None:
    with pytest.raises(ConfigError) as info:
        build_config({"cache": {"size": "200Gi"}})
    text = str(info.value)
    assert "unknown key 'cache.size'" in text
    assert "size_gb" in text


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        build_config({"gpu_pool": {"nodes": -1, "shape": "A10"}, "nim": {"image_tag": "latest"}})
    lines = str(info.value).splitlines()
    assert len(lines) == 3
    assert any("gpu_pool.nodes = -1" in line for line in lines)
    assert any("gpu_pool.shape = 'A10'" in line and "VM.GPU.A10.1" in line for line in lines)
    assert any("nim.image_tag" in line and "latest" in line for line in lines)


def test_cross_field_rules() -> None:
    with pytest.raises(ConfigError, match="object-storage needs cache.bucket and cache.namespace"):
        build_config({"cache": {"mode": "object-storage"}})
    with pytest.raises(ConfigError, match="lb_min_mbps must not exceed"):
        build_config({"service": {"lb_min_mbps": 100, "lb_max_mbps": 10}})
    with pytest.raises(ConfigError, match="vpus_per_gb = 15"):
        build_config({"cache": {"vpus_per_gb": 15}})
    with pytest.raises(ConfigError, match="reusing a VCN needs"):
        build_config({"cluster": {"vcn_id": "ocid1.vcn.oc1.iad.abc"}})


def test_top_level_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        build_config(["a", "b"], source="f.yaml")


def test_yaml_syntax_error_has_line_number() -> None:
    with pytest.raises(ConfigError, match="line 2"):
        parse_yaml("target: sim\n  bad: [unclosed\n", "nimble.yaml")


def test_schema_rejects_unknown_keys() -> None:
    schema = NimbleConfig.model_json_schema()
    assert schema["additionalProperties"] is False
    assert "target" in schema["properties"]


# --- property test: garbage in, ConfigError (never a traceback) out --------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
_keys = st.one_of(
    st.sampled_from(
        ["target", "gpu_pool", "cache", "nim", "budget", "shape", "nodes", "size_gb", "mode"]
    ),
    st.text(alphabet=string.ascii_letters + "_", min_size=1, max_size=12),
    st.integers(),
)
_docs = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_keys, inner, max_size=5)),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=_docs)
def test_random_documents_give_config_error_or_valid_config(doc: object) -> None:
    try:
        cfg = build_config(doc)
    except ConfigError as exc:
        assert str(exc)
    else:
        assert isinstance(cfg, NimbleConfig)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200))
def test_random_text_as_yaml_gives_config_error_or_config(text: str) -> None:
    try:
        cfg = build_config(parse_yaml(text, "fuzz.yaml"), source="fuzz.yaml")
    except ConfigError:
        pass
    else:
        assert isinstance(cfg, NimbleConfig)


def test_yaml_dump_of_valid_config_round_trips() -> None:
    cfg = build_config({"gpu_pool": {"nodes": 2}})
    again = build_config(yaml.safe_load(yaml.safe_dump(cfg.model_dump(mode="json"))))
    assert again == cfg
