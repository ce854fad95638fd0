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


# --- names, CIDRs and secrets refused before anything happens (issue #16 item 7) -------


@pytest.mark.parametrize(
    ("section", "key", "value", "needle"),
    [
        ("nim", "namespace", "../../kube-system", "DNS-1123 label"),
        ("nim", "namespace", "KUBE-SYSTEM", "DNS-1123 label"),
        ("nim", "namespace", "kube-system", "belong to the cluster"),
        ("nim", "namespace", "default", "belong to the cluster"),
        ("nim", "namespace", "a" * 64, "1-63"),
        ("cluster", "name", "UPPER", "a session name has 1-40 lowercase"),
        ("cluster", "name", "../x", "a session name"),
        ("cluster", "api_allowed_cidr", "999.1.1.1/99", "expected an IPv4 CIDR"),
        ("cluster", "api_allowed_cidr", "10.0.0.1/8", "did you mean 10.0.0.0/8"),
        ("cluster", "api_allowed_cidr", "203.0.113.7", "203.0.113.7/32"),
        ("cluster", "api_allowed_cidr", "2001:db8::/32", "no IPv6"),
        ("cluster", "vcn_id", "../vcn", "expected an OCID"),
        ("cache", "storage_class", "OCI_BV", "DNS-1123 subdomain"),
        ("cache", "bucket", "a/b", "bucket name"),
        ("cache", "prefix", "../models", "no '..'"),
        ("nim", "image_repository", "nvcr.io/NIM/Bad Name", "image repository"),
        ("nim", "image_tag", "1.0;rm", "image tag"),
        ("nim", "served_model_name", "two\nlines", "one line"),
        ("nim", "ngc_api_key_env", "NGC API KEY", "environment variable name"),
        ("monitoring", "otel_endpoint", "ftp://collector", "http(s) URL"),
    ],
)
def test_names_and_cidrs_follow_kubernetes_and_oci_rules(
    section: str, key: str, value: str, needle: str
) -> None:
    with pytest.raises(ConfigError) as info:
        build_config({section: {key: value}}, source="f.yaml")
    text = str(info.value)
    assert f"f.yaml: {section}.{key}" in text and needle in text
    assert len(text.splitlines()) == 1


@pytest.mark.parametrize(
    ("key", "values", "needle"),
    [
        ("allowed_ingress_cidrs", ["10.0.0.0/33"], "security.allowed_ingress_cidrs.0"),
        ("allowed_ingress_cidrs", ["10.0.0.0/8", "10.0.0.0/8"], "lists '10.0.0.0/8' twice"),
        ("allowed_ingress_namespaces", ["ok", "Not_OK"], "security.allowed_ingress_namespaces.1"),
    ],
)
def test_every_list_item_is_checked(key: str, values: list[str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        build_config({"security": {key: values}})


def test_good_names_and_cidrs_pass() -> None:
    cfg = build_config(
        {
            "nim": {"namespace": "team-a", "ngc_api_key_env": "MY_NGC_KEY"},
            "cluster": {"api_allowed_cidr": "203.0.113.0/24"},
            "security": {"allowed_ingress_cidrs": ["10.0.0.0/8", "192.168.1.7/32"]},
            "cache": {"storage_class": "oci-bv.fast", "prefix": "models/llama"},
            "monitoring": {"otel_endpoint": "http://otel-collector.monitoring:4318"},
        }
    )
    assert cfg.nim.namespace == "team-a" and cfg.security.allowed_ingress_cidrs[1].endswith("/32")


def test_lists_are_bounded() -> None:
    with pytest.raises(
        ConfigError, match="availability_domains lists 500,000 items; at most 3 are allowed"
    ):
        build_config({"gpu_pool": {"availability_domains": [f"AD-{i}" for i in range(500_000)]}})
    with pytest.raises(ConfigError, match="lists 65 items; at most 64 are allowed"):
        build_config({"security": {"allowed_ingress_namespaces": [f"n{i}" for i in range(65)]}})
    with pytest.raises(ConfigError, match="at most 1024 characters"):
        build_config({"nim": {"served_model_name": "x" * 5000}})


def test_a_key_pasted_as_the_variable_name_is_refused_and_never_echoed() -> None:
    from nimble_oke.ngc_keys import throwaway_key

    key = throwaway_key()
    legacy = "Q" * 20 + "w" * 44  # the older 64-character key format
    for value in (key, legacy):
        with pytest.raises(ConfigError) as info:
            build_config({"nim": {"ngc_api_key_env": value}}, source="f.yaml")
        text = str(info.value)
        assert value not in text and "nvapi-" not in text
        assert "NAME of the environment variable" in text
    with pytest.raises(ConfigError) as info:  # the same through the environment
        build_config({}, {"NIMBLE_NIM_NGC_API_KEY_ENV": key})
    assert key not in str(info.value) and "NIMBLE_NIM_NGC_API_KEY_ENV" in str(info.value)


def test_flag_values_are_named_by_the_flag_and_their_config_key() -> None:
    from nimble_oke.domain.config import FlagOverrides

    flags = FlagOverrides({"budget.max_hours": -1.0}, {"budget.max_hours": "--hours"})
    with pytest.raises(ConfigError) as info:
        build_config({}, {}, flags)
    assert str(info.value) == ("--hours -1.0: must be greater than 0 (config key budget.max_hours)")
    plain = {"budget.max_hours": -1.0}  # a plain dict still names the config key
    with pytest.raises(ConfigError, match="flag for budget.max_hours -1.0"):
        build_config({}, {}, plain)
    with pytest.raises(ConfigError, match="^NIMBLE_GPU_POOL_NODES -2: .*gpu_pool.nodes"):
        build_config({}, {"NIMBLE_GPU_POOL_NODES": "-2"})


def test_repeated_problems_are_capped() -> None:
    from nimble_oke.domain.config import MAX_PROBLEMS

    with pytest.raises(ConfigError) as info:
        build_config({f"k{i}": 1 for i in range(5000)}, source="f.yaml")
    lines = str(info.value).splitlines()
    assert len(lines) == MAX_PROBLEMS + 1
    assert lines[-1] == "f.yaml: … and 4,990 more problems (5,000 in all; fix these first)"


def test_duplicate_keys_are_refused_with_both_lines() -> None:
    with pytest.raises(ConfigError, match="duplicate key 'nodes' at line 3 \\(first at line 2\\)"):
        parse_yaml("gpu_pool:\n  nodes: 1\n  nodes: 2\n", "f.yaml")
    # YAML merge keys are not duplicates
    data = parse_yaml("base: &b {nodes: 1}\ngpu_pool:\n  <<: *b\n  nodes: 2\n", "f.yaml")
    assert data["gpu_pool"] == {"nodes": 2}


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ("[" * 2000 + "]" * 2000, "nested deeper than 4 levels"),
        (
            "[&a [l,l,l,l,l,l,l,l,l], &b [*a,*a,*a,*a,*a,*a,*a,*a,*a], "
            "&c [*b,*b,*b,*b,*b,*b,*b,*b,*b], &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]]",
            "once aliases are expanded",
        ),
        ("9" * 5000, "longer than 4,096 characters"),
    ],
)
def test_environment_values_are_bounded_too(raw: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_config({}, {"NIMBLE_GPU_POOL_AVAILABILITY_DOMAINS": raw})
    text = str(info.value)
    assert "environment variable NIMBLE_GPU_POOL_AVAILABILITY_DOMAINS" in text and needle in text


def test_an_environment_value_that_is_not_yaml_is_a_plain_string() -> None:
    cfg = build_config({}, {"NIMBLE_NIM_SERVED_MODEL_NAME": "a: b: c"})
    assert cfg.nim.served_model_name == "a: b: c"
