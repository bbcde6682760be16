"""Deliver events to functions the way AWS does: EventBridge rules (moto's ``EventPattern``) with
fault knobs (:class:`EventFaults`), Lambda async invokes with retries then destinations, a DLQ or
:attr:`Delivery.undelivered`, SQS event sources over moto's real visibility timeout and redrive,
and ``rate(...)`` schedules.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from moto.events.models import EventPattern
from moto.events.utils import EventMessageType

from localcloud.provision import (
    DEFAULT_BUS,
    Destination,
    FunctionSpec,
    RuleTarget,
    ScheduleSource,
    SqsEventSource,
    Stack,
)
from localcloud.runtime import InvokeResult, Runtime
from localcloud.template import TemplateError

log = logging.getLogger(__name__)


def _pattern_matches(pattern: EventPattern, document: dict[str, Any]) -> bool:
    # moto's matcher walks any JSON object (SQS filter criteria too); its annotation names only
    # the EventBridge envelope.
    return pattern.matches_event(cast(EventMessageType, document))


MAX_PUT_EVENTS_ENTRIES = 10
MAX_PUT_EVENTS_BYTES = 256 * 1024


@dataclass
class EventFaults:
    """Fault knobs applied to every event put on a bus (not to schedules or SQS).

    ``drop``: a predicate over the envelope; True drops the event (it is still logged).
    ``duplicate``: deliver every event N times to every matched rule (at-least-once delivery).
    ``copies``: per event, how many times to deliver it (wins over ``duplicate``).
    ``reorder``: a key per event (None: not reordered). Events with the same key are delivered
    swapped in pairs: each is held until the next one with its key arrives, which is delivered
    first (or until ``reorder_hold_seconds`` pass, then it is delivered alone).
    """

    drop: Callable[[dict[str, Any]], bool] | None = None
    duplicate: int = 1
    copies: Callable[[dict[str, Any]], int] | None = None
    reorder: Callable[[dict[str, Any]], str | None] | None = None
    reorder_hold_seconds: float = 20.0

    def drops(self, envelope: dict[str, Any]) -> bool:
        return bool(self.drop is not None and self.drop(envelope))

    def copies_of(self, envelope: dict[str, Any]) -> int:
        if self.copies is not None:
            return max(1, int(self.copies(envelope)))
        return self.duplicate


@dataclass
class UndeliveredInvocation:
    """An async invocation that failed for good and had nowhere to go."""

    function: str  # logical id
    request_id: str
    payload: Any
    condition: str  # RetriesExhausted | EventAgeExceeded | Stopped | DestinationFailed
    attempts: int
    response: Any
    time: str


class BusNotFoundError(Exception):
    def __init__(self, bus: str) -> None:
        super().__init__(f"Event bus {bus} does not exist.")
        self.bus = bus


class PutEventsValidationError(Exception):
    pass


@dataclass
class _AsyncInvocation:
    spec: FunctionSpec
    payload: str
    request_id: str
    first_seen: float
    attempts: int = 0


def _now_iso(*, millis: bool = False) -> str:
    now = datetime.now(UTC)
    if millis:
        return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def _json_or_text(raw: bytes | str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, TypeError):
        return raw.decode(errors="replace") if isinstance(raw, bytes) else raw


def _nothing() -> None:
    pass


class _Timers:
    """Run callables after a delay (retries, held events); what stop() catches waiting is
    cancelled with its ``on_cancel``."""

    def __init__(self) -> None:
        self._waiting: dict[threading.Timer, Callable[[], None]] = {}
        self._lock = threading.Lock()
        self._stopped = False

    def __len__(self) -> int:
        with self._lock:
            return len(self._waiting)

    def schedule(
        self, delay: float, action: Callable[[], None], on_cancel: Callable[[], None] = _nothing
    ) -> None:
        def run() -> None:
            with self._lock:
                if self._waiting.pop(timer, None) is None:
                    return
            try:
                action()
            except Exception:
                log.exception("scheduled action failed")

        timer = threading.Timer(delay, run)
        timer.daemon = True
        with self._lock:
            if not self._stopped:
                self._waiting[timer] = on_cancel
                timer.start()
                return
        on_cancel()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            waiting, self._waiting = self._waiting, {}
        for timer, on_cancel in waiting.items():
            timer.cancel()
            try:
                on_cancel()
            except Exception:
                log.exception("cancel callback failed")


class Delivery:
    def __init__(
        self,
        stack: Stack,
        runtime: Runtime,
        *,
        client: Callable[[str], Any],
        faults: EventFaults | None = None,
        async_retry_delay_seconds: float = 1.0,
        schedule_period_seconds: float | None = None,
        async_concurrency: int = 16,
        poll_wait_seconds: int = 1,
    ) -> None:
        self.stack = stack
        self.runtime = runtime
        self.faults = faults or EventFaults()
        if self.faults.duplicate < 1:
            raise ValueError("EventFaults.duplicate must be >= 1")
        self.async_retry_delay_seconds = async_retry_delay_seconds
        self.schedule_period_seconds = schedule_period_seconds
        self.poll_wait_seconds = poll_wait_seconds
        self._sqs = client("sqs")
        self._executor = ThreadPoolExecutor(
            max_workers=async_concurrency, thread_name_prefix="localcloud-async"
        )
        self._scheduler = _Timers()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pending_async = 0
        self._busy_pollers = 0
        self._events_log: list[tuple[str, dict[str, Any]]] = []
        self._delivered: list[tuple[str, dict[str, Any]]] = []
        self._held: dict[str, tuple[str, dict[str, Any]]] = {}  # reorder key -> held event
        self._dropped: list[tuple[str, dict[str, Any]]] = []
        self._undelivered: list[UndeliveredInvocation] = []
        self._destinations_log: list[tuple[Destination, dict[str, Any]]] = []
        self._patterns = {
            id(rule): EventPattern.load(json.dumps(rule.pattern)) for rule in stack.rules
        }
        self._started = False

    def start(self) -> None:
        if self._started:
            return
        for schedule in self.stack.schedules:
            if schedule.rate_seconds is None and self.schedule_period_seconds is None:
                raise TemplateError(
                    f"{schedule.logical_id}: {schedule.expression} needs schedule_period_seconds"
                    " locally (only rate() expressions have a period)"
                )
        self._started = True
        for source in self.stack.sqs_sources:
            if source.enabled:
                self._spawn(f"poller-{source.logical_id}", self._poll, source)
        for schedule in self.stack.schedules:
            if schedule.enabled:
                self._spawn(f"schedule-{schedule.logical_id}", self._tick, schedule)

    def stop(self) -> None:
        """Stop (idempotent); async invocations still waiting are recorded in
        :attr:`undelivered` with condition ``Stopped``: nothing is lost silently."""
        self._stop.set()
        self.runtime.close()  # running invocations return at once
        self._scheduler.stop()
        for thread in self._threads:
            thread.join(timeout=10)
        self._executor.shutdown(wait=True)

    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=f"localcloud-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    @property
    def events_log(self) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return list(self._events_log)

    @property
    def dropped_events(self) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return list(self._dropped)

    @property
    def delivered_events(self) -> list[tuple[str, dict[str, Any]]]:
        """(bus, envelope) in the order events reached their rules (after delays; once each)."""
        with self._lock:
            return list(self._delivered)

    @property
    def undelivered(self) -> list[UndeliveredInvocation]:
        with self._lock:
            return list(self._undelivered)

    @property
    def destinations_log(self) -> list[tuple[Destination, dict[str, Any]]]:
        with self._lock:
            return list(self._destinations_log)

    def busy(self) -> int:
        with self._lock:
            count = self._pending_async + self._busy_pollers
        return count + self.runtime.in_flight + len(self._scheduler)

    def _queued_messages(self) -> int:
        total = 0
        for source in self.stack.sqs_sources:
            if not source.enabled:
                continue
            try:
                attributes = self._sqs.get_queue_attributes(
                    QueueUrl=source.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
                )["Attributes"]
                total += int(attributes.get("ApproximateNumberOfMessages", 0))
            except Exception:
                log.debug("cannot read queue depth of %s", source.queue_url, exc_info=True)
        return total

    def wait_idle(self, timeout: float) -> bool:
        """True once nothing runs, no async invoke or retry is pending and the event-source
        queues hold no visible message (delayed and in-flight messages do not count)."""
        deadline = time.monotonic() + timeout
        quiet = 0
        while time.monotonic() < deadline:
            if self.busy() == 0 and self._queued_messages() == 0:
                quiet += 1
                if quiet >= 3:
                    return True
            else:
                quiet = 0
            time.sleep(0.05)
        return False

    def emit(self, event: dict[str, Any], bus: str = DEFAULT_BUS) -> str:
        name = self.stack.bus_name(bus)
        if name is None:
            raise BusNotFoundError(bus)
        envelope = self._envelope(event)
        for key in ("source", "detail-type"):
            if key not in envelope:
                raise ValueError(f"an event needs {key!r}")
        self.put_event(name, envelope)
        return str(envelope["id"])

    def _envelope(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """``event`` with the envelope fields it lacks, filled in as EventBridge fills them."""
        filled: dict[str, Any] = {"version": "0", "id": str(uuid.uuid4()), "time": _now_iso()}
        filled |= {"account": self.stack.account_id, "region": self.stack.region}
        return filled | {"resources": [], "detail": {}} | copy.deepcopy(dict(event))

    def put_events(self, entries: list[dict[str, Any]]) -> dict[str, Any]:
        if not entries:
            raise PutEventsValidationError("Entries must contain at least 1 entry")
        if len(entries) > MAX_PUT_EVENTS_ENTRIES:
            raise PutEventsValidationError(
                f"1 validation error detected: Value at 'entries' failed to satisfy constraint:"
                f" Member must have length less than or equal to {MAX_PUT_EVENTS_ENTRIES}"
            )
        size = sum(len(json.dumps(entry, default=str)) for entry in entries)
        if size > MAX_PUT_EVENTS_BYTES:
            raise PutEventsValidationError(
                "Total size of the entries in the request is over the limit."
            )
        buses = []
        for entry in entries:
            bus = str(entry.get("EventBusName") or DEFAULT_BUS)
            name = self.stack.bus_name(bus)
            if name is None:
                raise BusNotFoundError(bus)
            buses.append(name)
        results: list[dict[str, Any]] = []
        accepted: list[tuple[str, dict[str, Any]]] = []
        for bus, entry in zip(buses, entries, strict=True):
            problem = _entry_problem(entry)
            if problem is not None:
                results.append({"ErrorCode": problem[0], "ErrorMessage": problem[1]})
                continue
            envelope = self._envelope(
                {
                    "detail-type": entry["DetailType"],
                    "source": entry["Source"],
                    "time": _event_time(entry.get("Time")),
                    "resources": list(entry.get("Resources") or []),
                    "detail": json.loads(entry["Detail"]),
                }
            )
            results.append({"EventId": envelope["id"]})
            accepted.append((bus, envelope))
        for bus, envelope in accepted:
            self.put_event(bus, envelope)
        failed = sum(1 for r in results if "ErrorCode" in r)
        return {"FailedEntryCount": failed, "Entries": results}

    def put_event(self, bus: str, envelope: dict[str, Any]) -> None:
        """An event is on ``bus``: log it, apply the fault knobs, deliver to matching rules."""
        with self._lock:
            self._events_log.append((bus, envelope))
        if self.faults.drops(envelope):
            with self._lock:
                self._dropped.append((bus, envelope))
            log.info("fault: dropped %s %s", envelope.get("source"), envelope.get("detail-type"))
            return
        key = self.faults.reorder(envelope) if self.faults.reorder is not None else None
        if key is not None:
            self._reorder(key, bus, envelope)
            return
        self._route(bus, envelope)

    def _reorder(self, key: str, bus: str, envelope: dict[str, Any]) -> None:
        """Hold this event until the next one with the same key, and deliver that one first."""
        with self._lock:
            held = self._held.pop(key, None)
            if held is None:
                self._held[key] = (bus, envelope)
        if held is None:

            def release() -> None:
                with self._lock:
                    still_held = self._held.get(key)
                    if still_held is None or still_held[1] is not envelope:
                        return
                    del self._held[key]
                self._route(bus, envelope)

            self._scheduler.schedule(self.faults.reorder_hold_seconds, release)
            return
        log.info("fault: delivering %s before %s", envelope.get("id"), held[1].get("id"))
        self._route(bus, envelope)
        self._route(*held)

    def matching_rules(self, bus: str, envelope: dict[str, Any]) -> list[Any]:
        return [
            rule
            for rule in self.stack.rules
            if rule.enabled
            and rule.bus_name == bus
            and _pattern_matches(self._patterns[id(rule)], envelope)
        ]

    def _route(self, bus: str, envelope: dict[str, Any]) -> None:
        if self._stop.is_set():
            return
        with self._lock:
            self._delivered.append((bus, envelope))
        copies = self.faults.copies_of(envelope)
        for rule in self.matching_rules(bus, envelope):
            for _ in range(copies):
                for target in rule.targets:
                    self._deliver_to_target(target, envelope)

    def _deliver_to_target(self, target: RuleTarget, envelope: dict[str, Any]) -> None:
        if target.input is not None:
            body = target.input if isinstance(target.input, str) else json.dumps(target.input)
        elif target.input_path:
            body = json.dumps(_json_path(envelope, target.input_path))
        else:
            body = json.dumps(envelope)
        if target.kind == "lambda" and target.function is not None:
            self.invoke_async(self.stack.functions[target.function], body)
        elif target.kind == "sqs":
            self._sqs.send_message(
                QueueUrl=self.stack.queue_url_for_arn(target.arn), MessageBody=body
            )

    def invoke_async(
        self, spec: FunctionSpec, payload: str, *, request_id: str | None = None
    ) -> str:
        invocation = _AsyncInvocation(
            spec=spec,
            payload=payload,
            request_id=request_id or str(uuid.uuid4()),
            first_seen=time.monotonic(),
        )
        with self._lock:
            self._pending_async += 1
        if self._stop.is_set():
            self._finish_async(invocation, None, condition="Stopped")
            return invocation.request_id
        self._submit(invocation)
        return invocation.request_id

    def _submit(self, invocation: _AsyncInvocation) -> None:
        try:
            self._executor.submit(self._run_async, invocation)
        except RuntimeError:  # executor shut down
            self._finish_async(invocation, None, condition="Stopped")

    def _run_async(self, invocation: _AsyncInvocation) -> None:
        try:
            if self._stop.is_set():
                self._finish_async(invocation, None, condition="Stopped")
                return
            invocation.attempts += 1
            result = self.runtime.invoke(
                invocation.spec, invocation.payload, request_id=invocation.request_id
            )
            if result.ok:
                self._finish_async(invocation, result, condition="Success")
                return
            if self._stop.is_set() or result.error_type == "Runtime.Closed":
                self._finish_async(invocation, result, condition="Stopped")
                return
            config = invocation.spec.invoke_config
            retries_done = invocation.attempts - 1
            age = time.monotonic() - invocation.first_seen
            if age >= config.maximum_event_age_seconds:
                self._finish_async(invocation, result, condition="EventAgeExceeded")
            elif retries_done < config.maximum_retry_attempts:
                delay = self.async_retry_delay_seconds * invocation.attempts
                log.info(
                    "async %s %s failed (%s); retry in %.1f s",
                    invocation.spec.logical_id,
                    invocation.request_id,
                    result.error_type,
                    delay,
                )
                self._scheduler.schedule(
                    delay,
                    lambda: self._submit(invocation),
                    on_cancel=lambda: self._finish_async(invocation, None, condition="Stopped"),
                )
            else:
                self._finish_async(invocation, result, condition="RetriesExhausted")
        except Exception:
            log.exception("async invocation %s crashed the local cloud", invocation.request_id)
            self._finish_async(invocation, None, condition="Stopped")

    def _finish_async(
        self, invocation: _AsyncInvocation, result: InvokeResult | None, *, condition: str
    ) -> None:
        try:
            self._route_result(invocation, result, condition)
        except Exception:
            log.exception("destination of %s failed", invocation.request_id)
            self._record_undelivered(invocation, result, "DestinationFailed")
        finally:
            with self._lock:
                self._pending_async -= 1

    def destination_record(
        self, invocation: _AsyncInvocation, result: InvokeResult, condition: str
    ) -> dict[str, Any]:
        """The record Lambda sends to an async destination (success or failure)."""
        response_context: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
        if result.function_error:
            response_context["functionError"] = result.function_error
        return {
            "version": "1.0",
            "timestamp": _now_iso(millis=True),
            "requestContext": {
                "requestId": invocation.request_id,
                "functionArn": f"{invocation.spec.arn}:$LATEST",
                "condition": condition,
                "approximateInvokeCount": invocation.attempts,
            },
            "requestPayload": _json_or_text(invocation.payload),
            "responseContext": response_context,
            "responsePayload": _json_or_text(result.payload),
        }

    def _route_result(
        self, invocation: _AsyncInvocation, result: InvokeResult | None, condition: str
    ) -> None:
        config = invocation.spec.invoke_config
        if result is None or condition == "Stopped":
            self._record_undelivered(invocation, result, "Stopped")
            return
        if condition == "Success":
            if config.on_success is not None:
                self._send_to_destination(
                    config.on_success, self.destination_record(invocation, result, condition)
                )
            return
        if config.on_failure is not None:
            self._send_to_destination(
                config.on_failure, self.destination_record(invocation, result, condition)
            )
        elif invocation.spec.dead_letter_arn:
            error = result.json() if result.payload else {}
            self._sqs.send_message(
                QueueUrl=self.stack.queue_url_for_arn(invocation.spec.dead_letter_arn),
                MessageBody=invocation.payload,
                MessageAttributes={
                    "RequestID": {"DataType": "String", "StringValue": invocation.request_id},
                    "ErrorCode": {"DataType": "Number", "StringValue": "200"},
                    "ErrorMessage": {
                        "DataType": "String",
                        "StringValue": str((error or {}).get("errorMessage", ""))[:256] or "-",
                    },
                },
            )
        else:
            log.warning(
                "async %s %s failed (%s) with no destination: recorded as undelivered",
                invocation.spec.logical_id,
                invocation.request_id,
                condition,
            )
            self._record_undelivered(invocation, result, condition)

    def _send_to_destination(self, destination: Destination, record: dict[str, Any]) -> None:
        with self._lock:
            self._destinations_log.append((destination, record))
        if destination.type == "SQS":
            self._sqs.send_message(
                QueueUrl=self.stack.queue_url_for_arn(destination.arn),
                MessageBody=json.dumps(record),
            )
        elif destination.type == "Lambda":
            spec = self.stack.function(destination.arn)
            if spec is None:
                raise ValueError(f"destination function {destination.arn} not found")
            self.invoke_async(spec, json.dumps(record))
        elif destination.type == "EventBridge":
            bus = self.stack.bus_name(destination.arn)
            if bus is None:
                raise BusNotFoundError(destination.arn)
            outcome = "Success" if record["requestContext"]["condition"] == "Success" else "Failure"
            resources = [self.stack.buses[bus], record["requestContext"]["functionArn"]]
            event: dict[str, Any] = {
                "detail-type": f"Lambda Function Invocation Result - {outcome}"
            }
            event |= {"source": "lambda", "resources": resources, "detail": record}
            self.put_event(bus, self._envelope(event))
        else:  # pragma: no cover - provisioning refuses other types
            raise ValueError(f"unsupported destination {destination.type}")

    def _record_undelivered(
        self, invocation: _AsyncInvocation, result: InvokeResult | None, condition: str
    ) -> None:
        with self._lock:
            self._undelivered.append(
                UndeliveredInvocation(
                    function=invocation.spec.logical_id,
                    request_id=invocation.request_id,
                    payload=_json_or_text(invocation.payload),
                    condition=condition,
                    attempts=invocation.attempts,
                    response=_json_or_text(result.payload) if result is not None else None,
                    time=_now_iso(millis=True),
                )
            )

    def _poll(self, source: SqsEventSource) -> None:
        spec = self.stack.functions[source.function]
        while not self._stop.is_set():
            try:
                messages = self._receive(source)
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("receive from %s failed", source.queue_url)
                self._stop.wait(0.5)
                continue
            if not messages:
                continue
            with self._lock:
                self._busy_pollers += 1
            try:
                self._process_batch(source, spec, messages)
            except Exception:
                log.exception("batch from %s crashed the poller", source.queue_url)
            finally:
                with self._lock:
                    self._busy_pollers -= 1

    def _receive(self, source: SqsEventSource) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        window_end = time.monotonic() + source.maximum_batching_window_seconds
        wait = self.poll_wait_seconds
        while len(messages) < source.batch_size and not self._stop.is_set():
            response = self._sqs.receive_message(
                QueueUrl=source.queue_url,
                MaxNumberOfMessages=min(10, source.batch_size - len(messages)),
                WaitTimeSeconds=wait,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            batch = response.get("Messages") or []
            messages.extend(batch)
            if source.batch_size <= 10 or time.monotonic() >= window_end:
                break
            if not batch:
                wait = max(0, min(self.poll_wait_seconds, int(window_end - time.monotonic())))
        return messages

    def sqs_record(self, source: SqsEventSource, message: dict[str, Any]) -> dict[str, Any]:
        attributes = {k: str(v) for k, v in (message.get("Attributes") or {}).items()}
        message_attributes = {}
        for name, value in (message.get("MessageAttributes") or {}).items():
            entry: dict[str, Any] = {
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value.get("DataType"),
            }
            if "StringValue" in value:
                entry["stringValue"] = value["StringValue"]
            if "BinaryValue" in value:
                raw = value["BinaryValue"]
                entry["binaryValue"] = (
                    base64.b64encode(raw).decode() if isinstance(raw, bytes) else raw
                )
            message_attributes[name] = dict(sorted(entry.items()))
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": attributes,
            "messageAttributes": message_attributes,
            "md5OfBody": message.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": source.queue_arn,
            "awsRegion": self.stack.region,
        }

    def _matches_filters(self, source: SqsEventSource, record: dict[str, Any]) -> bool:
        if not source.filters:
            return True
        candidate = dict(record)
        try:
            body = json.loads(record["body"])
            if isinstance(body, dict):
                candidate["body"] = body
        except ValueError:
            pass
        return any(
            _pattern_matches(EventPattern.load(json.dumps(f)), candidate) for f in source.filters
        )

    def _delete(self, source: SqsEventSource, records: list[dict[str, Any]]) -> None:
        for start in range(0, len(records), 10):
            chunk = records[start : start + 10]
            response = self._sqs.delete_message_batch(
                QueueUrl=source.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(chunk)
                ],
            )
            for failure in response.get("Failed") or []:
                log.warning("delete from %s failed: %s", source.queue_url, failure)

    def _process_batch(
        self, source: SqsEventSource, spec: FunctionSpec, messages: list[dict[str, Any]]
    ) -> None:
        records = [self.sqs_record(source, m) for m in messages]
        kept = [r for r in records if self._matches_filters(source, r)]
        filtered_out = [r for r in records if r not in kept]
        if filtered_out:
            self._delete(source, filtered_out)  # AWS deletes messages that match no filter
        if not kept:
            return
        result = self.runtime.invoke(spec, json.dumps({"Records": kept}))
        if not result.ok:
            log.info(
                "%s: batch of %d failed (%s); messages return after the visibility timeout",
                source.logical_id,
                len(kept),
                result.error_type,
            )
            return
        failed_ids = self.batch_item_failures(source, kept, result)
        if failed_ids is None:
            log.warning("%s: invalid batchItemFailures; the whole batch fails", source.logical_id)
            return
        self._delete(source, [r for r in kept if r["messageId"] not in failed_ids])

    @staticmethod
    def batch_item_failures(
        source: SqsEventSource, records: list[dict[str, Any]], result: InvokeResult
    ) -> set[str] | None:
        """Message ids to keep; None when the response makes the whole batch fail."""
        if not source.report_batch_item_failures:
            return set()
        try:
            body = result.json()
        except ValueError:
            return None
        if body is None or body == {}:
            return set()
        if not isinstance(body, dict):
            return None
        failures = body.get("batchItemFailures")
        if failures is None or failures == []:
            return set()
        if not isinstance(failures, list):
            return None
        ids = {r["messageId"] for r in records}
        failed: set[str] = set()
        for failure in failures:
            if not isinstance(failure, dict):
                return None
            identifier = failure.get("itemIdentifier")
            if not isinstance(identifier, str) or not identifier or identifier not in ids:
                return None
            failed.add(identifier)
        return failed

    def scheduled_event(self, schedule: ScheduleSource) -> dict[str, Any]:
        event = {"detail-type": "Scheduled Event", "source": "aws.events"}
        return self._envelope({**event, "resources": [schedule.arn]})

    def fire_schedule(self, schedule: ScheduleSource) -> None:
        event = self.scheduled_event(schedule)
        for target in schedule.targets:
            self._deliver_to_target(target, event)

    def _tick(self, schedule: ScheduleSource) -> None:
        period = self.schedule_period_seconds or schedule.rate_seconds or 60.0
        while not self._stop.wait(period):
            try:
                self.fire_schedule(schedule)
            except Exception:
                log.exception("schedule %s failed", schedule.logical_id)


def _entry_problem(entry: dict[str, Any]) -> tuple[str, str] | None:
    for key in ("Source", "DetailType", "Detail"):
        if not entry.get(key):
            return (
                "InvalidArgument",
                f"Parameter {key} is not valid. Reason: {key} is a required argument.",
            )
    if str(entry["Source"]).startswith("aws."):
        return ("NotAuthorizedForSourceException", "Not authorized for the source.")
    try:
        detail = json.loads(entry["Detail"])
    except (TypeError, ValueError):
        return ("MalformedDetail", "Detail is malformed.")
    if not isinstance(detail, dict):
        return ("MalformedDetail", "Detail is malformed.")
    return None


def _event_time(value: Any) -> str:
    if value is None or value == "":
        return _now_iso()
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def _json_path(envelope: dict[str, Any], path: str) -> Any:
    """The subset of JSONPath EventBridge's InputPath uses: ``$`` and ``$.a.b``."""
    if path == "$":
        return envelope
    if not path.startswith("$."):
        raise ValueError(f"unsupported InputPath {path!r}")
    node: Any = envelope
    for key in path[2:].split("."):
        node = node.get(key) if isinstance(node, dict) else None
    return node
