"""The built-in webhook plugin: tell a job's ``webhook_url`` how the job ended.

Requests follow the Standard Webhooks scheme (https://www.standardwebhooks.com/), so a
receiver can check them with that project's libraries or with :func:`verify`:

- headers ``webhook-id`` (the event id, the same on every retry), ``webhook-timestamp``
  (Unix seconds) and, when ``webhook_secret`` is set, ``webhook-signature``:
  ``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``;
- a small JSON body: event id, type, job id, state, time, and the error of a failed job.

Network errors, timeouts, 5xx and 429 are retried with exponential backoff and jitter, up to
``webhook_max_attempts`` requests; other answers (4xx, redirects) are final. The outcome is
recorded on the job (``Job.webhook``). Delivery runs as a background task of the process that
ended the job, so a slow or failing receiver never changes the job, nor delays heartbeats
or other jobs. Requests go through the URL guard's client
(:mod:`cesar_core.guarded_http`): to a checked address only, never to a private one unless
allowed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import random
import time
from collections.abc import Awaitable, Mapping
from datetime import UTC, datetime

from attrs import frozen

from ._version import __version__
from .errors import CesarError
from .events import JobEvent
from .fetch import (
    DEFAULT_MAX_URL_LENGTH,
    FetchPolicy,
    UnresolvableHostError,
    UrlRefusedError,
    parse_url,
    retryable_status,
)
from .hookspecs import hookimpl
from .jobs import DeliveryStatus, WebhookDelivery
from .protocols import JobStore
from .settings import Settings, secret_key

logger = logging.getLogger(__name__)

#: Retry delays never exceed this, whatever ``Retry-After`` asks for.
MAX_DELAY_SECONDS = 60.0
#: :func:`verify` refuses messages whose timestamp is further than this from now.
TOLERANCE_SECONDS = 300


class WebhookVerificationError(CesarError):
    """A webhook request is not signed with the expected secret, or is too old."""

    code = "webhook_invalid"


@frozen(kw_only=True)
class WebhookPolicy:
    """How webhooks are sent; built from :class:`Settings`."""

    secret: str | None = None
    max_attempts: int = 5
    timeout_seconds: float = 10.0
    backoff_seconds: float = 1.0
    allow_private: bool = False
    max_url_length: int = DEFAULT_MAX_URL_LENGTH

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookPolicy:
        return cls(
            secret=settings.webhook_secret,
            max_attempts=settings.webhook_max_attempts,
            timeout_seconds=settings.webhook_timeout,
            backoff_seconds=settings.webhook_backoff,
            allow_private=settings.allow_private_urls,
            max_url_length=settings.max_url_length,
        )


def payload(event: JobEvent) -> bytes:
    """The request body: small on purpose; the receiver fetches the job for the rest."""
    error = (
        None if event.error is None else {"code": event.error.code, "message": event.error.message}
    )
    body = {
        "id": event.id,
        "type": event.type.value,
        "job_id": event.job_id,
        "state": event.state.value,
        "timestamp": event.occurred_at.isoformat().replace("+00:00", "Z"),
        "error": error,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for one request."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: float = TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Check a received webhook; raise :class:`WebhookVerificationError` if it is not ours.

    ``headers`` must be looked up case-insensitively as received (any HTTP framework's
    header mapping does). Checking the timestamp stops an old request from being replayed.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        message_id = lowered["webhook-id"]
        timestamp = int(lowered["webhook-timestamp"])
        signatures = lowered["webhook-signature"].split()
    except (KeyError, ValueError):
        raise WebhookVerificationError(
            "The request lacks webhook-id, webhook-timestamp or webhook-signature.",
            hint="Check that the sender has a webhook secret configured.",
        ) from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookVerificationError(
            f"The webhook timestamp is {current - timestamp:.0f} s away from now.",
            hint="Check the clocks of both machines; old requests are refused.",
        )
    expected = sign(secret, message_id, timestamp, body).encode()
    # Compared as bytes: compare_digest refuses str with non-ASCII characters (TypeError).
    if not any(hmac.compare_digest(expected, given.encode()) for given in signatures):
        raise WebhookVerificationError(
            "The webhook signature does not match.", hint="Check that both sides use one secret."
        )


def _headers(event: JobEvent, body: bytes, policy: WebhookPolicy) -> dict[str, str]:
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "user-agent": f"cesar/{__version__}",
        "webhook-id": event.id,
        "webhook-timestamp": str(timestamp),
    }
    if policy.secret:
        headers["webhook-signature"] = sign(policy.secret, event.id, timestamp, body)
    return headers


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _delay(policy: WebhookPolicy, attempt: int, asked: float | None) -> float:
    backoff = policy.backoff_seconds * 2 ** (attempt - 1) * random.uniform(0.5, 1.0)
    return float(min(MAX_DELAY_SECONDS, max(backoff, asked or 0.0)))


async def deliver(event: JobEvent, policy: WebhookPolicy) -> WebhookDelivery:
    """Send ``event`` to its webhook URL, retrying as the module says; never raises for
    the receiver's faults, it reports them in the returned delivery."""
    import httpx  # imported here: httpx pulls in click and rich when they are installed

    from .guarded_http import guarded_client

    assert event.webhook_url is not None
    url, body = event.webhook_url, payload(event)
    fetch = FetchPolicy(allow_private=policy.allow_private, max_url_length=policy.max_url_length)
    attempts, status_code, error = 0, None, None
    delivered = False
    # Each connection resolves the receiver's name once, and goes to the address that passed
    # the check: a name rebound to a private address after submission gets nowhere.
    async with guarded_client(fetch, policy.timeout_seconds) as client:
        while attempts < policy.max_attempts:
            attempts += 1
            asked = None
            try:
                async with asyncio.timeout(policy.timeout_seconds):
                    parse_url(url, fetch)
                    request = client.stream(
                        "POST", url, content=body, headers=_headers(event, body, policy)
                    )
                    async with request as response:  # the answer's body is never read
                        status_code = response.status_code
                        retry_after = response.headers.get("retry-after")
            except (UnresolvableHostError, httpx.TransportError, TimeoutError) as exc:
                status_code = None
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            except UrlRefusedError as exc:  # refused by policy: final
                status_code, error = None, str(exc)
                break
            else:
                if 200 <= status_code < 300:
                    delivered, error = True, None
                    break
                error = f"HTTP {status_code}"
                if not retryable_status(status_code):
                    break
                asked = _retry_after(retry_after)
            if attempts < policy.max_attempts:
                await asyncio.sleep(_delay(policy, attempts, asked))
    return WebhookDelivery(
        event_id=event.id,
        status=DeliveryStatus.DELIVERED if delivered else DeliveryStatus.FAILED,
        attempts=attempts,
        status_code=status_code,
        error=error,
        finished_at=datetime.fromtimestamp(time.time(), UTC),
    )


async def notify(event: JobEvent, store: JobStore, policy: WebhookPolicy) -> None:
    """Deliver ``event`` and record the outcome on its job."""
    delivery = await deliver(event, policy)
    if delivery.status is DeliveryStatus.DELIVERED:
        logger.info("job %s: webhook delivered (%d attempt(s))", event.job_id, delivery.attempts)
    else:
        logger.warning(
            "job %s: webhook failed after %d attempt(s): %s",
            event.job_id,
            delivery.attempts,
            delivery.error,
        )
    await store.record_webhook(event.job_id, delivery)


@hookimpl
def cesar_job_event(event: JobEvent, store: JobStore, settings: Settings) -> Awaitable[None] | None:
    if event.webhook_url is None:
        return None
    return notify(event, store, WebhookPolicy.from_settings(settings))
