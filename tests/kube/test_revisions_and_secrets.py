"""The rollback data path (store revisions → values → re-apply) and the NGC key's path:
it reaches the Secret and the NIM container, and nothing else."""

from __future__ import annotations

import base64
import json

import pytest

from nimble_oke.errors import ConfigError
from nimble_oke.kube.render import to_yaml
from nimble_oke.services.chart_ops import revision_values
from nimble_oke.state.store import StateStore

from .conftest import NAMESPACE, NGC_KEY, SESSION, Deployer


def _service(d: Deployer) -> dict[str, object]:
    services = d.kube.objects("Service", NAMESPACE)
    assert len(services) == 1
    return services[0]


def test_rollback_reapplies_the_previous_revision(deployer: Deployer) -> None:
    deployer.secrets()
    with StateStore() as store:
        old_values = deployer.values()
        old = deployer.apply(deployer.render(old_values))
        store.add_revision(SESSION, old.manifest_hash, json.dumps(old_values, sort_keys=True))
        new_values = deployer.values(
            {"service": {"type": "ClusterIP"}, "monitoring": {"serviceMonitor": {"enabled": True}}}
        )
        new = deployer.apply(deployer.render(new_values))
        store.add_revision(SESSION, new.manifest_hash, json.dumps(new_values, sort_keys=True))
        assert old_values["service"]["type"] == "LoadBalancer"  # nimble's default
        assert _service(deployer)["spec"]["type"] == "ClusterIP"  # type: ignore[index]
        assert deployer.kube.objects("ServiceMonitor", NAMESPACE)

        number, values = revision_values(store.revisions(SESSION), None)
        assert number == 1
        assert values == old_values
        back = deployer.apply(deployer.render(values))
        assert revision_values(store.revisions(SESSION), 2) == (2, new_values)

    assert back.manifest_hash == old.manifest_hash
    assert any(p.startswith("ServiceMonitor/") for p in back.pruned)
    assert not deployer.kube.objects("ServiceMonitor", NAMESPACE)
    assert _service(deployer)["spec"]["type"] == "LoadBalancer"  # type: ignore[index]


def test_revision_values_refuses_what_it_cannot_roll_back_to() -> None:
    with pytest.raises(ConfigError, match="no applied revisions"):
        revision_values([], None)
    only = [{"revision": 1, "values_json": "{}"}]
    with pytest.raises(ConfigError, match="nothing to roll back to"):
        revision_values(only, None)
    with pytest.raises(ConfigError, match="applied revisions: 1"):
        revision_values(only, 7)


def test_ngc_key_only_in_its_secrets(deployer: Deployer) -> None:
    manifests = deployer.deploy()
    result = deployer.wait()
    assert result.downloaded  # NIM got the key (from the Secret) and used it
    with StateStore() as store:
        values = deployer.values()
        store.add_revision(SESSION, "h", json.dumps(values, sort_keys=True))
        stored = json.dumps(store.revisions(SESSION))
        db_path = store.path
    assert NGC_KEY not in to_yaml(manifests)
    assert NGC_KEY not in json.dumps(values)
    assert NGC_KEY not in stored
    assert NGC_KEY.encode() not in db_path.read_bytes()

    lines = deployer.kube.logs(NAMESPACE, result.pod, "nim")
    assert any("Model download complete" in line for line in lines)
    assert not [line for line in lines if NGC_KEY in line]
    assert not [
        line for line in deployer.client.log(result.pod, namespace=NAMESPACE) if NGC_KEY in line
    ]

    # Every object in the namespace except the two Secrets is free of the key, in any form.
    encoded = base64.b64encode(NGC_KEY.encode()).decode()
    for kind in (
        "Pod",
        "Deployment",
        "ReplicaSet",
        "Service",
        "ConfigMap",
        "Event",
        "ServiceAccount",
    ):
        text = json.dumps(deployer.kube.objects(kind, NAMESPACE))
        assert NGC_KEY not in text and encoded not in text, kind
    secrets = {s["metadata"]["name"]: s for s in deployer.kube.objects("Secret", NAMESPACE)}
    assert set(secrets) == {"ngc-api", "ngc-secret"}
    api_key = base64.b64decode(secrets["ngc-api"]["data"]["NGC_API_KEY"]).decode()
    assert api_key == NGC_KEY
    docker = json.loads(base64.b64decode(secrets["ngc-secret"]["data"][".dockerconfigjson"]))
    assert docker["auths"]["nvcr.io"]["username"] == "$oauthtoken"
    assert docker["auths"]["nvcr.io"]["password"] == NGC_KEY
