"""The job engine for real: Celery worker processes on the Redis broker, the fake gateway.

Redis is ``SCIWEEK_TEST_REDIS_URL`` (its database belongs to the tests); each test uses a
queue of its own. Outside CI a missing Redis skips these tests, in CI it fails them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis
from sqlalchemy import insert, select

from sciweek.extensions import db
from sciweek.manage.services import cancel_activity
from sciweek.models import OutboxMessage, OutboxStatus, Registration, RegistrationStatus
from sciweek.notifications import staff_mail
from sciweek.notifications.delivery import RECORD_EVERY

from .conftest import require_or_skip
from .fake_sms import FakeGateway
from .fake_smtp import FakeSmtpServer
from .waiting import wait_until

REDIS_URL = os.environ.get("SCIWEEK_TEST_REDIS_URL", "")
PROJECT_ROOT = Path(__file__).resolve().parents[1]
CELERY = str(Path(sys.executable).with_name("celery"))


def _redis_or_skip() -> redis.Redis:
    reachable = False
    if REDIS_URL:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
        try:
            reachable = bool(client.ping())
        except redis.RedisError:
            reachable = False
    require_or_skip(
        reachable, f"Redis not reachable (SCIWEEK_TEST_REDIS_URL={REDIS_URL or 'unset'})"
    )
    return client


@pytest.fixture
def queue():
    return f"sciweek-test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def broker(queue):
    client = _redis_or_skip()
    yield client
    client.delete(queue)
    client.close()


@pytest.fixture
def app_config(app_config, queue):
    # The test's own process publishes to the broker like the web application does.
    return {
        **app_config,
        "SCIWEEK_BROKER_URL": REDIS_URL or "redis://",
        "SCIWEEK_JOBS_QUEUE": queue,
    }


@pytest.fixture
def gateway():
    fake = FakeGateway().start()
    yield fake
    fake.stop()


class Worker:
    """``celery -A sciweek.worker worker`` (2 processes, with beat) in its own group."""

    def __init__(self, app, gateway: FakeGateway, tmp_path: Path, **settings: str):
        self.env = {
            **os.environ,
            "SCIWEEK_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "SCIWEEK_INSTANCE_PATH": app.instance_path,  # the same secret key
            "SCIWEEK_BROKER_URL": app.config["SCIWEEK_BROKER_URL"],
            "SCIWEEK_JOBS_QUEUE": app.config["SCIWEEK_JOBS_QUEUE"],
            "SCIWEEK_JOBS_SWEEP_SECONDS": "1",
            "SCIWEEK_SMS_BACKEND": "http",
            "SCIWEEK_SMS_HTTP_URL": gateway.url + "/send",
            "SCIWEEK_SMS_HTTP_KEY": gateway.key,
            "SCIWEEK_SMS_QUIET_HOURS": "off",
            "SCIWEEK_SMS_DAILY_CAP": "0",
            "SCIWEEK_SMS_TIMEOUT_SECONDS": "1",
            "SCIWEEK_SMS_STALE_SECONDS": "3",
            "SCIWEEK_SMS_RETRY_SECONDS": "1",
            **settings,
        }
        self.tmp_path = tmp_path
        self.process: subprocess.Popen | None = None
        self.runs = 0

    def start(self) -> Worker:
        self.runs += 1
        self.log = open(self.tmp_path / f"worker-{self.runs}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                CELERY,
                "-A",
                "sciweek.worker",
                "worker",
                "-B",
                "-s",
                str(self.tmp_path / f"beat-{self.runs}"),
                "--concurrency",
                "2",
                "--pool",
                "prefork",
                "-Q",
                self.env["SCIWEEK_JOBS_QUEUE"],
                "-n",
                f"{uuid.uuid4().hex[:8]}@test",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "WARNING",
            ],  # fmt: skip
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def kill(self) -> None:
        """SIGKILL the whole group (main process, pool processes, beat): no clean-up."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.log.close()

    def output(self) -> str:
        return "".join(
            p.read_text(errors="replace") for p in sorted(self.tmp_path.glob("worker-*.log"))
        )


@pytest.fixture
def worker_factory(app, gateway, tmp_path, broker):
    started: list[Worker] = []

    def make(**settings) -> Worker:
        worker = Worker(app, gateway, tmp_path, **settings)
        started.append(worker)
        return worker

    yield make
    for worker in started:
        worker.kill()


def _statuses() -> dict[str, int]:
    rows = db.session.execute(
        select(OutboxMessage.status, db.func.count()).group_by(OutboxMessage.status)
    ).all()
    db.session.rollback()  # SQLite: hold no lock while the worker writes
    return {str(status): n for status, n in rows}


def _fill(activity, n: int) -> list[str]:
    phones = [f"137{i:08d}" for i in range(n)]
    db.session.execute(
        insert(Registration),
        [
            {
                "activity_id": activity.id,
                "name": f"报名{i}",
                "phone": phone,
                "status": RegistrationStatus.CONFIRMED,
                "secret_hash": uuid.uuid4().hex + uuid.uuid4().hex,
                "short_code": f"{i:06d}",
            }
            for i, phone in enumerate(phones)
        ],
    )
    db.session.commit()
    return phones


def test_a_worker_killed_mid_batch_leaves_every_message_sent_exactly_once(
    make, gateway, worker_factory
):
    activity = make.activity(title="科普讲座", capacity=None)
    phones = _fill(activity, 200)
    gateway.delay = 0.01  # a batch takes a while: the kill lands in the middle
    cancel_activity(activity, "场地维修")
    db.session.commit()  # the dispatch job is published now, after commit
    worker = worker_factory().start()
    try:
        wait_until(lambda: len(gateway.delivered) >= 40, timeout=60, what="first deliveries")
    except TimeoutError:
        pytest.fail(worker.output())
    worker.kill()
    delivered_at_kill = len(gateway.delivered)
    assert delivered_at_kill < 200, "the worker finished before it could be killed"
    worker.start()  # restart: beat's sweep recovers claims and lost jobs
    try:
        wait_until(lambda: _statuses() == {"sent": 200}, timeout=90, what="all 200 sent")
    except TimeoutError:
        pytest.fail(f"{_statuses()}\n{worker.output()[-3000:]}")
    # Every phone got the cancellation exactly once.
    assert sorted(m["phone"] for m in gateway.delivered.values()) == phones
    assert all("场地维修" in m["text"] for m in gateway.delivered.values())
    # Requests beyond one per message: only answers not yet recorded when the worker died
    # (at most RECORD_EVERY per worker process), repeated under the same key.
    assert len(gateway.requests) - 200 <= 2 * RECORD_EVERY


def test_gateway_errors_are_retried_by_the_worker_then_failed(
    client, make, gateway, worker_factory
):
    activity = make.activity()
    worker_factory(SCIWEEK_SMS_MAX_ATTEMPTS="3").start()
    gateway.fail_next = 2  # two 500s, then the gateway recovers
    client.post(f"/activities/{activity.id}/register", data={"name": "甲", "phone": "13700000001"})
    wait_until(lambda: _statuses() == {"sent": 1}, timeout=60, what="sent after retries")
    message = db.session.scalar(select(OutboxMessage))
    assert message.attempts == 3
    assert message.last_error.startswith("HTTP 500")
    assert len(gateway.delivered) == 1
    db.session.rollback()
    gateway.fail_next = 100  # down for good
    client.post(f"/activities/{activity.id}/register", data={"name": "乙", "phone": "13700000002"})
    wait_until(
        lambda: _statuses() == {"sent": 1, "failed": 1}, timeout=60, what="failed after retries"
    )
    failed = db.session.scalar(
        select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.FAILED)
    )
    assert failed.attempts == 3
    assert failed.last_error.startswith("HTTP 500")
    assert failed.sealed is None
    assert len(gateway.delivered) == 1


@pytest.fixture
def smtp():
    server = FakeSmtpServer().start()
    yield server
    server.stop()


def test_a_worker_delivers_a_staff_email_to_the_smtp_server_after_a_4xx(make, worker_factory, smtp):
    worker_factory(
        SCIWEEK_MAIL_BACKEND="smtp",
        SCIWEEK_SMTP_HOST="127.0.0.1",
        SCIWEEK_SMTP_PORT=str(smtp.port),
        SCIWEEK_SMTP_STARTTLS="0",
        SCIWEEK_MAIL_FROM="科普活动周 <noreply@kp.example.gov.cn>",
    ).start()
    user = make.user("organizer")
    user.display_name, user.email = "张三", "zhang.san@example.gov.cn"
    db.session.commit()
    smtp.fail_next = 1  # greylisted once: 451
    link = "https://sciweek.example.cn/account/set-password/c2VjcmV0LXRva2Vu"
    staff_mail.enqueue_set_password_email(user, link, version=1)
    db.session.commit()  # the dispatch job is published now, after commit
    wait_until(lambda: _statuses() == {"sent": 1}, timeout=60, what="e-mail sent")
    [got] = smtp.received
    assert got.rcpt_tos == ["zhang.san@example.gov.cn"]
    assert got.message["Subject"] == "请设置您的账号密码"
    assert got.message["From"].addresses[0].display_name == "科普活动周"
    assert link in got.message.get_content()
    message = db.session.scalar(select(OutboxMessage))
    assert message.attempts == 2
    assert message.last_error.startswith("SMTP 451")
    assert message.sealed is None
