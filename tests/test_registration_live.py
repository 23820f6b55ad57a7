"""Registration rushes over real HTTP against gunicorn with several worker processes.

Capacity is a property of the database transaction: 200 people pressing "register"
at the same instant for 20 places must leave exactly 20 confirmed, on SQLite and
on PostgreSQL, with no server errors.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from sciweek.extensions import db
from sciweek.models import Activity, Registration
from sciweek.tokens import hash_secret

from .conftest import Factory, local
from .live_server import LiveServer, csrf_session

ATTEMPTS = 200
PLACES = 20


def make_open_activity(waitlist: bool, places: int = PLACES) -> int:
    factory = Factory()
    activity = factory.activity(
        title="抢票活动",
        capacity=places,
        waitlist_enabled=waitlist,
        sessions=[(local(2099, 6, 1, 9), local(2099, 6, 1, 11))],
    )
    activity_id = activity.id
    # Leave no transaction open: on SQLite an open one would hold the write lock.
    db.session.remove()
    db.engine.dispose()
    return activity_id


def rush(server: LiveServer, activity_id: int, phones: list[str]) -> list:
    """Every client loads the page first, then all submit at the same instant."""
    page = f"{server.url}/activities/{activity_id}"
    with ThreadPoolExecutor(max_workers=50) as pool:
        prepared = list(pool.map(lambda _p: csrf_session(page), phones))
    barrier = threading.Barrier(len(phones), timeout=120)

    def submit(args):
        (session, token), phone = args
        barrier.wait()
        return session.post(
            f"{page}/register",
            data={"csrf_token": token, "name": f"用户{phone[-4:]}", "phone": phone},
            allow_redirects=False,
            timeout=120,
        )

    with ThreadPoolExecutor(max_workers=len(phones)) as pool:
        return list(pool.map(submit, zip(prepared, phones, strict=True)))


def status_counts(activity_id: int) -> dict[str, int]:
    db.session.expire_all()
    rows = db.session.execute(
        select(Registration.status, func.count())
        .where(Registration.activity_id == activity_id)
        .group_by(Registration.status)
    ).all()
    return dict(rows)


@pytest.mark.parametrize("waitlist", [True, False], ids=["waitlist", "no-waitlist"])
def test_rush_never_overbooks(live_database, tmp_path, waitlist):
    app, url = live_database
    activity_id = make_open_activity(waitlist)
    phones = [f"139{n:08d}" for n in range(ATTEMPTS)]
    with LiveServer(
        url, tmp_path / "server", workers=4, SCIWEEK_REGISTRATION_RATE_LIMIT="100000 per minute"
    ) as server:
        responses = rush(server, activity_id, phones)
        log = server.log()
    codes = [r.status_code for r in responses]
    assert not [c for c in codes if c >= 500], log[-3000:]
    counts = status_counts(activity_id)
    assert counts.get("confirmed") == PLACES
    activity = db.session.get(Activity, activity_id)
    assert activity.confirmed_count == PLACES
    if waitlist:
        assert counts.get("waitlisted") == ATTEMPTS - PLACES
        assert codes.count(303) == ATTEMPTS
    else:
        assert "waitlisted" not in counts
        assert codes.count(303) == PLACES
        assert codes.count(422) == ATTEMPTS - PLACES
        refused = [r for r in responses if r.status_code == 422]
        assert "名额已满" in refused[0].text


def test_cancellations_racing_registrations_lose_no_seat(live_database, tmp_path):
    app, url = live_database
    activity_id = make_open_activity(waitlist=True)
    with LiveServer(
        url, tmp_path / "server", workers=4, SCIWEEK_REGISTRATION_RATE_LIMIT="100000 per minute"
    ) as server:
        first = rush(server, activity_id, [f"137{n:08d}" for n in range(40)])
        tickets = [r.headers["Location"] for r in first]
        confirmed_phones = set(
            db.session.scalars(
                select(Registration.phone).where(
                    Registration.activity_id == activity_id, Registration.status == "confirmed"
                )
            )
        )
        db.session.remove()
        # Ten confirmed people cancel while thirty newcomers register, all at once.
        to_cancel = []
        for response, ticket in zip(first, tickets, strict=True):
            phone = response.request.body.split("phone=")[1][:11]
            if phone in confirmed_phones and len(to_cancel) < 10:
                to_cancel.append(ticket)
        assert len(to_cancel) == 10
        cancel_prepared = [csrf_session(server.url + t + "/cancel") for t in to_cancel]
        page = f"{server.url}/activities/{activity_id}"
        newcomers = [f"136{n:08d}" for n in range(30)]
        new_prepared = [csrf_session(page) for _ in newcomers]
        barrier = threading.Barrier(40, timeout=60)

        def cancel(args):
            (session, token), ticket = args
            barrier.wait()
            return session.post(
                server.url + ticket + "/cancel",
                data={"csrf_token": token},
                allow_redirects=False,
                timeout=60,
            )

        def register(args):
            (session, token), phone = args
            barrier.wait()
            return session.post(
                f"{page}/register",
                data={"csrf_token": token, "name": "新人", "phone": phone},
                allow_redirects=False,
                timeout=60,
            )

        with ThreadPoolExecutor(max_workers=40) as pool:
            futures = [pool.submit(cancel, a) for a in zip(cancel_prepared, to_cancel, strict=True)]
            futures += [pool.submit(register, a) for a in zip(new_prepared, newcomers, strict=True)]
            results = [f.result() for f in futures]
        log = server.log()
    assert all(r.status_code == 303 for r in results), log[-3000:]
    counts = status_counts(activity_id)
    assert counts == {"confirmed": PLACES, "waitlisted": 40 + 30 - PLACES - 10, "cancelled": 10}
    assert db.session.get(Activity, activity_id).confirmed_count == PLACES
    # The ten freed places went to the first ten people of the original waitlist,
    # not to the newcomers who arrived during the cancellations.
    promoted = db.session.scalars(
        select(Registration.phone).where(
            Registration.activity_id == activity_id,
            Registration.status == "confirmed",
            Registration.phone.like("136%"),
        )
    ).all()
    assert promoted == []


PAIRS = 200
PAIR_PLACES = 3


def _place_states(activity_id: int) -> tuple[list, int]:
    """Every registration (id, status, secret hash, promoted later) in id order, and the
    place count. "Promoted later": confirmed after it was created, from the waitlist."""
    rows = db.session.execute(
        select(
            Registration.id,
            Registration.status,
            Registration.secret_hash,
            Registration.confirmed_at > Registration.created_at,
        )
        .where(Registration.activity_id == activity_id)
        .order_by(Registration.id)
    ).all()
    count = db.session.scalar(select(Activity.confirmed_count).where(Activity.id == activity_id))
    # End the read at once: on SQLite an open transaction here could hold up the server.
    db.session.remove()
    return [tuple(r) for r in rows], count


def test_a_cancel_and_a_registration_at_once_keep_every_place_and_the_order(
    live_database, tmp_path
):
    """Issue 9.1: one cancel and one registration released together, 200 times over.

    The activity is full with nobody waiting. Whichever request gets the activity first,
    afterwards every place is taken and nobody is waiting: either the cancel freed the
    place and the newcomer took it, or the newcomer was waitlisted and the cancel handed
    the place straight to them. Never a free place beside a waitlisted newcomer (who
    would then be overtaken by the next registrant).
    """
    app, url = live_database
    activity_id = make_open_activity(waitlist=True, places=PAIR_PLACES)
    with LiveServer(
        url, tmp_path / "server", workers=4, SCIWEEK_REGISTRATION_RATE_LIMIT="100000 per minute"
    ) as server:
        page = f"{server.url}/activities/{activity_id}"
        registering, register_token = csrf_session(page)
        cancelling, cancel_token = csrf_session(page)  # one CSRF token per browser session
        secrets: dict[str, str] = {}  # secret hash -> secret

        def register(phone: str):
            response = registering.post(
                f"{page}/register",
                data={"csrf_token": register_token, "name": "报名人", "phone": phone},
                allow_redirects=False,
                timeout=60,
            )
            if response.status_code == 303:
                secret = response.headers["Location"].rsplit("/", 1)[1]
                secrets[hash_secret(secret)] = secret
            return response

        def cancel(secret: str):
            return cancelling.post(
                f"{server.url}/t/{secret}/cancel",
                data={"csrf_token": cancel_token},
                allow_redirects=False,
                timeout=60,
            )

        for n in range(PAIR_PLACES):
            assert register(f"135{n:08d}").status_code == 303
        rows, _count = _place_states(activity_id)
        orders = {"cancel first": 0, "registration first": 0}
        with ThreadPoolExecutor(max_workers=2) as pool:
            for pair in range(PAIRS):
                holder = next(r for r in rows if r[1] == "confirmed")  # the earliest
                barrier = threading.Barrier(2, timeout=60)

                def together(call, *args, barrier=barrier):
                    barrier.wait()
                    return call(*args)

                phone = f"136{pair:08d}"
                cancelled = pool.submit(together, cancel, secrets[holder[2]])
                registered = pool.submit(together, register, phone)
                responses = [cancelled.result(), registered.result()]
                assert [r.status_code for r in responses] == [303, 303], server.log()[-3000:]

                rows, count = _place_states(activity_id)
                confirmed = [r[0] for r in rows if r[1] == "confirmed"]
                waiting = [r[0] for r in rows if r[1] == "waitlisted"]
                state = f"after pair {pair + 1}: confirmed {confirmed}, waitlisted {waiting}"
                assert (len(confirmed), count) == (PAIR_PLACES, PAIR_PLACES), state
                # Nobody jumped the queue: every confirmed registration came before
                # every waitlisted one. Here the waitlist is empty after every pair.
                assert not waiting or max(confirmed) < min(waiting), state
                assert waiting == [], state
                newcomer = rows[-1]
                assert newcomer[1] == "confirmed", state
                # Waitlisted, then given the cancelled place: the registration came first.
                orders["registration first" if newcomer[3] else "cancel first"] += 1
        log = server.log()
    assert "Traceback" not in log, log[-3000:]
    print(orders)
    assert all(orders.values()), orders  # both interleavings really happened
