"""Profiling: bench bundles, the one runner script, and running it on this host (boards and QEMU reuse it)."""
