"""A local OCI that the real ``oci`` SDK talks to: identity, networking, Container Engine,
compute capacity and limits, block volumes, load balancers, with work requests, faults,
billing and persistence. See :class:`OciSimulator`."""

from nimble_oke.sim.oci.api import SimApi
from nimble_oke.sim.oci.faults import FaultPlan, FaultRule
from nimble_oke.sim.oci.hooks import NodeHooks
from nimble_oke.sim.oci.simulator import OciSimulator

__all__ = ["FaultPlan", "FaultRule", "NodeHooks", "OciSimulator", "SimApi"]
