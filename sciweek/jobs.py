"""Background jobs: Celery on Redis when ``SCIWEEK_BROKER_URL`` is set, else in-process.

A job is a plain function registered under a name with ``@job("sciweek.x.y")``; it runs
inside an application context and commits its own work. ``submit(app, name, *args)``
hands it to the broker (a Celery task of the same name, run by ``celery -A sciweek.worker
worker``), or, with no broker (``make run``), to one background thread of this process,
so that a request never waits for it. Periodic jobs are listed in ``SCHEDULE`` and run by
Celery beat (``celery -A sciweek.worker beat``, or ``worker -B`` on a small site).

Celery is set up for at-least-once delivery (``acks_late``, a task of a killed worker
goes back to the queue): jobs must be idempotent, and the notification jobs are, through
the outbox's claim on each message.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from celery import Celery, Task, shared_task
from celery.schedules import crontab
from flask import Flask

log = logging.getLogger(__name__)

_JOBS: dict[str, Callable] = {}


@dataclass(frozen=True)
class Periodic:
    name: str
    # Seconds, or a crontab (Asia/Shanghai: "daily at 18:00"), from the app's config.
    every: Callable[[Flask], float | crontab]


SCHEDULE: list[Periodic] = []


def job(name: str, *, every: Callable[[Flask], float | crontab] | None = None) -> Callable:
    """Register ``fn`` as the job ``name`` (and as a Celery task of that name); with
    ``every`` (seconds, or a ``crontab`` in Asia/Shanghai), beat runs it periodically."""

    def register(fn: Callable) -> Callable:
        _JOBS[name] = fn
        shared_task(name=name, ignore_result=True)(fn)
        if every is not None:
            SCHEDULE.append(Periodic(name, every))
        return fn

    return register


class _FlaskTask(Task):
    """Runs every task inside the Flask application's context."""

    flask_app: Flask

    def __call__(self, *args, **kwargs):
        with self.flask_app.app_context():
            return self.run(*args, **kwargs)


def init_app(app: Flask) -> Celery:
    """Make the Celery application of this Flask application (``app.extensions``)."""
    celery = Celery(app.import_name, task_cls=_FlaskTask)
    _FlaskTask.flask_app = app
    broker = app.config["SCIWEEK_BROKER_URL"]
    queue = app.config["SCIWEEK_JOBS_QUEUE"]
    celery.conf.update(
        broker_url=broker or "memory://",
        task_default_queue=queue,
        task_ignore_result=True,
        # A job is acknowledged when done, and one whose worker died goes back.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # The web process publishes once per transaction; a broker that is down must
        # not hold the request: fail at once, the periodic sweep catches up.
        task_publish_retry=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"socket_connect_timeout": 2, "socket_timeout": 5},
        broker_pool_limit=4,
        timezone="Asia/Shanghai",
        enable_utc=True,
        worker_hijack_root_logger=False,
        beat_schedule={
            periodic.name: {"task": periodic.name, "schedule": periodic.every(app)}
            for periodic in SCHEDULE
        },
    )
    celery.set_default()
    app.extensions["celery"] = celery
    app.extensions["sciweek_jobs"] = _InProcess(app)
    return celery


def submit(app: Flask, name: str, *args, countdown: float = 0) -> None:
    """Run job ``name`` soon (after ``countdown`` seconds), never in the caller's thread."""
    if app.config["SCIWEEK_BROKER_URL"]:
        try:
            app.extensions["celery"].send_task(
                name,
                args=list(args),
                countdown=countdown or None,
                queue=app.config["SCIWEEK_JOBS_QUEUE"],
            )
        except Exception:  # noqa: BLE001 - any broker failure: the sweep catches up
            log.warning("could not hand job %s to the broker; the sweep will retry", name)
        return
    if app.config.get("NOTIFICATIONS_DELIVER_AFTER_COMMIT", True):
        app.extensions["sciweek_jobs"].submit(name, args, countdown)


def run_now(app: Flask, name: str, *args):
    """Run job ``name`` here and now (the command line, tests)."""
    with app.app_context():
        return _JOBS[name](*args)


class _InProcess:
    """No broker: jobs run one at a time on a background thread of this process."""

    def __init__(self, app: Flask):
        self.app = app
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    def submit(self, name: str, args: tuple, countdown: float) -> None:
        if countdown > 0:
            timer = threading.Timer(countdown, self.submit, (name, args, 0))
            timer.daemon = True
            timer.start()
            return
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="sciweek-jobs")
            self._executor.submit(self._run, name, args)

    def _run(self, name: str, args: tuple) -> None:
        try:
            run_now(self.app, name, *args)
        except Exception:
            log.exception("job %s failed", name)
