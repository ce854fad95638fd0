"""Kubernetes adapters: chart rendering, apply, waits and diagnostics."""
