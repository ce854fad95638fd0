"""A container's environment: service links, env/envFrom with Secret/ConfigMap/field
references, ``$(VAR)`` expansion; missing references are CreateContainerConfigError."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from . import quantity
from .cluster import CONFIGMAPS, PODS, SECRETS, SERVICES
from .store import Obj, Store


class ContainerConfigError(Exception):
    """CreateContainerConfigError: a referenced Secret/ConfigMap or key is missing."""


@dataclass
class EnvBuilder:
    store: Store
    service_ports: dict[tuple[str, str], dict[int, int]]
    api_address: str
    ns: str
    name: str
    uid: str
    node: str
    pod_ip: str
    spec: Obj

    def _lookup(self, kind: str, ref: Obj) -> str | None:
        rt = SECRETS if kind == "secret" else CONFIGMAPS
        obj = self.store.get(rt, self.ns, ref.get("name", ""))
        optional = bool(ref.get("optional"))
        if obj is None:
            if optional:
                return None
            raise ContainerConfigError(f'{kind} "{ref.get("name")}" not found')
        data = obj.get("data") or {}
        key = ref.get("key", "")
        if key not in data:
            if optional:
                return None
            what = "Secret" if kind == "secret" else "ConfigMap"
            raise ContainerConfigError(
                f"couldn't find key {key} in {what} {self.ns}/{ref.get('name')}"
            )
        value = data[key]
        return base64.b64decode(value).decode() if kind == "secret" else str(value)

    def build(self, container: Obj) -> dict[str, str]:
        env: dict[str, str] = {}
        if self.spec.get("enableServiceLinks", True):
            for svc in self.store.list(SERVICES, self.ns):
                ports = self.service_ports.get((self.ns, svc["metadata"]["name"])) or {}
                if not ports:
                    continue
                prefix = svc["metadata"]["name"].upper().replace("-", "_")
                first = next(iter(ports.values()))
                env[f"{prefix}_SERVICE_HOST"] = "127.0.0.1"
                env[f"{prefix}_SERVICE_PORT"] = str(first)
        env["KUBERNETES_SERVICE_HOST"], _, port = self.api_address.rpartition(":")
        env["KUBERNETES_SERVICE_PORT"] = port
        for source in container.get("envFrom") or []:
            prefix = source.get("prefix", "")
            for kind in ("configMap", "secret"):
                ref = source.get(f"{kind}Ref")
                if ref is None:
                    continue
                rt = SECRETS if kind == "secret" else CONFIGMAPS
                obj = self.store.get(rt, self.ns, ref.get("name", ""))
                if obj is None:
                    if ref.get("optional"):
                        continue
                    raise ContainerConfigError(f'{kind.lower()} "{ref.get("name")}" not found')
                for k, v in (obj.get("data") or {}).items():
                    env[prefix + k] = base64.b64decode(v).decode() if kind == "secret" else v
        for item in container.get("env") or []:
            if "value" in item:
                env[item["name"]] = _expand(str(item["value"]), env)
                continue
            source = item.get("valueFrom") or {}
            value: str | None = None
            if "secretKeyRef" in source:
                value = self._lookup("secret", source["secretKeyRef"])
            elif "configMapKeyRef" in source:
                value = self._lookup("configmap", source["configMapKeyRef"])
            elif "fieldRef" in source:
                value = self._field_ref(source["fieldRef"].get("fieldPath", ""))
            elif "resourceFieldRef" in source:
                res = source["resourceFieldRef"].get("resource", "")
                kind, _, name = res.partition(".")
                raw = ((container.get("resources") or {}).get(kind) or {}).get(name)
                value = str(int(quantity.parse(raw))) if raw is not None else "0"
            if value is not None:
                env[item["name"]] = value
            elif "value" not in item and not source:
                env[item["name"]] = ""
        return env

    def _field_ref(self, path: str) -> str:
        pod = self.store.get(PODS, self.ns, self.name) or {"metadata": {}}
        values = {
            "metadata.name": self.name,
            "metadata.namespace": self.ns,
            "metadata.uid": self.uid,
            "spec.nodeName": self.node,
            "spec.serviceAccountName": self.spec.get("serviceAccountName", "default"),
            "status.podIP": self.pod_ip,
            "status.hostIP": self.node,
        }
        if path in values:
            return str(values[path])
        if path.startswith("metadata.labels['"):
            return str((pod["metadata"].get("labels") or {}).get(path[17:-2], ""))
        if path.startswith("metadata.annotations['"):
            return str((pod["metadata"].get("annotations") or {}).get(path[22:-2], ""))
        return ""


def _expand(value: str, env: dict[str, str]) -> str:
    """``$(VAR)`` references to earlier variables, as the kubelet expands them."""
    for name, val in env.items():
        value = value.replace(f"$({name})", val)
    return value
