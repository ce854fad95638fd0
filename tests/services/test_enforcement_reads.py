"""When `status`/`cost` reach for the in-cluster lease (services/enforcement.py), and what
they say when the cluster cannot be reached. The path through a running simulator is in
tests/lifecycle/test_cli_sim_target.py; this covers the decisions and the failures."""

from __future__ import annotations

from pathlib import Path

from nimble_oke.domain.cost import Meter
from nimble_oke.errors import ProviderError
from nimble_oke.services.costs import session_accrual
from nimble_oke.services.enforcement import ENFORCED, enforcement_due, enforcement_note
from nimble_oke.state.store import SessionRecord, StateStore

START = 1_800_000_000.0
GPU = Meter("gpu.a10", 1, "GPU A10")


def _journal(home: Path, *, budget: float = 10.0, hours: float = 2.0) -> StateStore:
    store = StateStore(home, now=lambda: START)
    store.upsert_session(
        "s",
        target="oci",
        status="ready",
        config={"cluster": {"name": "s"}},
        lease_expires_at=START + hours * 3600,
        budget_usd=budget,
    )
    store.record_created("s", "cluster", "ocid1.cluster.oc1..c", name="s", created_at=START)
    store.record_created(
        "s", "node_pool", "ocid1.nodepool.oc1..p", name="s-gpu", meters=[GPU], created_at=START
    )
    kubeconfig = home / "sessions" / "s" / "kubeconfig"
    kubeconfig.parent.mkdir(parents=True, exist_ok=True)
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    return store


def _record(store: StateStore) -> SessionRecord:
    record = store.session("s")
    assert record is not None
    return record


def test_the_lease_is_read_only_once_the_watchdog_can_have_acted(tmp_path: Path) -> None:
    with _journal(tmp_path) as store:
        record = _record(store)
        assert not enforcement_due(record, accrued_usd=1.0, now=START + 3600)
        assert enforcement_due(record, accrued_usd=1.0, now=START + 2 * 3600)  # lease over
        assert enforcement_due(record, accrued_usd=9.9, now=START + 600)  # budget (2% margin)
        assert not enforcement_due(record, accrued_usd=9.7, now=START + 600)


def test_before_the_lease_ends_status_stays_offline(tmp_path: Path) -> None:
    reached: list[str] = []

    def target_for(_home: Path, record: SessionRecord) -> None:
        reached.append(record.name)

    with _journal(tmp_path) as store:
        priced = session_accrual(
            store, _record(store), clock=lambda: START + 3600, target_for=target_for
        )
        accrual, note = priced.accrual, priced.note
    assert reached == [] and note == ""
    assert accrual.running_usd_per_hour > 1.0


def test_an_unreachable_cloud_is_said_and_the_journal_left_as_it_was(tmp_path: Path) -> None:
    def target_for(_home: Path, _record: SessionRecord) -> None:
        raise ProviderError("could not reach https://containerengine.example: timed out")

    with _journal(tmp_path) as store:
        later = START + 3 * 3600
        priced = session_accrual(store, _record(store), now=later, target_for=target_for)
        accrual, note = priced.accrual, priced.note
        assert "could not be read" in note and "timed out" in note
        assert "counted as running" in note
        assert accrual.running_usd_per_hour > 1.0
        (pool,) = [r for r in store.resources("s") if r.kind == "node_pool"]
        assert list(pool.meters) == [GPU]


def test_the_note_lasts_while_the_pool_sits_at_zero(tmp_path: Path) -> None:
    with _journal(tmp_path) as store:
        assert enforcement_note(store, "s") == ""
        bounded = Meter(GPU.price_key, GPU.quantity, GPU.item, until=START + 3600)
        store.set_meters("s", "node_pool", "ocid1.nodepool.oc1..p", [bounded])
        store.event("s", "WARNING", f"{ENFORCED} s-gpu to zero at … (lease expired)")
        assert enforcement_note(store, "s").startswith(ENFORCED)
        # `up` scaled it back: the GPU bills again and the note is gone
        resumed = Meter(GPU.price_key, GPU.quantity, GPU.item, since=START + 7200)
        store.set_meters("s", "node_pool", "ocid1.nodepool.oc1..p", [bounded, resumed])
        assert enforcement_note(store, "s") == ""
