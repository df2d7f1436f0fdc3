"""JAX specifics."""

import jax


def device_kind():
    """Returns the platform JAX computes on: "cpu", "gpu" or "tpu"."""
    return jax.default_backend()
