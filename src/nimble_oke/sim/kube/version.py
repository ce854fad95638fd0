"""The Kubernetes version the simulated control plane reports (OKE, reference/oke.md), and
the minor version whose API schemas it validates and publishes against."""

from __future__ import annotations

KUBE_VERSION = "v1.35.2"
SCHEMA_MINOR = int(KUBE_VERSION.lstrip("v").split(".")[1])
