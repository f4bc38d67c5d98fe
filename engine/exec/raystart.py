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
    # Ray's servers run whatever code reaches them and listen on every interface even when told
    # 127.0.0.1 (tests/test_exposure.py): its token authentication is the guard. Ray reads the
    # mode once, when it is imported, so it is set before the import; with no token on disk
    # (a fresh machine) Ray then writes one for the cluster it starts.
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - ray is a declared dependency
        raise ExecutorError("the Ray executor needs the `ray` package: pip install 'ray>=2.40'") from exc
    _refresh_auth_mode()
    return ray


def _refresh_auth_mode() -> None:
    """Make an already-imported Ray see RAY_AUTH_MODE as the environment has it now.

    Ray caches its config when it is first imported; a program (or test) that imported Ray
    before us would otherwise start servers that demand a token while its own client sends none.
    """
    try:
        from ray._private.authentication.authentication_token_setup import (
            AuthenticationMode,
            get_authentication_mode,
        )
        from ray._raylet import AuthenticationTokenLoader, Config
    except ImportError:  # pragma: no cover - another Ray layout: nothing cached to refresh
        return
    wanted = os.environ.get("RAY_AUTH_MODE", "").lower() == "token"
    if wanted != (get_authentication_mode() == AuthenticationMode.TOKEN):
        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()


def ensure_ray(spec: ExecutorSpec) -> Any:
    """Connect to the cluster at spec.address, or start a local Ray, once per process."""
    ray = _ray()
    if not ray.is_initialized():
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
