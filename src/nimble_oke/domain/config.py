"""Configuration: one pydantic model per section of ``nimble.yaml``.

Each field carries its default, its validation and its help text (the ``description``);
``nimble config schema`` prints the JSON Schema generated from these models.

Precedence (highest first): CLI flag > environment ``NIMBLE_<SECTION>_<FIELD>`` > file >
defaults. :func:`build_config` merges the layers and validates once, so every error names
the field path, the bad value and what is allowed (see :func:`format_validation_error`).

Corrections from the source document applied here:
- C1: the model cache has exactly one size key, ``cache.size_gb``.
- C2: there is one node selection rule (the OKE GPU label plus the shape's instance type
  when ``gpu_pool.pin_shape``), not two competing ``nodeSelector`` blocks.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from nimble_oke.errors import ConfigError
from nimble_oke.ngc_keys import NGC_KEY_RE
from nimble_oke.redact import redact

ENV_PREFIX = "NIMBLE_"
# Environment variables that configure the tool itself rather than a config field.
RESERVED_ENV = frozenset(
    {"NIMBLE_CONFIG", "NIMBLE_HOME", "NIMBLE_TEST_OCI", "NIMBLE_LOG_FORMAT", "NIMBLE_DEBUG"}
)

_OCID = re.compile(r"^ocid1\.[a-z0-9]+\.[a-z0-9-]*\.[a-z0-9-]*\.[a-z0-9]+$")
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")
_K8S_VERSION = re.compile(r"^v?1\.\d{2}\.\d+$")
_REGION = re.compile(r"^[a-z]{2,}-[a-z]+-\d$")
# Kubernetes names: a DNS-1123 label (namespaces) and subdomain (StorageClasses).
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_SHAPE = re.compile(r"^(VM|BM)\.[A-Za-z0-9.\-]{1,60}$")
_AD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._-]{0,99}$")
# OCI Object Storage: bucket names (letters, digits, '-', '_', '.'), tenancy namespaces.
_BUCKET = re.compile(r"^[A-Za-z0-9._-]{1,256}$")
_OS_NAMESPACE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# Container image references (the distribution spec's grammar, simplified).
_IMAGE_REPO = re.compile(
    r"^([A-Za-z0-9.-]+(:\d{1,5})?/)?[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$"
)
_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_TEXT = re.compile(r"^[^\x00-\x1f\x7f]*$")  # one line, no control characters
MAX_TEXT = 1024  # no config string needs more; bounds what an error message may echo


def session_name(value: str) -> str:
    """A session (= cluster) name: it names cloud resources, Kubernetes objects and files."""
    if not _NAME.match(value):
        raise ValueError(
            "a session name has 1-40 lowercase letters, digits or '-', starting and ending "
            "with a letter or digit"
        )
    return value


def bucket_name(value: str) -> str:
    """An Object Storage bucket name as OCI accepts it."""
    if not _BUCKET.match(value):
        raise ValueError("a bucket name has 1-256 letters, digits, '-', '_' or '.'")
    return value


def region_name(value: str) -> str:
    if not _REGION.match(value):
        raise ValueError("expected a region identifier like us-ashburn-1")
    return value


def dns_label(value: str, what: str) -> str:
    """A Kubernetes DNS-1123 label (namespaces): what Kubernetes accepts, said plainly."""
    if not _DNS_LABEL.match(value):
        raise ValueError(
            f"{what} must be a DNS-1123 label: 1-63 lowercase letters, digits or '-', "
            "starting and ending with a letter or digit (e.g. nim)"
        )
    return value


def ipv4_cidr(value: str) -> str:
    """An IPv4 CIDR as OCI security rules take it (the VCN nimble creates is IPv4-only)."""
    if "/" not in value:
        raise ValueError(f"expected a CIDR such as {value}/32 (address/prefix length)")
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        if "host bits set" in str(exc):
            fixed = ipaddress.ip_network(value, strict=False)
            raise ValueError(f"has host bits set; did you mean {fixed}?") from None
        raise ValueError(
            "expected an IPv4 CIDR such as 203.0.113.0/24 (four numbers 0-255, prefix 0-32)"
        ) from None
    if network.version != 4:
        raise ValueError("expected an IPv4 CIDR: the VCN nimble creates has no IPv6")
    return value


def _shape_name(value: str) -> str:
    if not _SHAPE.match(value):
        raise ValueError("expected an OCI shape name like VM.GPU.A10.1")
    return value


def _ad_name(value: str) -> str:
    if not _AD.match(value):
        raise ValueError("expected an availability domain name like AD-1")
    return value


ShapeName = Annotated[str, AfterValidator(_shape_name)]
AdName = Annotated[str, AfterValidator(_ad_name)]
Cidr = Annotated[str, AfterValidator(ipv4_cidr)]
Namespace = Annotated[str, AfterValidator(lambda v: dns_label(v, "a Kubernetes namespace"))]


def unique(values: list[str], what: str) -> list[str]:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} lists '{value}' twice")
        seen.add(value)
    return values


def looks_like_secret(value: object) -> bool:
    """A value an error message or output must not echo (an NGC key, a PAR URL, a PEM)."""
    return isinstance(value, str) and (bool(NGC_KEY_RE.match(value)) or redact(value) != value)


class Section(BaseModel):
    """Base for config sections: unknown keys are errors, assignments are validated, and no
    string is longer than :data:`MAX_TEXT`."""

    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, frozen=False, str_max_length=MAX_TEXT
    )


class OciSettings(Section):
    config_file: str = Field("~/.oci/config", description="OCI SDK config file.")
    profile: str = Field("DEFAULT", min_length=1, description="Profile in the OCI config file.")
    region: str | None = Field(
        None, description="OCI region, e.g. us-ashburn-1 (default: the profile's region)."
    )
    compartment_id: str | None = Field(
        None, description="Compartment OCID for every resource (default: the tenancy)."
    )
    auth: Literal["config", "instance_principal", "resource_principal", "workload_identity"] = (
        Field("config", description="How the SDK authenticates.")
    )

    @field_validator("region")
    @classmethod
    def _region(cls, v: str | None) -> str | None:
        return v if v is None else region_name(v)

    @field_validator("compartment_id")
    @classmethod
    def _ocid(cls, v: str | None) -> str | None:
        if v is not None and not _OCID.match(v):
            raise ValueError("expected an OCID like ocid1.compartment.oc1..aaaa…")
        return v


class ClusterSettings(Section):
    name: str = Field(
        "nimble",
        description="Cluster name; also the default session name (lowercase, digits, '-').",
    )
    type: Literal["basic", "enhanced"] = Field(
        "basic", description="OKE cluster type: basic (free control plane) or enhanced ($/h)."
    )
    kubernetes_version: str = Field("1.35.2", description="Kubernetes version, e.g. 1.35.2.")
    vcn_id: str | None = Field(None, description="Reuse this VCN instead of creating one.")
    api_subnet_id: str | None = Field(None, description="Reuse: API endpoint subnet OCID.")
    worker_subnet_id: str | None = Field(None, description="Reuse: worker subnet OCID.")
    lb_subnet_id: str | None = Field(None, description="Reuse: load balancer subnet OCID.")
    api_allowed_cidr: str = Field(
        "0.0.0.0/0", description="CIDR allowed to reach the public Kubernetes API (6443)."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return session_name(v)

    @field_validator("kubernetes_version")
    @classmethod
    def _version(cls, v: str) -> str:
        if not _K8S_VERSION.match(v):
            raise ValueError("expected a version like 1.35.2")
        return v.lstrip("v")

    @field_validator("vcn_id", "api_subnet_id", "worker_subnet_id", "lb_subnet_id")
    @classmethod
    def _ocid(cls, v: str | None) -> str | None:
        if v is not None and not _OCID.match(v):
            raise ValueError("expected an OCID like ocid1.vcn.oc1.iad.aaaa…")
        return v

    @field_validator("api_allowed_cidr")
    @classmethod
    def _cidr(cls, v: str) -> str:
        return ipv4_cidr(v)

    @model_validator(mode="after")
    def _reuse_all_or_nothing(self) -> ClusterSettings:
        subnets = [self.api_subnet_id, self.worker_subnet_id, self.lb_subnet_id]
        if self.vcn_id is None and any(subnets):
            raise ValueError("subnet ids are only used together with vcn_id")
        if self.vcn_id is not None and not all(subnets):
            raise ValueError("reusing a VCN needs api_subnet_id, worker_subnet_id and lb_subnet_id")
        return self


class GpuPoolSettings(Section):
    shape: str = Field("VM.GPU.A10.1", description="GPU shape of the node pool.")
    nodes: int = Field(1, ge=0, le=32, description="Number of GPU nodes.")
    preemptible: bool = Field(
        False, description="Use preemptible capacity (50% off; VM shapes only)."
    )
    boot_volume_gb: int = Field(
        200, ge=50, le=32768, description="Boot volume size (NIM images need ≥ 100 GB)."
    )
    availability_domains: list[AdName] = Field(
        default_factory=list,
        max_length=3,
        description="ADs to try in order (empty: every AD of the region; a region has ≤ 3).",
    )
    placement: Literal["one-ad", "spread"] = Field(
        "one-ad",
        description=(
            "one-ad: all nodes in the first AD with capacity; spread: the pool's nodes spread "
            "over every AD with capacity (HA for several replicas; one-AD pools stay the "
            "fallback)."
        ),
    )
    fallback_shapes: list[ShapeName] = Field(
        default_factory=list,
        max_length=8,
        description="Other shapes to try when the first has no capacity (empty: none).",
    )
    allow_on_demand_fallback: bool = Field(
        True, description="When preemptible capacity is missing, fall back to on-demand."
    )
    pin_shape: bool = Field(
        True, description="Also select nodes by the shape's instance-type label (C2)."
    )

    @field_validator("shape")
    @classmethod
    def _shape(cls, v: str) -> str:
        return _shape_name(v)

    @field_validator("fallback_shapes")
    @classmethod
    def _fallbacks(cls, v: list[str]) -> list[str]:
        return unique(v, "fallback_shapes")

    @field_validator("availability_domains")
    @classmethod
    def _ads(cls, v: list[str]) -> list[str]:
        return unique(v, "availability_domains")


class NimSettings(Section):
    model: str = Field(
        "meta/llama-3.1-8b-instruct", description="NIM model (catalog name, org/model)."
    )
    image_repository: str | None = Field(
        None, description="Image repository (default: the catalog's nvcr.io/nim/<model>)."
    )
    image_tag: str | None = Field(
        None, description="Image tag (default: the catalog's; never latest)."
    )
    precision: Literal["bf16", "fp16", "fp8", "int4-awq"] = Field(
        "bf16", description="Weights precision (needs compute capability: bf16 ≥ 8.0, fp8 ≥ 8.9)."
    )
    model_profile: str | None = Field(None, description="NIM_MODEL_PROFILE to pin (optional).")
    served_model_name: str | None = Field(None, description="NIM_SERVED_MODEL_NAME (optional).")
    namespace: str = Field("nim", description="Kubernetes namespace for the deployment.")
    replicas: int = Field(1, ge=1, le=64, description="NIM replicas.")
    ngc_api_key_env: str = Field(
        "NGC_API_KEY", description="Environment variable holding the NGC API key (never stored)."
    )

    @field_validator("model")
    @classmethod
    def _model(cls, v: str) -> str:
        if not re.match(r"^[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._-]*$", v):
            raise ValueError("expected org/model, e.g. meta/llama-3.1-8b-instruct")
        return v

    @field_validator("image_tag")
    @classmethod
    def _tag(cls, v: str | None) -> str | None:
        if v == "latest":
            raise ValueError("pin a version: 'latest' makes deployments unreproducible")
        if v is not None and not _IMAGE_TAG.match(v):
            raise ValueError("expected an image tag: letters, digits, '_', '.', '-' (≤ 128)")
        return v

    @field_validator("image_repository")
    @classmethod
    def _repository(cls, v: str | None) -> str | None:
        if v is not None and not _IMAGE_REPO.match(v):
            raise ValueError("expected an image repository like nvcr.io/nim/meta/llama3-8b")
        return v

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, v: str) -> str:
        dns_label(v, "a Kubernetes namespace")
        if v == "default" or v.startswith("kube-"):
            raise ValueError(
                "use a namespace of its own (down deletes it): 'default' and 'kube-*' "
                "belong to the cluster"
            )
        return v

    @field_validator("model_profile", "served_model_name")
    @classmethod
    def _one_line(cls, v: str | None) -> str | None:
        if v is not None and not (v.strip() and _TEXT.match(v)):
            raise ValueError("expected one line of text without control characters")
        return v

    @field_validator("ngc_api_key_env")
    @classmethod
    def _key_env(cls, v: str) -> str:
        if looks_like_secret(v):
            # the message must not contain the value: it is probably the key itself
            raise ValueError(
                "this looks like an NGC API key itself; put the NAME of the environment "
                "variable that holds the key here (e.g. NGC_API_KEY), never the key"
            )
        if not _ENV_NAME.match(v):
            raise ValueError(
                "expected an environment variable name (letters, digits, '_'), e.g. NGC_API_KEY"
            )
        return v


class CacheSettings(Section):
    mode: Literal["pvc", "object-storage", "ngc"] = Field(
        "pvc",
        description=(
            "pvc: block-volume cache NIM fills once; object-storage: hydrate the volume "
            "from a bucket; ngc: NIM downloads into the volume every cold start."
        ),
    )
    size_gb: int = Field(
        200, ge=50, le=32768, description="Cache volume size (the one size key, C1)."
    )
    storage_class: str = Field("oci-bv", description="StorageClass of the cache PVC.")
    vpus_per_gb: int = Field(
        10,
        ge=0,
        le=120,
        description="Block volume performance: 10 Balanced, 20 Higher, 30-120 Ultra.",
    )
    keep: bool = Field(False, description="Keep the cache volume on teardown (reuse next time).")
    kept_vpus_per_gb: int = Field(
        0,
        ge=0,
        le=120,
        description=(
            "Performance a kept cache volume rests at between sessions (0 = Lower Cost, the "
            "cheapest to keep); the next up raises it online to vpus_per_gb."
        ),
    )
    warm_up: Literal["cpu-pool", "gpu-node"] = Field(
        "cpu-pool",
        description=(
            "pvc and object-storage modes, cold cache: cpu-pool fills the cache volume on a "
            "small CPU node pool (same AD) while the GPU pool provisions — NIM's "
            "download-to-cache, or nimble's hydrate from Object Storage — so the GPU node "
            "never waits on it; gpu-node fills it on the GPU node (falls back to it when the "
            "AD or quota does not allow the CPU pool)."
        ),
    )
    warm_up_shape: str = Field(
        "auto",
        description="CPU shape of the warm-up pool; auto = the cheapest flexible shape offered.",
    )
    warm_up_ocpus: int = Field(2, ge=1, le=16, description="OCPUs of the warm-up node.")
    warm_up_memory_gb: int = Field(16, ge=4, le=256, description="Memory of the warm-up node.")
    bucket: str | None = Field(None, description="object-storage: bucket holding the model.")
    namespace: str | None = Field(
        None, description="object-storage: the tenancy's Object Storage namespace."
    )
    prefix: str = Field("models", description="object-storage: object name prefix.")
    version: str | None = Field(None, description="object-storage: model version to hydrate.")

    @field_validator("storage_class")
    @classmethod
    def _storage_class(cls, v: str) -> str:
        if len(v) > 253 or not _DNS_SUBDOMAIN.match(v):
            raise ValueError(
                "a StorageClass name is a DNS-1123 subdomain: lowercase letters, digits, "
                "'-' and '.', e.g. oci-bv"
            )
        return v

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, v: str | None) -> str | None:
        return v if v is None else bucket_name(v)

    @field_validator("namespace")
    @classmethod
    def _os_namespace(cls, v: str | None) -> str | None:
        if v is not None and not _OS_NAMESPACE.match(v):
            raise ValueError(
                "expected the tenancy's Object Storage namespace (lowercase letters and "
                "digits; `oci os ns get` prints it)"
            )
        return v

    @field_validator("prefix", "version")
    @classmethod
    def _object_path(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = v.split("/")
        if not _TEXT.match(v) or v.startswith("/") or ".." in parts or "" in parts[:-1]:
            raise ValueError(
                "expected an object name prefix like models/llama (no leading '/', no '..', "
                "no control characters)"
            )
        return v

    @field_validator("vpus_per_gb", "kept_vpus_per_gb")
    @classmethod
    def _vpus(cls, v: int) -> int:
        if v not in (0, 10, 20) and not (30 <= v <= 120 and v % 10 == 0):
            raise ValueError("allowed: 0, 10, 20, or 30-120 in steps of 10")
        return v

    @model_validator(mode="after")
    def _bucket_needed(self) -> CacheSettings:
        if self.mode == "object-storage" and not (self.bucket and self.namespace):
            raise ValueError(
                "cache.mode object-storage needs cache.bucket and cache.namespace "
                "(the Object Storage namespace: `oci os ns get`, or nimble models list shows it)"
            )
        return self


class ProbeSettings(Section):
    mode: Literal["computed", "explicit"] = Field(
        "computed",
        description="computed: startup budget from model size, cache state and bandwidth (C3).",
    )
    startup_period_s: int = Field(10, ge=1, le=300, description="Startup probe period.")
    startup_failure_threshold: int | None = Field(
        None, ge=1, le=10000, description="explicit mode: startup probe failures allowed."
    )
    readiness_period_s: int = Field(10, ge=1, le=300, description="Readiness probe period.")
    liveness_period_s: int = Field(15, ge=1, le=300, description="Liveness probe period.")
    safety_factor: float = Field(
        1.5, ge=1.0, le=10.0, description="computed mode: multiplier over the modeled start time."
    )

    @model_validator(mode="after")
    def _explicit_needs_threshold(self) -> ProbeSettings:
        if self.mode == "explicit" and self.startup_failure_threshold is None:
            raise ValueError("probes.mode explicit needs probes.startup_failure_threshold")
        return self


class BudgetSettings(Section):
    max_usd: float = Field(10.0, gt=0, le=100000, description="Session budget in USD.")
    max_hours: float = Field(2.0, gt=0, le=720, description="Session time box (lease) in hours.")
    confirm_above_usd: float = Field(
        5.0, ge=0, description="Ask for confirmation when the worst case exceeds this."
    )
    environment: Literal["dev", "production"] = Field(
        "dev", description="production always asks for confirmation."
    )
    egress_gb: float = Field(1.0, ge=0, description="Expected internet egress for the session.")


class BenchSettings(Section):
    concurrency: int = Field(8, ge=1, le=4096, description="Closed-loop concurrency.")
    requests: int = Field(64, ge=1, le=1_000_000, description="Requests per run (after warm-up).")
    warmup: int = Field(4, ge=0, le=10000, description="Warm-up requests excluded from results.")
    input_tokens: int = Field(256, ge=1, le=1_000_000, description="Mean prompt length in tokens.")
    output_tokens: int = Field(128, ge=1, le=100_000, description="Output tokens per request.")
    duration_s: float | None = Field(None, gt=0, description="Bound the run by time as well.")


class SecuritySettings(Section):
    seccomp: Literal["RuntimeDefault", "Localhost"] = Field(
        "RuntimeDefault", description="Seccomp profile type of the NIM pod."
    )
    network_policy: bool = Field(True, description="Render a default-deny NetworkPolicy.")
    allowed_ingress_cidrs: list[Cidr] = Field(
        default_factory=list,
        max_length=64,
        description="IPv4 CIDRs allowed to reach port 8000 (besides namespaces).",
    )
    allowed_ingress_namespaces: list[Namespace] = Field(
        default_factory=list, max_length=64, description="Namespaces allowed to reach port 8000."
    )

    @field_validator("allowed_ingress_cidrs")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        return unique(v, "allowed_ingress_cidrs")

    @field_validator("allowed_ingress_namespaces")
    @classmethod
    def _namespaces(cls, v: list[str]) -> list[str]:
        return unique(v, "allowed_ingress_namespaces")


class ServiceSettings(Section):
    type: Literal["ClusterIP", "LoadBalancer"] = Field(
        "LoadBalancer", description="How the endpoint is exposed."
    )
    lb_min_mbps: int = Field(10, ge=10, le=8000, description="Flexible LB minimum bandwidth.")
    lb_max_mbps: int = Field(10, ge=10, le=8000, description="Flexible LB maximum bandwidth.")

    @model_validator(mode="after")
    def _min_le_max(self) -> ServiceSettings:
        if self.lb_min_mbps > self.lb_max_mbps:
            raise ValueError("service.lb_min_mbps must not exceed service.lb_max_mbps")
        return self


class MonitoringSettings(Section):
    enabled: bool = Field(False, description="ServiceMonitor + PrometheusRule for NIM.")
    otel: bool = Field(False, description="Switch NIM's OpenTelemetry tracing on.")
    otel_endpoint: str | None = Field(None, description="OTLP endpoint for traces/metrics.")

    @field_validator("otel_endpoint")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        from urllib.parse import urlsplit

        if v is None:
            return v
        try:
            parts = urlsplit(v)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname) and _TEXT.match(v)
            parts.port  # noqa: B018 - raises on a port out of range
        except ValueError:
            ok = False
        if not ok:
            raise ValueError("expected an http(s) URL such as http://otel-collector:4318")
        return v


class AutoscalingSettings(Section):
    enabled: bool = Field(False, description="Scale NIM replicas automatically.")
    engine: Literal["hpa", "keda"] = Field("hpa", description="HPA or KEDA ScaledObject.")
    metric: Literal["cpu", "queue", "kv-cache"] = Field(
        "queue", description="cpu, queue (num_requests_waiting) or kv-cache (gpu_cache_usage_perc)."
    )
    min_replicas: int = Field(1, ge=0, le=64)
    max_replicas: int = Field(2, ge=1, le=64)
    cluster_autoscaler: bool = Field(
        False,
        description=(
            "Install OKE's Cluster Autoscaler add-on for the GPU pool (enhanced clusters): "
            "nodes from gpu_pool.nodes up to one per max_replicas replica."
        ),
    )

    @model_validator(mode="after")
    def _min_le_max(self) -> AutoscalingSettings:
        if self.min_replicas > self.max_replicas:
            raise ValueError("autoscaling.min_replicas must not exceed max_replicas")
        return self


class NimbleConfig(Section):
    """The whole configuration (``nimble.yaml``)."""

    target: Literal["sim", "oci"] = Field(
        "sim", description="sim: local simulators, free. oci: the real OCI API, costs money."
    )
    oci: OciSettings = Field(default_factory=OciSettings)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    gpu_pool: GpuPoolSettings = Field(default_factory=GpuPoolSettings)
    nim: NimSettings = Field(default_factory=NimSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    probes: ProbeSettings = Field(default_factory=ProbeSettings)
    budget: BudgetSettings = Field(default_factory=BudgetSettings)
    bench: BenchSettings = Field(default_factory=BenchSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    autoscaling: AutoscalingSettings = Field(default_factory=AutoscalingSettings)

    @model_validator(mode="after")
    def _cluster_autoscaler_needs_enhanced(self) -> NimbleConfig:
        if self.autoscaling.cluster_autoscaler and self.cluster.type != "enhanced":
            raise ValueError(
                "autoscaling.cluster_autoscaler needs cluster.type enhanced (OKE installs "
                "cluster add-ons only on enhanced clusters)"
            )
        return self

    @property
    def session_name(self) -> str:
        return self.cluster.name


SECTIONS: dict[str, type[Section]] = {
    name: field.annotation
    for name, field in NimbleConfig.model_fields.items()
    if isinstance(field.annotation, type) and issubclass(field.annotation, Section)
}


def env_overrides(env: Mapping[str, str], origins: dict[str, str] | None = None) -> dict[str, Any]:
    """Map ``NIMBLE_<SECTION>_<FIELD>`` variables onto a nested override dict.

    Values are parsed as YAML scalars (``true``, ``2``, ``[a, b]``), so they validate the
    same way as the file. A variable whose section matches but whose field does not is an
    error (a typo must not be silently ignored); unrelated ``NIMBLE_*`` variables are not.
    ``origins`` (when given) receives ``dotted.path → variable name`` for error messages.
    """
    out: dict[str, Any] = {}
    for key, raw in env.items():
        if not key.startswith(ENV_PREFIX) or key in RESERVED_ENV:
            continue
        rest = key[len(ENV_PREFIX) :].lower()
        if rest == "target":
            out["target"] = raw
            if origins is not None:
                origins["target"] = key
            continue
        section = next(
            (s for s in sorted(SECTIONS, key=len, reverse=True) if rest.startswith(s + "_")),
            None,
        )
        if section is None:
            continue
        field = rest[len(section) + 1 :]
        allowed = sorted(SECTIONS[section].model_fields)
        if field not in SECTIONS[section].model_fields:
            raise ConfigError(
                f"environment variable {key}: {section} has no field '{field}'; "
                f"allowed: {', '.join('NIMBLE_' + (section + '_' + a).upper() for a in allowed)}"
            )
        out.setdefault(section, {})[field] = env_value(key, raw)
        if origins is not None:
            origins[f"{section}.{field}"] = key
    return out


class _NotYamlError(Exception):
    pass


def env_value(key: str, raw: str) -> Any:
    """A variable's value parsed as YAML within bounds (a deep or alias-bombed value is an
    error naming the variable); text that is not YAML is taken as the string it is."""
    from nimble_oke.safe_parse import ENV_LIMITS, load_yaml

    if not raw.strip():
        return None
    try:
        return load_yaml(
            raw, f"environment variable {key}", limits=ENV_LIMITS, syntax_error=_NotYamlError
        )
    except _NotYamlError:
        return raw


def set_dotted(target: dict[str, Any], path: str, value: Any) -> None:
    """Set ``a.b`` = value in a nested dict (used for CLI flag overrides)."""
    parts = path.split(".")
    node = target
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``top`` over ``base`` recursively (dicts merge, everything else replaces)."""
    out: dict[str, Any] = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


class FlagOverrides(dict[str, Any]):
    """CLI flag values by dotted config path, remembering the flag each came from
    (``budget.max_hours`` ← ``--hours``) so errors name what the user typed. A plain dict
    works too (errors then name the config key only)."""

    def __init__(self, values: Mapping[str, Any], flag_names: Mapping[str, str]) -> None:
        super().__init__(values)
        self.flag_names = dict(flag_names)


def build_config(
    file_data: Any = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
    *,
    source: str = "config",
) -> NimbleConfig:
    """Merge file < env < flags over the defaults and validate once.

    ``flags`` maps dotted field paths (``gpu_pool.shape``) to values; ``None`` values are
    skipped (a flag the user did not pass). Errors name where each bad value came from: the
    flag (``--hours``, from a :class:`FlagOverrides`), the ``NIMBLE_*`` variable or the file.
    """
    if file_data is None:
        file_data = {}
    if not isinstance(file_data, Mapping):
        raise ConfigError(
            f"{source}: the top level must be a mapping of sections "
            f"(allowed: {', '.join(sorted(NimbleConfig.model_fields))}), "
            f"got {type(file_data).__name__}"
        )
    origins: dict[str, str] = {}
    merged = deep_merge({}, file_data)
    merged = deep_merge(merged, env_overrides(env or {}, origins))
    flag_tree: dict[str, Any] = {}
    flag_names = getattr(flags, "flag_names", {})
    for path, value in (flags or {}).items():
        if value is not None:
            set_dotted(flag_tree, path, value)
            origins[path] = flag_names.get(path, f"flag for {path}")
    merged = deep_merge(merged, flag_tree)
    try:
        return NimbleConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source, origins)) from None


def _allowed_keys(loc: tuple[int | str, ...]) -> list[str]:
    model: type[BaseModel] = NimbleConfig
    for part in loc[:-1]:
        if not isinstance(part, str):
            return []
        field = model.model_fields.get(part)
        ann = field.annotation if field else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return []
        model = ann
    return sorted(model.model_fields)


def _short(value: Any) -> str:
    if looks_like_secret(value):
        return "(a secret-looking value, not shown)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


MAX_PROBLEMS = 10  # a file of 200,000 unknown keys is one problem repeated, not 200,000 lines


def _origin(path: str, origins: Mapping[str, str]) -> str | None:
    """The flag or variable that set ``path`` (or the list/section holding it)."""
    parts = path.split(".")
    for end in range(len(parts), 0, -1):
        found = origins.get(".".join(parts[:end]))
        if found:
            return found
    return None


def format_validation_error(
    exc: ValidationError, source: str = "config", origins: Mapping[str, str] | None = None
) -> str:
    """One line per problem, at most :data:`MAX_PROBLEMS`: ``<source>: <field.path> =
    <value>: <what is allowed>``, or ``--flag = <value> (field.path): …`` when a flag or an
    environment variable gave the value. Secret-looking values are never echoed."""
    lines = []
    errors = exc.errors(include_url=False)
    for err in errors[:MAX_PROBLEMS]:
        loc = tuple(err.get("loc", ()))
        path = ".".join(str(p) for p in loc) or "(top level)"
        kind = err.get("type", "")
        if kind == "extra_forbidden":
            allowed = _allowed_keys(loc)
            lines.append(f"{source}: unknown key '{path}'; allowed here: {', '.join(allowed)}")
            continue
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        msg = msg.replace("Input should be ", "must be ", 1)
        origin = _origin(path, origins or {})
        where = f"{origin} (config key {path})" if origin else f"{source}: {path}"
        ctx = err.get("ctx") or {}
        if kind == "missing":
            lines.append(f"{where} is required")
        elif kind == "too_long" and isinstance(err.get("input"), list):
            lines.append(
                f"{where} lists {ctx.get('actual_length', len(err['input'])):,} items; "
                f"at most {ctx.get('max_length')} are allowed"
            )
        elif "input" in err and kind not in ("model_type",):
            value = err["input"]
            if origin and not isinstance(value, (dict, list)):
                lines.append(f"{origin} {_short(value)}: {msg} (config key {path})")
            else:
                lines.append(f"{where} = {_short(value)}: {msg}")
        else:
            lines.append(f"{where}: {msg}")
    if len(errors) > MAX_PROBLEMS:
        lines.append(
            f"{source}: … and {len(errors) - MAX_PROBLEMS:,} more problems "
            f"({len(errors):,} in all; fix these first)"
        )
    return "\n".join(lines) if lines else f"{source}: invalid configuration"
