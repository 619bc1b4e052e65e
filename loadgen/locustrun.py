"""The load process: locust as a library, headless, one process or a master and its workers.

    python -m loadgen.locustrun SPEC                       # every user in this process (a LocalRunner)
    python -m loadgen.locustrun SPEC --master N --port P   # a MasterRunner dispatching to N workers
    python -m loadgen.locustrun SPEC --worker --port P     # a WorkerRunner (on this machine or another)
    python -m loadgen.locustrun --check LOCUSTFILE         # does it import and define a User? (exit 2 if not)

Users fire locust request events; each is sent as a custom message (`resilience_request`) to the master (or to
itself, locally), which appends it to requests.jsonl, so every delivery is recorded once, by one writer,
whatever the number of processes. On SIGTERM the users stop committing and the deliveries in flight end (done,
or failed at their deadline), then the master writes locust's CSV statistics and HTML report and its CPU use
(process.json); workers write their own CPU use. Writes `state.json` with `running` once every user is spawned.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import signal
import sys
import time
from pathlib import Path
from typing import Any

from locust import User, stats
from locust.env import Environment
from locust.html import get_html_report
from locust.runners import STATE_CLEANUP, STATE_STOPPED, WORKER_REPORT_INTERVAL, MasterRunner, Runner
from locust.util.load_locustfile import load_locustfile

from foundation.waiting import wait_until
from kubeapi import connect
from loadgen.committer import Committer
from loadgen.spec import CHECK_EXIT, CSV_PREFIX, HTML, PROCESS, REQUESTS, STATE, LoadSpec
from loadgen.tracker import DeliveryTracker
from loadgen.users import World, api_class, team_classes

MESSAGE = "resilience_request"
log = logging.getLogger("load")


def check(path: str) -> str | None:
    """What is wrong with a locustfile (None: it imports and defines at least one User class)."""
    if not Path(path).is_file():
        return f"{path}: no such locustfile"
    try:
        classes, _shapes = load_locustfile(path)
    except BaseException as e:  # a locustfile may raise anything, SystemExit included
        return f"{path}: does not import: {type(e).__name__}: {e}".strip()
    if not any(not getattr(c, "abstract", False) for c in classes.values()):
        return f"{path}: defines no locust User class"
    return None


def user_classes(spec: LoadSpec, world: World) -> tuple[list[type[User]], int]:
    """The classes every process of the run builds alike (same names, so the master's dispatch fits), and the
    number of users: one per team, the API-pressure users, one (or fixed_count) per class of a locustfile."""
    classes = team_classes(world, spec.every, spec.teams)
    count = len(classes)
    if spec.api_users:
        classes.append(api_class(world, spec.api_users, spec.api_every))
        count += spec.api_users
    if spec.locustfile:
        own, _shapes = load_locustfile(spec.locustfile)
        for cls in own.values():
            if not cls.abstract:
                classes.append(cls)
                count += max(1, cls.fixed_count)
    return classes, count


def world_of(spec: LoadSpec) -> World:
    kube = connect(spec.kubeconfig, spec.context)
    git = Committer(spec.git)
    tracker = DeliveryTracker(kube, git, spec.teams, spec.flux_namespace)
    return World(kube, git, tracker, spec.flux_namespace, spec.namespace, spec.deadline)


def send_requests_to(runner: Runner) -> None:
    """Every request event, as one record to the writer (the master, or this process)."""

    def on_request(
        request_type: str,
        name: str,
        response_time: float,
        exception: BaseException | None = None,
        context: dict[str, Any] | None = None,
        **_kwargs: Any,
    ) -> None:
        record = {"type": request_type, "name": name, "ms": round(response_time, 3), "ended": time.time()}
        record["error"] = None if exception is None else str(exception)
        record.update({k: v for k, v in (context or {}).items() if k in ("team", "group", "instrument")})
        runner.send_message(MESSAGE, record)

    runner.environment.events.request.add_listener(on_request)


def write_requests_from(runner: Runner, out: Path) -> None:
    sink = (out / REQUESTS).open("a", buffering=1)

    def on_message(environment: Environment, msg: Any, **_kwargs: Any) -> None:
        sink.write(json.dumps(msg.data) + "\n")

    runner.register_message(MESSAGE, on_message)


def settle_on_stop(env: Environment, world: World, deadline: float, report: float = 0.0) -> None:
    """When the users stop, the deliveries in flight still end (done, or failed at their deadline) and are sent.
    A worker then waits `report` seconds for one more statistics report: it tells the master it stopped only
    after this, and the master ignores a stopped worker's reports."""

    def on_stop(**_kwargs: Any) -> None:
        world.settle(deadline + 1)
        time.sleep(report)

    env.events.test_stop.add_listener(on_stop)


def usage(started: float) -> dict[str, float]:
    """CPU seconds of this process and of its reaped children (git), and the wall time they were spent in."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "wall_seconds": round(time.monotonic() - started, 3),
        "cpu_seconds": round(own.ru_utime + own.ru_stime, 3),
        "children_cpu_seconds": round(children.ru_utime + children.ru_stime, 3),
    }


def write_json(path: Path, body: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(body, indent=2) + "\n")
    tmp.replace(path)


class Stop:
    """SIGTERM asks for a graceful stop: the handler only sets a flag, the main loop acts on it."""

    def __init__(self) -> None:
        self.requested = False
        signal.signal(signal.SIGTERM, self._set)
        signal.signal(signal.SIGINT, self._set)

    def _set(self, _signum: int, _frame: Any) -> None:
        self.requested = True

    def wait(self, runner: Runner) -> None:
        while not self.requested and runner.state not in (STATE_STOPPED, STATE_CLEANUP):
            time.sleep(0.2)  # gevent's sleep here: the users run meanwhile


def stop_timeout(spec: LoadSpec) -> float:
    """How long stopping may take: a team's task is one commit, but stopping waits for deliveries in flight (on
    a master: for its workers to report stopped, which it bounds by this plus 60 s)."""
    return spec.deadline + 10


def run_writer(spec: LoadSpec, out: Path, workers: int, port: int) -> int:
    """The local or master process: start every user, wait for SIGTERM, stop gracefully, write the reports."""
    started = time.monotonic()
    stop = Stop()
    world = world_of(spec)
    classes, count = user_classes(spec, world)
    env = Environment(user_classes=classes, stop_timeout=stop_timeout(spec))
    runner: Runner
    if workers:
        runner = env.create_master_runner("127.0.0.1", port)
    else:
        runner = env.create_local_runner()
        send_requests_to(runner)
        world.tracker.start()
    write_requests_from(runner, out)
    settle_on_stop(env, world, spec.deadline)
    if isinstance(runner, MasterRunner):
        master = runner
        wait_until(lambda: master.worker_count >= workers, 60, f"{workers} locust worker(s) to connect", interval=0.2)
    csv = stats.StatsCSVFileWriter(env, stats.PERCENTILES_TO_REPORT, str(out / CSV_PREFIX))
    runner.greenlet.spawn(csv.stats_writer)
    runner.start(count, spawn_rate=count)
    wait_until(lambda: runner.user_count >= count, 60, f"{count} users to be spawned", interval=0.1)
    write_json(out / STATE, {"state": "running", "users": count, "workers": workers, "pid": os.getpid()})
    stop.wait(runner)
    log.info("stopping: the deliveries in flight end (up to %.0fs)", spec.deadline)
    runner.stop()
    time.sleep(stats.CSV_STATS_INTERVAL_SEC + 0.2)  # one more CSV write with the last requests
    (out / HTML).write_text(get_html_report(env, show_download_link=False))
    runner.quit()
    csv.close_files()
    if not workers:
        world.tracker.stop()
    world.git.close()  # reaped: its CPU (and its git commands') counts in ours
    write_json(out / PROCESS, usage(started))
    write_json(out / STATE, {"state": "stopped", "users": count, "workers": workers, "pid": os.getpid()})
    return 0


def run_worker(spec: LoadSpec, out: Path, port: int) -> int:
    """A worker: runs the users the master dispatches to it until the master quits or the harness stops it (by
    then every delivery was sent: a worker reports it stopped only after its deliveries in flight ended)."""
    started = time.monotonic()
    stop = Stop()
    world = world_of(spec)
    classes, _count = user_classes(spec, world)
    env = Environment(user_classes=classes, stop_timeout=stop_timeout(spec))
    runner = env.create_worker_runner("127.0.0.1", port)
    send_requests_to(runner)
    settle_on_stop(env, world, spec.deadline, report=WORKER_REPORT_INTERVAL + 0.5)
    world.tracker.start()
    while not stop.requested and not runner.greenlet.join(timeout=0.2):
        pass
    world.tracker.stop()
    world.git.close()
    write_json(out / f"process-worker-{os.getpid()}.json", usage(started))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadgen.locustrun", description=__doc__)
    parser.add_argument("spec", nargs="?", type=Path)
    parser.add_argument("--check", metavar="LOCUSTFILE")
    parser.add_argument("--master", type=int, default=0, metavar="WORKERS")
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--port", type=int, default=5557)
    args = parser.parse_args(argv)
    if args.check:
        problem = check(args.check)
        if problem:
            print(problem, file=sys.stderr)
            return CHECK_EXIT
        return 0
    if args.spec is None:
        parser.error("a SPEC file is required")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    spec = LoadSpec.read(args.spec)
    out = Path(spec.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.worker:
        return run_worker(spec, out, args.port)
    return run_writer(spec, out, args.master, args.port)


if __name__ == "__main__":
    sys.exit(main())
