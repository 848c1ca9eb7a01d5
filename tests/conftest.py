"""Shared test setup: run JAX on the CPU (tests are small and must not grab an accelerator)."""
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
