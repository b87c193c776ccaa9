"""A fake OpenAI-compatible HTTP server on 127.0.0.1 with injectable faults, for tests and benchmarks.

It answers ``/v1/chat/completions``, ``/v1/completions`` and ``/v1/models`` deterministically: the reply is a
function of the prompt (see :func:`reply_text`), cut at the request's ``stop`` strings and ``max_tokens`` words.
Faults are injected at ``fault_rate``; whether attempt *n* of a given request body fails, and how, depends only
on ``seed``, the body and *n*, so a run is reproducible whatever the order requests arrive in. Kinds:

- ``500``: HTTP 500 with an error body;
- ``429``: HTTP 429 with a ``Retry-After`` header (``retry_after`` seconds);
- ``slow``: the answer comes after ``slow_seconds`` (meant to exceed the client's timeout);
- ``drop``: the connection is closed without any response;
- ``malformed``: HTTP 200 with a body that is truncated JSON, or JSON without ``choices``.

It can also act as particular servers do: answer chat prompts marked ``[style:NAME]`` as a reasoning model
in that layout (see :data:`THINKING_STYLES`), apply a repetition penalty to requests that do not set one (as
vLLM does with a model's generation config), or refuse every field OpenAI's own API does not know.

Every request is recorded (path, parsed body, ``Authorization`` header, outcome) so tests can check what the
client sent. Run it by hand with ``python tests/openai_server.py --fault-rate 0.2`` (it prints its base URL).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from loopback import LoopbackServer

FAULTS: tuple[str, ...] = ("500", "429", "slow", "drop", "malformed")
# the fields OpenAI's own API accepts (``known_fields_only`` refuses any other)
OPENAI_FIELDS = frozenset(
    {"model", "messages", "prompt", "temperature", "max_tokens", "max_completion_tokens", "stop", "top_p",
     "seed", "n", "stream", "presence_penalty", "frequency_penalty", "logprobs", "user"}
)  # fmt: skip
# how a reasoning model's reply is laid out; a chat prompt containing "[style:NAME]" is answered in style NAME
THINKING_STYLES: tuple[str, ...] = ("reasoning_content", "inline", "template_opened", "unclosed", "plain")


@dataclass
class RecordedRequest:
    """One request as the server saw it."""

    path: str
    body: Any  # parsed JSON (None for GET or unparsable bodies)
    authorization: str | None
    outcome: str  # "ok", a fault kind, "unauthorized" or "bad_request"


@dataclass
class ServerConfig:
    """Behaviour of :class:`FakeOpenAIServer`; every field can be changed while it runs."""

    fault_rate: float = 0.0
    faults: tuple[str, ...] = FAULTS
    seed: int = 0
    latency: float = 0.0  # seconds added to every answer
    slow_seconds: float = 5.0  # how late a "slow" answer comes
    retry_after: str = "1"  # Retry-After header value sent with 429
    always_fail: str | None = None  # prompts containing this text always get HTTP 500
    max_model_len: int | None = None  # reported by /v1/models like vLLM does
    model: str = "fake-model"
    required_key: str | None = None  # when set, requests without "Authorization: Bearer <key>" get HTTP 401
    unsupported: tuple[
        str, ...
    ] = ()  # body fields answered with HTTP 400 "Unsupported parameter" (as o1 does)
    # like vLLM with a model whose generation_config.json asks for one: a repetition penalty applied to
    # every request that does not set ``repetition_penalty`` itself (the reply then changes, see below)
    default_repetition_penalty: float | None = None
    known_fields_only: bool = False  # like OpenAI's API: HTTP 400 for any body field it does not know
    reply_suffix: str = ""  # appended to every reply (e.g. "\ud800", which JSON can spell and UTF-8 cannot)
    hold: threading.Event | None = None  # when set, completions wait (up to a minute) until it is set
    drip_seconds: float = 0.0  # when set, every answer's body is sent one byte per this many seconds
    counters: Counter[str] = field(default_factory=Counter)


def prompt_of(path: str, body: dict[str, Any]) -> str:
    """The text a request asks about: the completion prompt, or all chat message contents joined."""
    if path.endswith("/chat/completions"):
        return "\n".join(str(message.get("content", "")) for message in body.get("messages", []))
    return str(body.get("prompt", ""))


def reply_text(prompt: str, max_tokens: int | None = None, stop: list[str] | str | None = None) -> str:
    """The deterministic answer to ``prompt``: two lines derived from its hash, cut at ``stop`` and ``max_tokens``.

    A "token" here is a space-separated word, which is all a test needs.
    """
    digest = hashlib.sha256(prompt.encode("utf-8")).hexdigest()
    text = f"answer {digest[:12]} {digest[12:20]}\nsecond line {digest[20:28]}"
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    for sequence in stops:
        if sequence and sequence in text:
            text = text[: text.index(sequence)]
    if max_tokens is not None:
        text = " ".join(text.split(" ")[:max_tokens])
    return text


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 1 << 16  # headers and body leave in one write (two small writes meet delayed ACKs: +40 ms)
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            config = self.server.config
            entry: dict[str, Any] = {"id": config.model, "object": "model", "owned_by": "longbench-tests"}
            if config.max_model_len is not None:
                entry["max_model_len"] = config.max_model_len
            self.server.record(RecordedRequest(self.path, None, self.headers.get("Authorization"), "ok"))
            self._send_json(200, {"object": "list", "data": [entry]})
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        authorization = self.headers.get("Authorization")
        path = urlsplit(self.path).path.rstrip("/")  # a base URL may carry a query (``?api-key=...``)
        try:
            body = json.loads(raw)
            assert isinstance(body, dict)
        except (ValueError, AssertionError):
            self.server.record(RecordedRequest(path, None, authorization, "bad_request"))
            self._send_json(
                400, {"error": {"message": "body is not a JSON object", "type": "invalid_request"}}
            )
            return
        if not (path.endswith("/chat/completions") or path.endswith("/completions")):
            self.server.record(RecordedRequest(path, body, authorization, "bad_request"))
            self._send_json(404, {"error": {"message": f"no route {path}", "type": "not_found"}})
            return
        config = self.server.config
        if config.required_key is not None and authorization != f"Bearer {config.required_key}":
            self.server.record(RecordedRequest(path, body, authorization, "unauthorized"))
            self._send_json(401, {"error": {"message": "invalid api key", "type": "invalid_request_error"}})
            return
        rejected = [name for name in config.unsupported if name in body]
        if config.known_fields_only:
            rejected += [name for name in body if name not in OPENAI_FIELDS]
        if rejected:
            self.server.record(RecordedRequest(path, body, authorization, "bad_request"))
            message = f"Unrecognized request argument supplied: {rejected[0]}"
            if rejected[0] in config.unsupported:
                message = f"Unsupported parameter: '{rejected[0]}' is not supported with this model."
            self._send_json(400, {"error": {"message": message, "type": "invalid_request_error"}})
            return
        prompt = prompt_of(path, body)
        fault = self.server.choose_fault(path, raw, prompt)
        self.server.record(RecordedRequest(path, body, authorization, fault or "ok"))
        if config.latency:
            time.sleep(config.latency)
        if config.hold is not None:
            config.hold.wait(60)
        if fault == "drop":
            self.close_connection = True
            return
        if fault == "500":
            self._send_json(500, {"error": {"message": "injected server error", "type": "server_error"}})
            return
        if fault == "429":
            error = {"error": {"message": "injected rate limit", "type": "rate_limit"}}
            self._send_json(429, error, {"Retry-After": config.retry_after})
            return
        if fault == "malformed":
            if self.server.rng_for("malformed", raw).random() < 0.5:
                self._send_raw(200, b'{"id": "cmpl-broken", "choices": [{"text": "trunc')
            else:
                self._send_json(200, {"id": "cmpl-broken", "object": "text_completion"})
            return
        if fault == "slow":
            time.sleep(config.slow_seconds)
        if config.drip_seconds:
            payload = _completion_body(path, body, prompt, config.default_repetition_penalty)
            self._drip(json.dumps(payload).encode("utf-8"), config.drip_seconds)
            return
        payload = _completion_body(path, body, prompt, config.default_repetition_penalty, config.reply_suffix)
        self._send_json(200, payload)

    def _drip(self, data: bytes, seconds: float) -> None:
        """Headers at once, then the body one byte every ``seconds`` (each read gets data in time)."""
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.flush()
            for offset in range(len(data)):
                self.wfile.write(data[offset : offset + 1])
                self.wfile.flush()
                time.sleep(seconds)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send_raw(status, json.dumps(payload).encode("utf-8"), headers)

    def _send_raw(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout): nothing to do
            self.close_connection = True


def penalized(text: str) -> str:
    """What a reply becomes under a repetition penalty: here, each word's repeated letters are dropped."""
    return " ".join("".join(dict.fromkeys(word)) for word in text.split(" "))


def thinking_style(prompt: str) -> str | None:
    """The reply style a chat prompt asks for with ``[style:NAME]`` (None: a plain reply, no thinking)."""
    for style in THINKING_STYLES:
        if f"[style:{style}]" in prompt:
            return style
    return None


def thinking_text(prompt: str) -> str:
    """The reasoning the server 'thinks' before answering ``prompt``: ten words naming it."""
    digest = hashlib.sha256(prompt.encode("utf-8")).hexdigest()
    return "let me think about " + " ".join(digest[k : k + 4] for k in range(0, 28, 4))


def styled_reply(style: str, prompt: str, answer: str, max_tokens: int | None) -> tuple[dict[str, Any], str]:
    """The chat message and finish reason of a reasoning model's reply in ``style`` (see THINKING_STYLES)."""
    thought = thinking_text(prompt)
    if style == "reasoning_content":  # a server with a reasoning parser: the thinking comes apart
        return {"role": "assistant", "content": "\n\n" + answer, "reasoning_content": thought}, "stop"
    if style == "inline":
        return {"role": "assistant", "content": f"<think>\n{thought}\n</think>\n\n{answer}"}, "stop"
    if style == "template_opened":  # the chat template wrote "<think>" itself
        return {"role": "assistant", "content": f"{thought}\n</think>\n\n{answer}"}, "stop"
    if style == "unclosed":  # the budget ran out while thinking
        words = f"<think>\n{thought} {thought} {thought}".split(" ")[: max_tokens or 8]
        return {"role": "assistant", "content": " ".join(words)}, "length"
    return {"role": "assistant", "content": answer}, "stop"


def _completion_body(
    path: str, body: dict[str, Any], prompt: str, default_penalty: float | None = None, suffix: str = ""
) -> dict[str, Any]:
    text = reply_text(prompt, body.get("max_tokens"), body.get("stop")) + suffix
    if default_penalty is not None and body.get("repetition_penalty", default_penalty) != 1.0:
        text = penalized(text)
    usage: dict[str, Any] = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split())}
    common = {"id": "cmpl-" + hashlib.sha256(prompt.encode()).hexdigest()[:8], "created": 0, "usage": usage}
    common["model"] = body.get("model", "")
    if path.endswith("/chat/completions"):
        style = thinking_style(prompt)
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        message, finish = styled_reply(style or "plain", prompt, text, limit)
        if style is not None:
            thought = str(message.get("reasoning_content", "")) or str(message["content"])
            usage["completion_tokens"] = len(thought.split()) + len(text.split())
            if style == "reasoning_content":
                usage["completion_tokens_details"] = {"reasoning_tokens": len(thought.split())}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        choice = {"index": 0, "message": message, "finish_reason": finish}
        return {**common, "object": "chat.completion", "choices": [choice]}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    choice = {"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}
    return {**common, "object": "text_completion", "choices": [choice]}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    allow_reuse_address = True  # a server restarted on the port of one just stopped (tests of outages)

    def __init__(self, config: ServerConfig, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.config = config
        self.lock = threading.Lock()
        self.requests: list[RecordedRequest] = []
        self.attempts: Counter[str] = Counter()

    def record(self, request: RecordedRequest) -> None:
        with self.lock:
            self.requests.append(request)
            self.config.counters[request.outcome] += 1

    def rng_for(self, purpose: str, raw: bytes, attempt: int = 0) -> random.Random:
        digest = hashlib.sha256(raw).hexdigest()
        return random.Random(f"{self.config.seed}:{purpose}:{digest}:{attempt}")

    def choose_fault(self, path: str, raw: bytes, prompt: str) -> str | None:
        config = self.config
        if config.always_fail is not None and config.always_fail in prompt:
            return "500"
        key = path + hashlib.sha256(raw).hexdigest()
        with self.lock:
            attempt = self.attempts[key]
            self.attempts[key] += 1
        rng = self.rng_for("fault", path.encode() + raw, attempt)
        if not config.faults or rng.random() >= config.fault_rate:
            return None
        return rng.choice(config.faults)


class FakeOpenAIServer(LoopbackServer):
    """The fake server, running in a background thread; use as a context manager.

    ``url`` is the base URL to give a client (``http://127.0.0.1:PORT/v1``); ``port`` binds a given port (to
    bring a stopped server back where its clients look for it).
    """

    def __init__(self, port: int = 0, **config: Any) -> None:
        self.config = ServerConfig(**config)
        self._server: _Server
        super().__init__(_Server(self.config, port), "openai-server")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._server.lock:
            return list(self._server.requests)

    @property
    def counters(self) -> Counter[str]:
        with self._server.lock:
            return Counter(self.config.counters)


def main() -> None:
    parser = argparse.ArgumentParser(description="fake OpenAI-compatible server with injected faults")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--faults", default=",".join(FAULTS), help="comma-separated kinds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--slow-seconds", type=float, default=5.0)
    parser.add_argument("--retry-after", default="1")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: any free one)")
    args = parser.parse_args()
    server = FakeOpenAIServer(
        port=args.port,
        fault_rate=args.fault_rate,
        faults=tuple(kind for kind in args.faults.split(",") if kind),
        seed=args.seed,
        latency=args.latency,
        slow_seconds=args.slow_seconds,
        retry_after=args.retry_after,
    )
    with server:
        print(server.url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
