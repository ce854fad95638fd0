"""One in-process OCI simulator (two regions) for the model repository tests; each test uses
its own bucket. The SDK talks to it with real request signing."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from nimble_oke.cloud.oci.provider import fast_retry_strategy
from nimble_oke.services.models import Storage
from nimble_oke.sim.oci import OciSimulator

_buckets = itertools.count(1)


@pytest.fixture(scope="module")
def sim() -> Iterator[OciSimulator]:
    with OciSimulator(time_scale=600, seed=3) as simulator:
        yield simulator


@pytest.fixture
def storage(sim: OciSimulator) -> Iterator[Storage]:
    with Storage(
        config=sim.oci_config(),
        compartment_id=sim.compartment_id,
        endpoints=dict(sim.endpoints),
        retry_strategy=fast_retry_strategy(),
    ) as st:
        yield st


@pytest.fixture
def bucket() -> str:
    return f"models-{next(_buckets)}"
