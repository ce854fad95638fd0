"""Nimble OKE: NVIDIA NIM on Oracle Kubernetes Engine, from nothing to a benchmarked
endpoint and back, inside a budget."""

__version__ = "0.2.0"
