"""Wake workers through the broker (Celery's transport, kombu, on RabbitMQ or Redis).

The database is the source of truth; a message only says "there is new work, look now". Each worker
binds its own auto-delete queue to one fanout exchange, so a submit wakes every worker at once and
SKIP LOCKED leasing spreads the tasks among them. A lost message costs at most one poll interval;
a duplicated one costs one empty lease query. A broker that is down never fails a request.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from celery import Celery
from kombu import Exchange, Queue
from kombu.mixins import ConsumerMixin

log = logging.getLogger(__name__)
EXCHANGE = Exchange("skyfleet.wake", type="fanout", durable=False, auto_delete=False)


def celery_app(broker_url: str) -> Celery:
    app = Celery("skyfleet", broker=broker_url, set_as_current=False)
    app.conf.broker_connection_timeout = 2
    app.conf.broker_connection_retry_on_startup = True
    return app


class Notifier:
    """Publishes wake-ups; failures are logged, never raised."""

    def __init__(self, broker_url: str) -> None:
        self._app = celery_app(broker_url)

    def publish(self, reason: str) -> bool:
        try:
            with self._app.producer_or_acquire() as producer:
                producer.publish({"reason": reason}, exchange=EXCHANGE, routing_key="wake",
                                 declare=[EXCHANGE], retry=False, serializer="json", expiration=60)
            return True
        except Exception as exc:
            log.warning("cannot publish a wake-up to the broker (%s); workers will poll", type(exc).__name__)
            return False

    def close(self) -> None:
        self._app.close()


class _Consumer(ConsumerMixin):  # type: ignore[misc]
    def __init__(self, connection: Any, on_wake: Callable[[], None]) -> None:
        self.connection = connection
        self._on_wake = on_wake
        self._queue = Queue(exchange=EXCHANGE, routing_key="wake", exclusive=True, auto_delete=True,
                            durable=False)

    def get_consumers(self, consumer_cls: Any, channel: Any) -> list[Any]:
        return [consumer_cls(queues=[self._queue], callbacks=[self._on_message], accept=["json"])]

    def _on_message(self, _body: Any, message: Any) -> None:
        message.ack()
        self._on_wake()


class WakeListener:
    """A background thread that calls ``on_wake`` for every wake-up (reconnects by itself)."""

    def __init__(self, broker_url: str, on_wake: Callable[[], None]) -> None:
        self._app = celery_app(broker_url)
        self._on_wake = on_wake
        self._consumer: _Consumer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._consumer = _Consumer(self._app.connection_for_read(), self._on_wake)
        self._thread = threading.Thread(target=self._consumer.run, name="skyfleet-wake", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._consumer is not None:
            self._consumer.should_stop = True
        if self._thread is not None:
            self._thread.join(5)
        self._app.close()
