"""Shared test setup: run JAX on the CPU (tests are small and must not grab an accelerator), and keep the
persistent compilation cache of the runs tests start in the temporary directory, not the user's cache."""
import os
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAXRL_COMPILE_CACHE", os.path.join(tempfile.gettempdir(), "jaxrl-tests-xla-cache"))
