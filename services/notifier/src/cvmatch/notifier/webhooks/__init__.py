"""Webhook delivery primitives: egress policy, resolution, signing, one HTTP attempt, retry schedule.

Pure I/O helpers for the notifier service (no gRPC, Postgres or NATS here). A delivery attempt is::

    destination = await check_destination(url, policy, resolver)   # at registration, and ...
    headers = signature_headers(event.id, int(time.time()), event.body, secrets)
    result = await client.send(url, event.body, headers)           # ... re-checked inside send()
    decision = schedule.decide(attempt_number, result)
"""

from cvmatch.notifier.webhooks.client import AttemptError, AttemptResult, WebhookClient
from cvmatch.notifier.webhooks.egress import (
    CheckedDestination,
    EgressPolicy,
    InsecureWebhookURL,
    InvalidWebhookURL,
    PrivateWebhookURL,
    UnresolvableWebhookHost,
    WebhookDestinationError,
    address_denial,
    check_destination,
    parse_webhook_url,
)
from cvmatch.notifier.webhooks.payload import (
    PayloadError,
    WebhookEvent,
    batch_event,
    build_event,
    dumps,
    new_message_id,
)
from cvmatch.notifier.webhooks.resolver import (
    CallableResolver,
    IPAddress,
    ResolutionError,
    Resolver,
    StaticResolver,
    SystemResolver,
)
from cvmatch.notifier.webhooks.schedule import Decision, Outcome, RetrySchedule
from cvmatch.notifier.webhooks.signing import (
    InvalidSecret,
    SignatureVerificationError,
    XSignatureKey,
    decode_secret,
    generate_secret,
    sign,
    signature_headers,
    verify,
    verify_x_signature,
    x_signature,
)

__all__ = [
    "AttemptError",
    "AttemptResult",
    "CallableResolver",
    "CheckedDestination",
    "Decision",
    "EgressPolicy",
    "IPAddress",
    "InsecureWebhookURL",
    "InvalidSecret",
    "InvalidWebhookURL",
    "Outcome",
    "PayloadError",
    "PrivateWebhookURL",
    "ResolutionError",
    "Resolver",
    "RetrySchedule",
    "SignatureVerificationError",
    "StaticResolver",
    "SystemResolver",
    "UnresolvableWebhookHost",
    "WebhookClient",
    "WebhookDestinationError",
    "WebhookEvent",
    "XSignatureKey",
    "address_denial",
    "batch_event",
    "build_event",
    "check_destination",
    "decode_secret",
    "dumps",
    "generate_secret",
    "new_message_id",
    "parse_webhook_url",
    "sign",
    "signature_headers",
    "verify",
    "verify_x_signature",
    "x_signature",
]
