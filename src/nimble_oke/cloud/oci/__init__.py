"""The OCI adapter: the CloudProvider protocol over the real OCI SDK (imported lazily)."""
