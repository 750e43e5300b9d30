"""Outgoing HTTP(S) requests, blocking, through `wasi:http/outgoing-handler`
(the Python twin of the Rust SDK's `http`).

A step never opens a socket or looks up a name: it hands each request to the
host, which checks it against the step's `net` grant (scheme, host and port),
resolves the name itself and checks the addresses, clamps the timeouts to the
step's remaining time, caps the bytes received, and allows only `GET` and
`HEAD` while `plan` and `verify` run. A request the grant does not allow
fails with `Denied` before any byte leaves the machine. `check` asks the same
question without sending anything, so `plan` can prove every target is
granted.

    from backout_sdk import http

    response = http.send(http.Request("GET", "http://127.0.0.1:6333/collections/docs",
                                      headers=[("api-key", key)], timeout=5.0))
    if response.status == 200:
        status = response.json()["result"]["status"]

`send` returns when the whole response is read (up to `max_body` bytes);
`send_to` streams a large body into a callable. A 4xx or 5xx status is a
response, not an error. Redirects are not followed. Error messages name the
method and the server (`POST https://hooks.slack.com:443`), never the path,
the query or a header value, which may carry a secret.

This talks to the generated bindings directly (`wit_world.imports`), without
asyncio: componentize-py's `poll_loop.py` imports `wit_world.imports.types`,
which does not exist in a world (like `plugin-wasi`) that imports several
interfaces named `types`.

Outside a component (native unit tests) every request fails with `Other`.
"""

import json as _json

from . import _bindings
from .config import Duration, show_bytes

__all__ = [
    "DEFAULT_MAX_BODY",
    "HttpError",
    "Denied",
    "InvalidUrl",
    "InvalidRequest",
    "Timeout",
    "ConnectionRefused",
    "Dns",
    "BodyTooLarge",
    "Protocol",
    "Other",
    "Url",
    "Request",
    "Response",
    "send",
    "send_to",
    "check",
    "normalize_method",
    "validate_header",
    "show_duration",
]

#: Default `Request.max_body`: 16 MiB, plenty for API answers while a runaway
#: response cannot exhaust the plugin's memory.
DEFAULT_MAX_BODY = 16 << 20

#: Bytes moved per stream call: large enough to be fast, small enough to keep
#: memory flat.
_CHUNK = 64 * 1024

NOT_IN_A_COMPONENT = "HTTP is only available inside a backout component"


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


class HttpError(Exception):
    """Why a request failed. Messages are written for an operator reading a
    failed step's report; none contains a header value or the URL's path.

    `transient` says whether trying again may help (a refused connection, a
    timeout), as opposed to a denial or a malformed request."""

    prefix = ""
    transient = False

    def __init__(self, message):
        self.message = str(message)
        super().__init__(self.message)

    def __str__(self):
        return f"{self.prefix}{self.message}"

    def __eq__(self, other):
        return type(self) is type(other) and self.message == other.message

    def __hash__(self):
        return hash((type(self), self.message))


class Denied(HttpError):
    """The host refused the request: the step's `net` grant does not allow it
    (or not in this call: `plan` may only GET and HEAD). The text is the
    host's reason. Retrying cannot help."""

    prefix = "denied: "


class InvalidUrl(HttpError):
    """The URL is not an absolute `http://` or `https://` URL we can send."""

    prefix = "invalid URL: "


class InvalidRequest(HttpError):
    """The request cannot be sent as given (a malformed or host-controlled
    header, an invalid method). Retrying cannot help."""

    prefix = "invalid request: "


class Timeout(HttpError):
    """No connection, response or body in time."""

    prefix = "timed out: "
    transient = True


class ConnectionRefused(HttpError):
    """Nothing listens at the address (yet): the service may be starting."""

    prefix = "connection refused: "
    transient = True


class Dns(HttpError):
    """The name could not be resolved."""

    prefix = "name lookup failed: "
    transient = True


class BodyTooLarge(HttpError):
    """The response body is larger than the request's `max_body`. (The host's
    own cap, the step's `max_received`, is `Other`.)"""

    def __init__(self, limit):
        self.limit = limit
        super().__init__(f"the response body is larger than the limit of {show_bytes(limit)}")


class Protocol(HttpError):
    """The server broke HTTP: a malformed or truncated response, a closed connection."""

    prefix = "HTTP error: "
    transient = True


class Other(HttpError):
    """Anything else, including TLS failures, with the host's description."""


# ---------------------------------------------------------------------------
# URLs
# ---------------------------------------------------------------------------

_DEFAULT_PORTS = {"http": 80, "https": 443}


class Url:
    """An absolute `http(s)` URL split the way `wasi:http` wants it.

    `host` is lowercase (an IPv6 address keeps its brackets), `port` is the
    port written in the URL or `None`, `path_with_query` starts with `/` and
    has no `#fragment`."""

    __slots__ = ("scheme", "host", "port", "path_with_query")

    def __init__(self, scheme, host, port, path_with_query):
        self.scheme = scheme
        self.host = host
        self.port = port
        self.path_with_query = path_with_query

    @classmethod
    def parse(cls, text, name=None):
        """Parses an absolute `http://` or `https://` URL. Refused (with
        `InvalidUrl`): other schemes, credentials (`user:pass@`; send them in
        a header), whitespace, control and non-ASCII characters
        (percent-encode them).

        Messages quote the URL, or say `name` instead when given: pass one
        for a URL that holds a secret (`name="the URL in ${env.HOOK}"`)."""

        def bad(why):
            return InvalidUrl(f"{name or f'`{text}`'} {why}")

        for c in text:
            if c.isspace() or not c.isascii() or ord(c) < 0x20 or ord(c) == 0x7F:
                what = "whitespace" if c.isspace() else f"the character {c!r}"
                raise bad(f"contains {what}; percent-encode it (a space is `%20`)")
        scheme, sep, rest = text.partition("://")
        if not sep:
            raise bad("is not an absolute URL; write it as `http://host:port/path`")
        scheme = scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise bad(f"has the scheme `{scheme}`; only `http` and `https` are supported")
        end = len(rest)
        for mark in "/?#":
            i = rest.find(mark)
            if 0 <= i < end:
                end = i
        authority, tail = rest[:end], rest[end:]
        if "@" in authority:
            raise bad("contains credentials (`user:password@`); send them in a header instead")
        if "\\" in tail:
            raise bad("contains a backslash; percent-encode it (`%5C`)")
        try:
            host, port = _split_host_port(authority)
        except ValueError as e:
            raise bad(str(e)) from None
        tail = tail.partition("#")[0]
        path_with_query = tail if tail.startswith("/") else "/" + tail
        return cls(scheme, host, port, path_with_query)

    @property
    def authority(self):
        """`host` or `host:port`, as sent in the `Host` header."""
        return self.host if self.port is None else f"{self.host}:{self.port}"

    @property
    def port_or_default(self):
        return self.port if self.port is not None else _DEFAULT_PORTS[self.scheme]

    @property
    def origin(self):
        """`scheme://host:port` with the port always written: what a `net`
        grant names. Safe to log: it carries no path, query or credentials."""
        return f"{self.scheme}://{self.host}:{self.port_or_default}"

    def __str__(self):
        return f"{self.scheme}://{self.authority}{self.path_with_query}"

    def __repr__(self):
        return f"Url({self.origin!r}, …)"

    def __eq__(self, other):
        return isinstance(other, Url) and str(self) == str(other)

    def __hash__(self):
        return hash(str(self))


def _split_host_port(authority):
    if not authority:
        raise ValueError("has no host")
    if authority.startswith("["):
        inside, closing, after = authority[1:].partition("]")
        if not closing:
            raise ValueError("has an IPv6 address without its closing `]`")
        if not inside or not all(c in "0123456789abcdefABCDEF:." for c in inside):
            raise ValueError(f"has an invalid IPv6 address `[{inside}]`")
        if after == "":
            port = None
        elif after.startswith(":"):
            port = after[1:]
        else:
            raise ValueError(f"has unexpected text `{after}` after `]`")
        host = f"[{inside.lower()}]"
    else:
        host, colon, port = authority.rpartition(":")
        if not colon:
            host, port = authority, None
        if not host:
            raise ValueError("has no host")
        if not all(c.isascii() and (c.isalnum() or c in "-._") for c in host):
            raise ValueError(f"has an invalid host `{host}`")
        host = host.lower()
    if port is not None:
        if not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
            raise ValueError(f"has an invalid port `{port}` (write 1 to 65535, or leave it out)")
        port = int(port)
    return host, port


# ---------------------------------------------------------------------------
# Methods and headers
# ---------------------------------------------------------------------------

_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")

#: Headers the host sets itself; `wasi:http` refuses them from a guest.
_HOST_CONTROLLED = frozenset(
    [
        "host",
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "transfer-encoding",
        "upgrade",
        "http2-settings",
    ]
)


def normalize_method(method):
    """The method upper-cased, or `InvalidRequest` saying why it cannot be sent."""
    if not method or not all(c in _TOKEN for c in method):
        raise InvalidRequest(f"`{method}` is not an HTTP method")
    return method.upper()


def validate_header(name, value):
    """Checks one header; the message never shows the value, which may be secret."""
    if not name or not all(c in _TOKEN for c in name):
        raise InvalidRequest(f"`{name}` is not a valid header name")
    if name.lower() in _HOST_CONTROLLED:
        raise InvalidRequest(f"header `{name}` is set by the host and cannot be given")
    if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in value):
        raise InvalidRequest(f"the value of header `{name}` contains a line break or another control character")


def _header_value(headers, name):
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def show_duration(seconds):
    """`5s`, `1.5s`, `250ms`: a duration for messages."""
    return str(Duration.of_seconds(seconds))


# ---------------------------------------------------------------------------
# Requests and responses
# ---------------------------------------------------------------------------

_UNSET = object()


class Request:
    """An HTTP request to send with `send` or `send_to`.

    - `method`: `GET`, `POST`, … (any case; sent upper-cased);
    - `url`: an absolute `http://` or `https://` URL;
    - `headers`: `(name, value)` pairs or a dict; `Host`, `Connection`,
      `Transfer-Encoding` and the like are set by the host and refused;
    - `body`: bytes (or text, sent as UTF-8), sent with a `Content-Length`;
      or `json=value`, sent as JSON with `content-type: application/json`
      unless the headers give a content type;
    - `timeout`: seconds (or a `Duration`) for the whole exchange, from
      sending the request to the last byte of the body; `None`: the host's
      limit, never more than the time left to the step;
    - `max_body`: `send` refuses a larger response body with `BodyTooLarge`.
    """

    def __init__(self, method, url, *, headers=(), body=None, json=_UNSET, timeout=None, max_body=DEFAULT_MAX_BODY):
        self.method = method
        self.url = url
        self.headers = list(headers.items()) if isinstance(headers, dict) else list(headers)
        if isinstance(body, str):
            body = body.encode("utf-8")
        if json is not _UNSET:
            if _header_value(self.headers, "content-type") is None:
                self.headers.append(("content-type", "application/json"))
            body = _json.dumps(json, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self.body = body
        if isinstance(timeout, Duration):
            timeout = timeout.seconds
        self.timeout = timeout
        self.max_body = max_body

    def __repr__(self):
        return f"Request({self.method!r}, <url>, {len(self.headers)} headers, {len(self.body or b'')} body bytes)"


class Response:
    """A response read whole by `send`. Header names are lowercase (as the
    host reports them), values decoded as UTF-8 with replacement."""

    def __init__(self, status, headers, body=b""):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        """The first value of header `name`, compared case-insensitively."""
        return _header_value(self.headers, name)

    @property
    def is_success(self):
        return 200 <= self.status < 300

    def text(self):
        """The body as text; invalid UTF-8 becomes `�`."""
        return self.body.decode("utf-8", errors="replace")

    def json(self):
        """The body parsed as JSON (raises `ValueError` when it is not)."""
        return _json.loads(self.body)

    def __repr__(self):
        return f"Response({self.status}, {len(self.body)} body bytes)"


def _headers_to_send(request):
    for name, value in request.headers:
        validate_header(name, value)
    headers = list(request.headers)
    if request.body is not None and _header_value(headers, "content-length") is None:
        headers.append(("content-length", str(len(request.body))))
    return headers


class _Prepared:
    """A request that passed every check this side of the host."""

    def __init__(self, request):
        self.method = normalize_method(request.method)
        self.url = Url.parse(request.url)
        self.headers = _headers_to_send(request)
        self.body = request.body
        self.timeout = request.timeout
        #: What messages say about the request: method and origin only.
        self.shown = f"{self.method} {self.url.origin}"


def send(request):
    """Sends `request` and reads the whole response body, up to
    `request.max_body` bytes (`BodyTooLarge` past that)."""
    limit = request.max_body
    body = bytearray()

    def sink(chunk):
        if len(body) + len(chunk) > limit:
            raise BodyTooLarge(limit)
        body.extend(chunk)

    status, headers = _exchange(_Prepared(request), sink)
    return Response(status, headers, bytes(body))


def send_to(request, sink):
    """Sends `request` and hands the response body to `sink(chunk)` as it
    arrives, in bounded memory, whatever its size (`max_body` does not
    apply; the host's own cap does). Returns `(status, headers)`. The body is
    delivered whatever the status: check it before trusting what `sink` got."""
    return _exchange(_Prepared(request), sink)


def check(method, url):
    """Asks the host whether a request with `method` to `url` would pass the
    step's `net` grant in the current call, without sending anything or
    looking up any name. Returns `None` when it would, else the host's reason
    (a string)."""
    try:
        method = normalize_method(method)
        Url.parse(url)
    except HttpError as e:
        return str(e)
    if not _bindings.IN_COMPONENT:
        return NOT_IN_A_COMPONENT
    try:
        _bindings.host.check_request(method, url)
    except _bindings.Err as e:
        return str(e.value)
    return None


def _exchange(prepared, sink):
    if not _bindings.IN_COMPONENT:
        raise Other(NOT_IN_A_COMPONENT)
    if not _bindings.HAS_HTTP:
        raise Other("this component does not import wasi:http (build it for the world `plugin-wasi`)")
    return _Wasi(prepared).exchange(sink)


# ---------------------------------------------------------------------------
# The wasi:http client
# ---------------------------------------------------------------------------


class _Wasi:
    """One exchange over `wasi:http`. Resource order matters to the host: a
    child (a stream, a pollable, a header list) must be dropped before its
    parent (the body, the future, the response), so every child here is
    dropped explicitly."""

    def __init__(self, prepared):
        b = _bindings
        self.wt, self.poll, self.clock, self.streams, self.handler = (
            b.http_types,
            b.poll,
            b.monotonic_clock,
            b.streams,
            b.outgoing_handler,
        )
        self.request = prepared
        self.authority = prepared.url.authority
        self.deadline = None
        if prepared.timeout is not None:
            self.deadline = self.clock.now() + max(0, int(prepared.timeout * 1e9))

    # -- waiting -----------------------------------------------------------

    def _wait_any(self, wanted, response=None):
        """Blocks until `wanted` (or `response`) is ready, or the deadline
        passes: returns "wanted", "response" or "timeout"."""
        timer = self.clock.subscribe_instant(self.deadline) if self.deadline is not None else None
        pollables = [wanted] + ([response] if response is not None else []) + ([timer] if timer is not None else [])
        try:
            ready = self.poll.poll(pollables)
        finally:
            _bindings.drop(timer)
        if 0 in ready:
            return "wanted"
        if response is not None and 1 in ready:
            return "response"
        return "timeout"

    def _timed_out(self, what):
        return Timeout(f"{what} within {show_duration(self.request.timeout)}")

    # -- the exchange ------------------------------------------------------

    def exchange(self, sink):
        wt, r = self.wt, self.request
        try:
            fields = wt.Fields.from_list([(name, value.encode("utf-8")) for name, value in r.headers])
        except _bindings.Err as e:
            raise self._header_error(e.value) from None
        outgoing = wt.OutgoingRequest(fields)
        self._set(outgoing.set_method, self._method(r.method), "method")
        self._set(outgoing.set_scheme, wt.Scheme_Https() if r.url.scheme == "https" else wt.Scheme_Http(), "scheme")
        self._set(outgoing.set_authority, self.authority, "host")
        self._set(outgoing.set_path_with_query, r.url.path_with_query, "path")

        options = wt.RequestOptions()
        if r.timeout is not None:
            # The host clamps these to the step's remaining time; a host that
            # does not support one just keeps its own.
            nanos = max(1, int(r.timeout * 1e9))
            for setter in (options.set_connect_timeout, options.set_first_byte_timeout, options.set_between_bytes_timeout):
                try:
                    setter(nanos)
                except _bindings.Err:
                    pass

        # The body handle must be taken before `handle` consumes the request;
        # without one the host sends no body at all.
        body = outgoing.body() if r.body is not None else None
        try:
            future = self.handler.handle(outgoing, options)
        except _bindings.Err as e:
            _bindings.drop(body)
            raise self._from_code(e.value) from None

        try:
            ready = future.subscribe()
            unfinished = None
            try:
                if body is not None:
                    stop = self._write_body(body, r.body, ready)
                    if stop is None:
                        # Finishing checks the length against `Content-Length`.
                        try:
                            wt.OutgoingBody.finish(body, None)
                        except _bindings.Err as e:
                            unfinished = self._from_code(e.value)
                    elif isinstance(stop, HttpError):
                        # Time ran out while sending: that is the error.
                        _bindings.drop(body)
                        raise stop
                    else:
                        # The response, or the host's error, arrived first, or
                        # the host closed the stream: stop sending; the
                        # response says what happened.
                        _bindings.drop(body)
                try:
                    response = self._wait_for_response(future, ready)
                except HttpError as e:
                    raise (unfinished or e) from None
            finally:
                _bindings.drop(ready)
            try:
                if unfinished is not None:
                    raise unfinished
                return self._read_response(response, sink)
            finally:
                _bindings.drop(response)
        finally:
            _bindings.drop(future)

    def _set(self, setter, value, what):
        try:
            setter(value)
        except _bindings.Err:
            raise InvalidRequest(f"the host refused the {what} of {self.request.shown}") from None

    def _method(self, method):
        wt = self.wt
        known = {
            "GET": wt.Method_Get,
            "HEAD": wt.Method_Head,
            "POST": wt.Method_Post,
            "PUT": wt.Method_Put,
            "DELETE": wt.Method_Delete,
            "CONNECT": wt.Method_Connect,
            "OPTIONS": wt.Method_Options,
            "TRACE": wt.Method_Trace,
            "PATCH": wt.Method_Patch,
        }
        return known[method]() if method in known else wt.Method_Other(method)

    def _header_error(self, error):
        wt = self.wt
        if isinstance(error, wt.HeaderError_Forbidden):
            return InvalidRequest("a header is set by the host and cannot be given")
        if isinstance(error, wt.HeaderError_Immutable):
            return InvalidRequest("a header cannot be set")
        return InvalidRequest("a header has an invalid name or value")

    def _write_body(self, body, data, response):
        """Writes `data`; returns None when all is written and flushed, "stop"
        when the response came first or the host closed the stream, or a
        `Timeout` when the deadline passed."""
        try:
            stream = body.write()
        except _bindings.Err:
            return Other(f"cannot write the request body of {self.request.shown}")
        try:
            view = memoryview(data)
            flushing = False
            while True:
                try:
                    permit = stream.check_write()
                except _bindings.Err:
                    return "stop"
                if permit == 0:
                    writable = stream.subscribe()
                    try:
                        which = self._wait_any(writable, response)
                    finally:
                        _bindings.drop(writable)
                    if which == "response":
                        return "stop"
                    if which == "timeout":
                        return self._timed_out("could not send the request body")
                    continue
                if len(view) == 0:
                    if flushing:
                        return None
                    try:
                        stream.flush()
                    except _bindings.Err:
                        return "stop"
                    flushing = True
                    continue
                n = min(len(view), _CHUNK, permit)
                try:
                    stream.write(bytes(view[:n]))
                except _bindings.Err:
                    return "stop"
                view = view[n:]
        finally:
            _bindings.drop(stream)

    def _wait_for_response(self, future, ready):
        Ok = _bindings.Ok
        while True:
            answer = future.get()
            if answer is None:
                if self._wait_any(ready) == "timeout":
                    raise self._timed_out("no response")
                continue
            if not isinstance(answer, Ok):
                raise Other("the response was already taken")
            inner = answer.value
            if isinstance(inner, Ok):
                return inner.value
            raise self._from_code(inner.value)

    def _read_response(self, response, sink):
        status = response.status()
        fields = response.headers()
        try:
            headers = [(name, value.decode("utf-8", errors="replace")) for name, value in fields.entries()]
        finally:
            _bindings.drop(fields)
        try:
            body = response.consume()
        except _bindings.Err:
            raise Other("the response body was already taken") from None
        try:
            stream = body.stream()
        except _bindings.Err:
            _bindings.drop(body)
            raise Other("cannot read the response body") from None
        try:
            self._read_body(stream, sink)
        finally:
            _bindings.drop(stream)
            _bindings.drop(self.wt.IncomingBody.finish(body))
        return status, headers

    def _read_body(self, stream, sink):
        streams = self.streams
        while True:
            try:
                chunk = stream.read(_CHUNK)
            except _bindings.Err as e:
                if isinstance(e.value, streams.StreamError_Closed):
                    return
                error = e.value.value
                try:
                    raise self._from_io_error(error) from None
                finally:
                    _bindings.drop(error)
            if chunk:
                sink(chunk)
                continue
            readable = stream.subscribe()
            try:
                which = self._wait_any(readable)
            finally:
                _bindings.drop(readable)
            if which == "timeout":
                raise self._timed_out("the response body did not arrive")

    def _from_io_error(self, error):
        code = self.wt.http_error_code(error)
        if code is not None:
            return self._from_code(code)
        return Other(f"{self.request.shown}: {error.to_debug_string()}")

    def _from_code(self, code):
        """Turns the host's error code into an `HttpError` an operator can act on."""
        authority = self.authority
        name = type(code).__name__.removeprefix("ErrorCode_")
        value = getattr(code, "value", None)
        if name == "HttpRequestDenied":
            return Denied(self._denial_reason())
        if name == "DestinationIpProhibited":
            return Denied(f"the host refused the address `{authority}` resolves to")
        if name == "ConnectionRefused":
            return ConnectionRefused(f"nothing accepts connections at {authority}")
        if name == "ConnectionTimeout":
            return Timeout(f"connecting to {authority}")
        if name in ("ConnectionReadTimeout", "HttpResponseTimeout"):
            return Timeout(f"waiting for {authority} to answer")
        if name == "ConnectionWriteTimeout":
            return Timeout(f"sending the request to {authority}")
        if name == "DnsTimeout":
            return Timeout(f"looking up `{authority}`")
        if name == "DnsError":
            detail = f" ({value.rcode})" if value is not None and value.rcode else ""
            return Dns(f"`{authority}` could not be resolved{detail}")
        if name == "DestinationNotFound":
            return Dns(f"`{authority}` does not resolve to any address")
        if name in ("DestinationUnavailable", "DestinationIpUnroutable"):
            return ConnectionRefused(f"{authority} cannot be reached")
        if name == "ConnectionTerminated":
            return Protocol(f"{authority} closed the connection before answering")
        if name == "HttpResponseIncomplete":
            return Protocol(f"the response from {authority} ended early")
        if name == "HttpProtocolError":
            return Protocol(f"{authority} did not answer with valid HTTP")
        if name == "HttpResponseBodySize":
            size = f" ({show_bytes(value)})" if value is not None else ""
            return Other(
                f"the response body from {authority}{size} is more than the step may receive (its `max_received` limit)"
            )
        if name == "HttpRequestUriInvalid":
            return InvalidUrl(f"the host refused the URL of {self.request.shown}")
        if name == "HttpRequestMethodInvalid":
            return InvalidRequest(f"the host refused the method `{self.request.method}`")
        if name == "HttpRequestBodySize":
            return InvalidRequest("the request body does not have the length its Content-Length announced")
        if name == "TlsCertificateError":
            return Other(
                f"the TLS certificate of {authority} is not trusted (expired, for another name, or from an unknown CA)"
            )
        if name == "TlsProtocolError":
            return Other(f"TLS handshake with {authority} failed")
        if name == "TlsAlertReceived":
            alert = (value.alert_message if value is not None else None) or "alert"
            return Other(f"{authority} ended the TLS handshake: {alert}")
        if name == "InternalError" and value:
            return Other(f"{authority}: {value}")
        return Other(f"{authority}: {name}")

    def _denial_reason(self):
        """The host's reason for a denial. `wasi:http` carries none, so ask
        `check-request`, which names what the grant allows. If the URL passes
        it, the host refused an address the name resolves to."""
        reason = check(self.request.method, str(self.request.url))
        if reason is not None:
            return reason
        return (
            f"the host refused {self.request.shown} under the step's `net` grant "
            "(the URL is granted; an address it resolves to is not)"
        )
