"""Helpers shared by the Kubernetes simulator tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lightkube import Client
from lightkube.codecs import load_all_yaml
from lightkube.resources.core_v1 import Event

from polling import wait_for

__all__ = [
    "apply_yaml",
    "echo_deployment",
    "events",
    "wait_for",
    "watch_until",
]  # wait_for: re-exported for the kube tests


def apply_yaml(client: Client, text: str, **kwargs: Any) -> list[Any]:
    return [client.apply(obj, **kwargs) for obj in load_all_yaml(text)]


def events(client: Client, namespace: str = "default", reason: str | None = None) -> list[Event]:
    found = list(client.list(Event, namespace=namespace))
    return [e for e in found if reason is None or e.reason == reason]


def echo_deployment(
    name: str = "echo",
    replicas: int = 1,
    env: str = "",
    extra: str = "",
    probes: str = "",
    volumes: str = "",
    mounts: str = "",
    image: str = "nimble-sim/http-echo:1.0",
) -> str:
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: default}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      {extra}
      containers:
      - name: app
        image: {image}
        ports: [{{containerPort: 8080, name: http}}]
        env: [{env}]
        {probes}
        volumeMounts: [{mounts}]
      volumes: [{volumes}]
"""


def watch_until(
    client: Client,
    resource: Any,
    done: Callable[[str, Any], bool],
    timeout: float = 20.0,
    **kwargs: Any,
) -> bool:
    """Consume ``client.watch(resource, **kwargs)`` on a thread until ``done(type, obj)``;
    False if that did not happen within ``timeout`` real seconds."""
    import threading

    finished = threading.Event()

    def run() -> None:
        for kind, obj in client.watch(resource, **kwargs):
            if done(kind, obj):
                finished.set()
                return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return finished.wait(timeout)
