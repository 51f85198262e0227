"""Queue trigger polling and queue output bindings over Azure Storage queues (Azurite locally)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import math
import re
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from typing import Any

import azure.functions as func
from azure.core.exceptions import AzureError, ResourceExistsError
from azure.functions.queue import QueueMessage
from azure.storage.queue import QueueMessage as StorageMessage
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from .config import AppSettings, HostStartupError, QueueOptions
from .functions import Binding, LoadedFunction

log = logging.getLogger("funchost")

DEFAULT_CONNECTION = "AzureWebJobsStorage"
# The newest API version Azurite 3.35 accepts without --skipApiVersionCheck.
EMULATOR_API_VERSION = "2025-11-05"
# Like the host: a message is hidden for 10 minutes while its invocation runs.
PROCESSING_VISIBILITY = timedelta(minutes=10)
MIN_POLLING_INTERVAL = 0.1
_QUEUE_NAME = re.compile(r"^(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$")


def queue_name(binding: Binding, function: str) -> str:
    """Lower-cased and validated, as the Storage extension normalizes queue names."""
    name = str(binding.get("queueName") or "").lower()
    if not _QUEUE_NAME.match(name):
        raise HostStartupError(
            f"Function '{function}', binding '{binding.name}': queue name "
            f"{name!r} is invalid (3-63 of a-z, 0-9 and single hyphens)"
        )
    return name


def connection_string(binding: Binding, function: str, settings: AppSettings) -> str:
    """The host looks up `connection`, then `AzureWebJobs<connection>`."""
    setting = binding.get("connection") or DEFAULT_CONNECTION
    value = settings.get(setting) or settings.get(f"AzureWebJobs{setting}")
    if not value:
        identity = any(name.startswith(f"{setting}__") for name in settings.values)
        raise HostStartupError(
            f"Function '{function}', binding '{binding.name}': app setting "
            f"{setting!r} (the storage connection string) is not set"
            + (
                f"; this local host does not take the identity form ({setting}__*): "
                "use a connection string (Azurite) locally"
                if identity
                else ""
            )
        )
    return value


def encode(data: str | bytes, encoding: str) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if encoding == "base64":
        return base64.b64encode(raw).decode("ascii")
    return raw.decode("utf-8") if isinstance(data, bytes) else data


def decode(text: str, encoding: str) -> bytes:
    """Message text to the bytes the function sees; ValueError if base64 is expected but absent."""
    if encoding == "base64":
        try:
            return base64.b64decode(text, validate=True)
        except binascii.Error as exc:
            raise ValueError(str(exc)) from exc
    return text.encode("utf-8")


def _output_messages(value: Any) -> list[str | bytes]:
    items: Iterable[Any] = value if isinstance(value, (list, tuple)) else [value]
    messages: list[str | bytes] = []
    for item in items:
        if isinstance(item, func.QueueMessage):
            item = item.get_body()
        if not isinstance(item, (str, bytes)):
            raise TypeError(
                f"a queue output takes str, bytes, QueueMessage or a list of them, not {type(item).__name__}"
            )
        messages.append(item)
    return messages


class QueueConnections:
    """One client per connection string; queues are created on first use, as the host does."""

    def __init__(self, settings: AppSettings, encoding: str) -> None:
        self._settings = settings
        self._encoding = encoding
        self._services: dict[str, QueueServiceClient] = {}
        self._created: set[tuple[str, str]] = set()

    def queue(self, connection: str, name: str) -> QueueClient:
        service = self._services.get(connection)
        if service is None:
            # Pinned for the emulator so an Azurite started without --skipApiVersionCheck works.
            emulator = "UseDevelopmentStorage=true" in connection or "devstoreaccount1" in connection
            options: dict[str, Any] = {"api_version": EMULATOR_API_VERSION} if emulator else {}
            # Retry briefly: locally an unreachable emulator should surface in seconds, not minutes.
            service = QueueServiceClient.from_connection_string(
                connection, initial_backoff=1, increment_base=2, retry_total=2, **options
            )
            self._services[connection] = service
        return service.get_queue_client(name)

    async def ensure(self, connection: str, name: str) -> QueueClient:
        client = self.queue(connection, name)
        if (connection, name) not in self._created:
            try:
                await client.create_queue()
            except ResourceExistsError:
                pass
            self._created.add((connection, name))
        return client

    async def send_output(self, function: LoadedFunction, binding: Binding, value: Any) -> None:
        """Output handler for `queue` bindings: one message per item, encoded per host.json."""
        if value is None:
            return
        client = await self.ensure(
            connection_string(binding, function.name, self._settings), queue_name(binding, function.name)
        )
        for message in _output_messages(value):
            await client.send_message(encode(message, self._encoding))

    async def close(self) -> None:
        for service in self._services.values():
            await service.close()
        self._services.clear()


Invoke = Callable[[LoadedFunction, Any, str], Awaitable[Any]]


class QueuePoller:
    """Feeds one queue-triggered function: receive, invoke, then delete, retry or poison."""

    def __init__(
        self,
        function: LoadedFunction,
        connections: QueueConnections,
        connection: str,
        options: QueueOptions,
        processing_visibility: timedelta,
        invoke: Invoke,
        spawn: Callable[[Awaitable[None]], asyncio.Task[None]],
    ) -> None:
        self.function = function
        self.queue_name = queue_name(function.trigger, function.name)
        self.poison_name = f"{self.queue_name}-poison"
        self._connections = connections
        self._connection = connection
        self._options = options
        self._processing_visibility = math.ceil(processing_visibility.total_seconds())
        self._invoke = invoke
        self._spawn = spawn
        self._in_flight: set[asyncio.Task[None]] = set()

    async def prepare(self) -> None:
        await self._connections.ensure(self._connection, self.queue_name)

    async def run(self, stopping: asyncio.Event) -> None:
        client = self._connections.queue(self._connection, self.queue_name)
        delay = MIN_POLLING_INTERVAL
        max_delay = self._options.max_polling_interval.total_seconds()
        while not stopping.is_set():
            # Fetch the next batch only once the current one is down to newBatchThreshold.
            while len(self._in_flight) > self._options.new_batch_threshold:
                await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)
            messages = await self._receive(client)
            for message in messages:
                task = self._spawn(self._process(client, message))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
            if messages:
                delay = MIN_POLLING_INTERVAL
                continue
            # Idle: back off exponentially up to maxPollingInterval.
            try:
                await asyncio.wait_for(stopping.wait(), delay)
            except TimeoutError:
                pass
            delay = min(delay * 2, max_delay)

    async def _receive(self, client: QueueClient) -> list[StorageMessage]:
        try:
            pages = client.receive_messages(
                messages_per_page=self._options.batch_size,
                max_messages=self._options.batch_size,
                visibility_timeout=self._processing_visibility,
            )
            return [message async for message in pages]
        except AzureError as exc:
            log.warning("Polling queue '%s' for 'Functions.%s' failed: %s", self.queue_name, self.function.name, exc)
            return []

    async def _process(self, client: QueueClient, message: StorageMessage) -> None:
        try:
            body = decode(message.content or "", self._options.message_encoding)
        except ValueError:
            # Retrying cannot fix the encoding, so the Storage extension poisons it at once.
            log.error(
                "Message '%s' on queue '%s' is not valid base64 (host.json "
                "extensions.queues.messageEncoding is 'base64'). Moving message to queue "
                "'%s'.",
                message.id,
                self.queue_name,
                self.poison_name,
            )
            await self._poison(client, message)
            return
        trigger = QueueMessage(
            id=message.id,
            body=body,
            dequeue_count=message.dequeue_count,
            pop_receipt=message.pop_receipt,
            insertion_time=message.inserted_on,
            expiration_time=message.expires_on,
            time_next_visible=message.next_visible_on,
        )
        reason = f"New queue message detected on '{self.queue_name}'."
        try:
            await self._invoke(self.function, trigger, reason)
        except Exception:  # already logged by the invoker
            await self._failed(client, message)
            return
        await self._settle(client.delete_message(message.id, message.pop_receipt), message)

    async def _failed(self, client: QueueClient, message: StorageMessage) -> None:
        if (message.dequeue_count or 0) >= self._options.max_dequeue_count:
            log.warning(
                "Message has reached MaxDequeueCount of %d. Moving message to queue '%s'.",
                self._options.max_dequeue_count,
                self.poison_name,
            )
            await self._poison(client, message)
            return
        retry_after = math.ceil(self._options.visibility_timeout.total_seconds())
        await self._settle(
            client.update_message(message.id, message.pop_receipt, visibility_timeout=retry_after), message
        )

    async def _poison(self, client: QueueClient, message: StorageMessage) -> None:
        # The original text, still encoded, so it can be moved back to the queue unchanged.
        # The original is deleted only once the copy exists: a message is never lost.
        try:
            poison = await self._connections.ensure(self._connection, self.poison_name)
            await poison.send_message(message.content or "")
        except AzureError as exc:
            log.error(
                "Could not write message '%s' to '%s' (it stays on '%s'): %s",
                message.id,
                self.poison_name,
                self.queue_name,
                exc,
            )
            return
        await self._settle(client.delete_message(message.id, message.pop_receipt), message)

    async def _settle(self, operation: Awaitable[Any], message: StorageMessage) -> None:
        try:
            await operation
        except AzureError as exc:
            # The message reappears after its visibility timeout: processed twice, never lost.
            log.warning("Updating message '%s' on queue '%s' failed: %s", message.id, self.queue_name, exc)
