"""GitOps export: the chart values nimble would apply, and Argo CD objects that apply them.

What leaves nimble here goes into a Git repository, so the values are checked by the chart's
schema and its secret guard (:func:`validate_values`): Secrets appear only by *name*
(``ngc.apiKeySecret.name``, ``imagePullSecrets``, ``cache.objectStorage.parSecret.name``) and
are listed in the ``nimble-oke/required-secrets`` annotation so whoever runs Argo CD knows
which Secrets to provide (Sealed Secrets, External Secrets, ...) — they are never inlined.

One environment → an ``Application`` with the values inline as ``spec.source.helm.valuesObject``.
Several → an ``ApplicationSet`` (list generator, one element per environment, Go templates):
each element carries its environment's values as YAML text, rendered into
``spec.source.helm.values`` of the generated Application, so environments can differ.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nimble_oke.domain.config import NimbleConfig
from nimble_oke.errors import ConfigError

ARGOCD_API = "argoproj.io/v1alpha1"
IN_CLUSTER = "https://kubernetes.default.svc"
REQUIRED_SECRETS_ANNOTATION = "nimble-oke/required-secrets"
DEFAULT_REPO = "https://github.com/nimble-oke/nimble-oke.git"
DEFAULT_CHART_PATH = "charts/nimble-nim"
SYNC_OPTIONS = ("CreateNamespace=true", "ServerSideApply=true", "PruneLast=true")


@dataclass(frozen=True)
class GitSource:
    """Where Argo CD finds the chart."""

    repo_url: str = DEFAULT_REPO
    path: str = DEFAULT_CHART_PATH
    target_revision: str = "main"


@dataclass(frozen=True)
class ArgoTarget:
    """Where the Application lives and what it deploys to."""

    project: str = "default"
    argocd_namespace: str = "argocd"
    server: str = IN_CLUSTER
    automated: bool = True


def load_export_config(session: str | None, config_file: str | None) -> NimbleConfig:
    """A recorded session's config (``--name``), else the config file's."""
    if session:
        from nimble_oke.services.sessions import session_config
        from nimble_oke.state.store import StateStore

        with StateStore() as store:
            return session_config(store, session)
    from nimble_oke.config_file import load_config

    cfg, _ = load_config(config_file)
    return cfg


def export_values(cfg: NimbleConfig, *, session: str | None = None) -> dict[str, Any]:
    """The chart values ``nimble up`` would apply for this config, rendered once so what
    Argo CD gets is known to render (schema, template checks, secret guard).

    Raises CatalogError for a model/shape that cannot work, ChartError for values the chart
    refuses (naming the key; a secret-looking value is never echoed)."""
    from nimble_oke.catalog import load_catalog
    from nimble_oke.domain.plan import build_plan
    from nimble_oke.kube.render import render_chart
    from nimble_oke.services.values import chart_values

    plan = build_plan(cfg, load_catalog())
    name = session or cfg.session_name
    values = chart_values(cfg, plan, session=name)
    render_chart(values, release=name, namespace=cfg.nim.namespace)
    return values


def secret_names(values: Mapping[str, Any]) -> list[str]:
    """Every Secret the values refer to by name (the cluster must provide them)."""
    names: list[str] = list(values.get("imagePullSecrets") or [])
    api = ((values.get("ngc") or {}).get("apiKeySecret") or {}).get("name")
    if api:
        names.append(api)
    par = (((values.get("cache") or {}).get("objectStorage") or {}).get("parSecret") or {}).get(
        "name"
    )
    if par and ((values.get("cache") or {}).get("objectStorage") or {}).get("auth") == "par":
        names.append(par)
    return sorted(set(names))


def _sync_policy(automated: bool) -> dict[str, Any]:
    policy: dict[str, Any] = {"syncOptions": list(SYNC_OPTIONS)}
    if automated:
        policy["automated"] = {"prune": True, "selfHeal": True}
    return policy


def _labels(session: str) -> dict[str, str]:
    return {"app.kubernetes.io/managed-by": "nimble-oke", "nimble-oke/session": session}


def argocd_application(
    values: Mapping[str, Any],
    *,
    name: str,
    namespace: str,
    source: GitSource = GitSource(),
    target: ArgoTarget = ArgoTarget(),
) -> dict[str, Any]:
    """An Argo CD Application deploying the chart with ``values`` inline (valuesObject)."""
    session = str(values.get("session") or name)
    return {
        "apiVersion": ARGOCD_API,
        "kind": "Application",
        "metadata": {
            "name": name,
            "namespace": target.argocd_namespace,
            "labels": _labels(session),
            "annotations": {REQUIRED_SECRETS_ANNOTATION: ",".join(secret_names(values))},
            "finalizers": ["resources-finalizer.argocd.argoproj.io"],
        },
        "spec": {
            "project": target.project,
            "source": {
                "repoURL": source.repo_url,
                "path": source.path,
                "targetRevision": source.target_revision,
                "helm": {"releaseName": session, "valuesObject": copy.deepcopy(dict(values))},
            },
            "destination": {"server": target.server, "namespace": namespace},
            "syncPolicy": _sync_policy(target.automated),
        },
    }


def environment_values(values: Mapping[str, Any], environment: str) -> dict[str, Any]:
    """One environment's values: the session's, with its own session label (so tags, LB
    and volumes of dev and prod never mix)."""
    out = copy.deepcopy(dict(values))
    out["session"] = f"{values.get('session', 'nim')}-{environment}"
    storage = (out.get("cache") or {}).get("storageClass")
    if isinstance(storage, dict) and storage.get("name"):
        storage["name"] = f"{out['session']}-cache"
    return out


def argocd_applicationset(
    values_by_env: Mapping[str, Mapping[str, Any]],
    *,
    name: str,
    namespace_prefix: str,
    source: GitSource = GitSource(),
    target: ArgoTarget = ArgoTarget(),
) -> dict[str, Any]:
    """An ApplicationSet generating one Application per environment (``<name>-<env>`` into
    namespace ``<namespace_prefix>-<env>``), each with its environment's values."""
    if not values_by_env:
        raise ConfigError("--environments: name at least one environment")
    elements = []
    secrets: set[str] = set()
    for env, values in values_by_env.items():
        secrets.update(secret_names(values))
        elements.append(
            {
                "environment": env,
                "namespace": f"{namespace_prefix}-{env}",
                "release": str(values.get("session") or f"{name}-{env}"),
                "values": yaml.safe_dump(dict(values), sort_keys=False),
            }
        )
    template_labels = {**_labels(name), "nimble-oke/environment": "{{ .environment }}"}
    return {
        "apiVersion": ARGOCD_API,
        "kind": "ApplicationSet",
        "metadata": {
            "name": name,
            "namespace": target.argocd_namespace,
            "labels": _labels(name),
            "annotations": {REQUIRED_SECRETS_ANNOTATION: ",".join(sorted(secrets))},
        },
        "spec": {
            "goTemplate": True,
            "goTemplateOptions": ["missingkey=error"],
            "generators": [{"list": {"elements": elements}}],
            "template": {
                "metadata": {
                    "name": f"{name}-{{{{ .environment }}}}",
                    "labels": template_labels,
                    "annotations": {REQUIRED_SECRETS_ANNOTATION: ",".join(sorted(secrets))},
                },
                "spec": {
                    "project": target.project,
                    "source": {
                        "repoURL": source.repo_url,
                        "path": source.path,
                        "targetRevision": source.target_revision,
                        "helm": {"releaseName": "{{ .release }}", "values": "{{ .values }}"},
                    },
                    "destination": {"server": target.server, "namespace": "{{ .namespace }}"},
                    "syncPolicy": _sync_policy(target.automated),
                },
            },
        },
    }


def write_argocd(
    cfg: NimbleConfig,
    output_dir: Path,
    *,
    session: str | None = None,
    environments: Sequence[str] = (),
    source: GitSource = GitSource(),
    target: ArgoTarget = ArgoTarget(),
) -> list[Path]:
    """Write ``values.yaml`` and ``application.yaml`` (one environment) or
    ``applicationset.yaml`` (several) into ``output_dir``; returns the paths written."""
    name = session or cfg.session_name
    values = export_values(cfg, session=name)
    output_dir.mkdir(parents=True, exist_ok=True)
    written = [_write(output_dir / "values.yaml", values)]
    envs = [e.strip() for e in environments if e.strip()]
    bad = [e for e in envs if not _dns_label(e)]
    if bad:
        raise ConfigError(
            f"--environments: {', '.join(bad)} is not a valid name (lower-case letters, digits, -)"
        )
    if not envs:
        app = argocd_application(
            values, name=name, namespace=cfg.nim.namespace, source=source, target=target
        )
        written.append(_write(output_dir / "application.yaml", app))
        return written
    per_env = {env: environment_values(values, env) for env in envs}
    appset = argocd_applicationset(
        per_env, name=name, namespace_prefix=cfg.nim.namespace, source=source, target=target
    )
    written.append(_write(output_dir / "applicationset.yaml", appset))
    return written


def _dns_label(text: str) -> bool:
    import re

    return bool(re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?", text))


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (an environment's values) as readable ``|`` blocks."""


def _str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_BlockDumper.add_representer(str, _str)


def to_yaml(data: Mapping[str, Any]) -> str:
    return yaml.dump(dict(data), Dumper=_BlockDumper, sort_keys=False, allow_unicode=True)


def _write(path: Path, data: Mapping[str, Any]) -> Path:
    path.write_text(to_yaml(data), encoding="utf-8")
    return path
