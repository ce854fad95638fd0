"""Cloud adapters."""
