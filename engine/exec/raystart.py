"""Starting or joining Ray, torch-free: the engine's supervisor joins Ray for its jobs
without loading what the jobs run (engine/exec/ray.py).
"""

from __future__ import annotations

import os
from typing import Any

from core.executor import ExecutorError, ExecutorSpec

LOCAL_RAY_HOST = "127.0.0.1"


def _ray():
    # Ray is imported on first use: it is slow to import and the local executor never needs it.
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - ray is a declared dependency
        raise ExecutorError("the Ray executor needs the `ray` package: pip install 'ray>=2.40'") from exc
    return ray


def ensure_ray(spec: ExecutorSpec) -> Any:
    """Connect to the cluster at spec.address, or start a local Ray, once per process."""
    ray = _ray()
    if not ray.is_initialized():
        # Ray's servers run whatever code reaches them and listen on every interface even when
        # told 127.0.0.1 (tests/test_exposure.py): its token authentication is the guard.
        os.environ.setdefault("RAY_AUTH_MODE", "token")
        kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False,
                                      configure_logging=False)
        try:
            if spec.address:
                ray.init(address=spec.address, **kwargs)
            else:
                # A Ray started here listens on loopback only: its servers run code unauthenticated.
                ray.init(num_cpus=spec.local_cpus, _node_ip_address=LOCAL_RAY_HOST, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = spec.address or "a local Ray"
            raise ExecutorError(f"cannot start or reach {where}: {str(exc).splitlines()[0]}") from exc
    return ray
