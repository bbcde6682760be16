"""The local endpoint for Lambda ``Invoke`` and EventBridge ``PutEvents``, in the wire protocols
boto3 uses: moto's Lambda needs Docker to run code and moto's EventBridge does not run targets.
Errors come back in the shapes boto3 parses into ``ClientError``.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from localcloud.delivery import BusNotFoundError, Delivery, PutEventsValidationError
from localcloud.provision import FunctionSpec
from localcloud.runtime import FUNCTION_ERROR
from localcloud.serving import LoopbackServer

__all__ = ["LocalEndpoint"]

log = logging.getLogger(__name__)

MAX_SYNC_PAYLOAD = 6 * 1024 * 1024  # 6 MB request and response, RequestResponse
MAX_ASYNC_PAYLOAD = 1024 * 1024  # 1 MB, Event (raised from 256 KB in 2025)

_INVOKE_PREFIX = "/2015-03-31/functions/"
_INVOKE_SUFFIX = "/invocations"


class _LambdaError(Exception):
    """An Invoke Lambda refuses: (HTTP status, error type, message)."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LocalEndpoint

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("endpoint: " + format, *args)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _lambda_error(self, status: int, error_type: str, message: str) -> None:
        body = json.dumps({"Type": "User", "message": message}).encode()
        self._reply(
            status, body, {"Content-Type": "application/json", "x-amzn-ErrorType": error_type}
        )

    def _json11_error(self, status: int, error_type: str, message: str) -> None:
        body = json.dumps({"__type": error_type, "message": message}).encode()
        self._reply(status, body, {"Content-Type": "application/x-amz-json-1.1"})

    def do_POST(self) -> None:
        try:
            path = urlsplit(self.path).path
            if path.startswith(_INVOKE_PREFIX) and path.endswith(_INVOKE_SUFFIX):
                self._invoke(unquote(path[len(_INVOKE_PREFIX) : -len(_INVOKE_SUFFIX)]))
                return
            target = self.headers.get("X-Amz-Target", "")
            if path == "/" and target.startswith("AWSEvents."):
                self._events(target.split(".", 1)[1])
                return
            self._body()
            self._lambda_error(
                404, "UnknownOperationException", f"the local endpoint does not serve {path}"
            )
        except Exception as error:
            log.exception("endpoint request failed")
            self._json11_error(500, "InternalFailure", str(error))

    def do_GET(self) -> None:
        self._lambda_error(404, "UnknownOperationException", "only Invoke and PutEvents")

    def _invoke(self, function_name: str) -> None:
        try:
            spec, invocation_type, payload = self._invoke_request(function_name)
        except _LambdaError as error:
            self._lambda_error(*error.args)
            return
        if invocation_type == "DryRun":
            self._reply(204)
        elif invocation_type == "Event":
            request_id = self.server.delivery.invoke_async(spec, payload)
            self._reply(202, b"", {"x-amzn-Remapped-x-amzn-RequestId": request_id})
        else:
            self._invoke_sync(spec, payload)

    def _invoke_request(self, function_name: str) -> tuple[FunctionSpec, str, str]:
        """The function, invocation type and payload of an Invoke, refused as Lambda would."""
        stack = self.server.delivery.stack
        body = self._body()
        qualifiers = parse_qs(urlsplit(self.path).query).get("Qualifier")
        qualifier = qualifiers[0] if qualifiers else None
        spec = stack.function(function_name)
        if spec is None or qualifier not in (None, "$LATEST"):
            arn = function_name
            if not function_name.startswith("arn:"):
                arn = f"arn:aws:lambda:{stack.region}:{stack.account_id}:function:{function_name}"
            message = f"Function not found: {arn}{':' + qualifier if qualifier else ''}"
            raise _LambdaError(404, "ResourceNotFoundException", message)
        invocation_type = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if invocation_type not in ("RequestResponse", "Event", "DryRun"):
            message = f"Unsupported invocation type {invocation_type}"
            raise _LambdaError(400, "InvalidParameterValueException", message)
        limit = MAX_ASYNC_PAYLOAD if invocation_type == "Event" else MAX_SYNC_PAYLOAD
        if len(body) > limit:
            message = f"Request must be smaller than {limit} bytes for the InvokeFunction operation"
            raise _LambdaError(413, "RequestTooLargeException", message)
        payload = body.decode() if body else "{}"
        try:
            json.loads(payload)
        except ValueError:
            message = "Could not parse request body into json: Unexpected character"
            raise _LambdaError(400, "InvalidRequestContentException", message) from None
        return spec, invocation_type, payload

    def _invoke_sync(self, spec: FunctionSpec, payload: str) -> None:
        client_context = self.headers.get("X-Amz-Client-Context")
        if client_context:
            client_context = base64.b64decode(client_context).decode()
        tail = self.headers.get("X-Amz-Log-Type") == "Tail"
        result = self.server.delivery.runtime.invoke(
            spec,
            payload,
            client_context=client_context,
            invoked_function_arn=spec.arn,
            tail=tail,
        )
        if len(result.payload) > MAX_SYNC_PAYLOAD:
            result.function_error = FUNCTION_ERROR
            result.payload = json.dumps(
                {
                    "errorMessage": "Response payload size exceeded maximum allowed payload size"
                    f" ({MAX_SYNC_PAYLOAD} bytes).",
                    "errorType": "Function.ResponseSizeTooLarge",
                }
            ).encode()
        headers = {"Content-Type": "application/json", "X-Amz-Executed-Version": "$LATEST"}
        if result.function_error:
            headers["X-Amz-Function-Error"] = result.function_error
        if tail:
            headers["X-Amz-Log-Result"] = base64.b64encode(result.log_tail.encode()).decode()
        self._reply(200, result.payload, headers)

    def _events(self, operation: str) -> None:
        endpoint = self.server
        body = self._body()
        if operation != "PutEvents":
            self._json11_error(
                400,
                "UnknownOperationException",
                f"the local cloud's EventBridge serves PutEvents only, not {operation}",
            )
            return
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            self._json11_error(400, "SerializationException", "request body is not JSON")
            return
        entries = request.get("Entries")
        if not isinstance(entries, list):
            self._json11_error(400, "ValidationException", "Entries is required")
            return
        try:
            response = endpoint.delivery.put_events(entries)
        except BusNotFoundError as error:
            self._json11_error(400, "ResourceNotFoundException", str(error))
            return
        except PutEventsValidationError as error:
            self._json11_error(400, "ValidationException", str(error))
            return
        self._reply(
            200,
            json.dumps(response).encode(),
            {"Content-Type": "application/x-amz-json-1.1"},
        )


class LocalEndpoint(LoopbackServer):
    def __init__(self) -> None:
        super().__init__(_Handler, "localcloud-endpoint")
        self._delivery: Delivery | None = None

    def attach(self, delivery: Delivery) -> None:
        self._delivery = delivery

    @property
    def delivery(self) -> Delivery:
        if self._delivery is None:
            raise RuntimeError("the endpoint is not attached to a stack yet")
        return self._delivery
