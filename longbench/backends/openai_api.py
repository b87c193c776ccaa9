"""Generation through any OpenAI-compatible HTTP API (OpenAI, ``vllm serve``, ...), many requests in flight.

Chat tasks go to ``/v1/chat/completions`` (the prompt as the single user message), the six completion-style
tasks to ``/v1/completions`` (the raw prompt). Decoding is at the request's temperature (0: greedy) with its
token budget, and every request carries the neutral sampling fields of :mod:`server_decoding` so that the
server's own defaults cannot change it; samsum also stops at ``"\\n"``. A reasoning model's thinking
(``reasoning_content``, or tags in the text) is kept apart from the answer. Requests are spread over one or
more base URLs (least loaded first, ties in turn) and retried by our own policy: exponential backoff with full jitter on connection errors, timeouts,
408/409/429/5xx answers (``Retry-After`` honoured) and malformed bodies. A sample that still fails comes back
as a failed :class:`GenerationResult`; 401/403/404 stop the run. The API key is read from an environment
variable and never printed, logged or written anywhere.

Each attempt has one overall deadline (``request_timeout``: connecting, sending and the whole answer, so a
server dripping a byte a second times out too). A server that refuses connections before any request has
reached it stops the run at once (check ``--base-url``); one that stops accepting connections mid-run is
waited for, without using up the samples' retries, until no request has reached any server for
``unreachable_timeout`` seconds: then the run stops, keeping every prediction written.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from longbench.backends.base import Backend, GenerationRequest, GenerationResult, TokenizerLike
from longbench.backends.server_decoding import NeutralDecoding
from longbench.errors import LongBenchError
from longbench.jsonl import replace_lone_surrogates
from longbench.redaction import is_variable_name, redact_text, redact_url
from longbench.thinking import DEFAULT_THINK_TAGS, ThinkTags, check_think_tags

DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRY_BASE_DELAY_ENV = "LONGBENCH_RETRY_BASE_DELAY"  # seconds; the first retry waits up to this long
DEFAULT_RETRY_BASE_DELAY = 1.0
UNREACHABLE_TIMEOUT_S = 120.0  # default: stop when no request has reached a server for this long
UNREACHABLE_POLL_S = 5.0  # longest wait between tries of a server that refused the connection
MAX_RETRY_DELAY = 60.0  # cap of one backoff wait
MAX_RETRY_AFTER = 300.0  # longest Retry-After we obey
NO_KEY = "EMPTY"  # sent when no key is configured (local servers ignore it)
CHAT_PATH = "/chat/completions"
COMPLETION_PATH = "/completions"
_FATAL_STATUS = frozenset({401, 403, 404})
REFUSALS_TO_STOP = 5  # identical non-retryable errors (4xx but 408/409/429) that stop the run
TOKEN_LIMIT_PARAMETERS: tuple[str, ...] = ("max_tokens", "max_completion_tokens")
_RETRY_STATUS = frozenset({408, 409, 429})
_MAX_ADAPTATIONS = 2  # neutral decoding fields changed for a refusal: top_k's value, then all dropped
# body fields the openai client takes as arguments; any other goes in its ``extra_body``
_COMPLETION_CLIENT_FIELDS = frozenset(
    {"model", "prompt", "temperature", "max_tokens", "stop", "top_p", "seed"}
)
_CHAT_CLIENT_FIELDS = frozenset(
    {"model", "messages", "temperature", "max_tokens", "max_completion_tokens", "stop", "top_p", "seed"}
)


class MalformedResponse(Exception):
    """A 200 answer whose body is not a usable completion."""


class FatalAPIError(LongBenchError):
    """The API refuses every request (bad key, no permission, unknown model or route): stop the run."""


class TiktokenTokenizer:
    """The :class:`TokenizerLike` surface over a tiktoken encoding, for truncating prompts to OpenAI's models."""

    def __init__(self, encoding: str) -> None:
        try:
            import tiktoken
        except ImportError as error:
            raise LongBenchError(
                "--tokenizer tiktoken:<encoding> needs tiktoken: pip install tiktoken"
            ) from error
        try:
            self._encoding = tiktoken.get_encoding(encoding)
        except (KeyError, ValueError) as error:
            raise LongBenchError(f"unknown tiktoken encoding {encoding!r}") from error
        self.name = f"tiktoken:{encoding}"

    def __call__(self, text: str, *args: Any, **kwargs: Any) -> SimpleNamespace:
        return SimpleNamespace(input_ids=self._encoding.encode(text, disallowed_special=()))

    def decode(self, ids: Any, *args: Any, **kwargs: Any) -> str:
        return self._encoding.decode(list(ids))


def load_tokenizer(spec: str) -> TokenizerLike:
    """The tokenizer named by ``spec``: ``tiktoken:<encoding>``, ``builtin:tiny``, or a Hugging Face id or path."""
    if spec.startswith("tiktoken:"):
        return TiktokenTokenizer(spec.removeprefix("tiktoken:"))
    source = spec
    if spec.startswith("builtin:"):
        from longbench.tinymodel import TINY_MODEL, tiny_model_path

        if spec != TINY_MODEL:
            raise LongBenchError(f"unknown built-in tokenizer {spec!r}; valid: {TINY_MODEL}")
        source = str(tiny_model_path())
    try:
        from transformers import AutoTokenizer

        from longbench.hub_access import from_hub

        return from_hub(AutoTokenizer.from_pretrained, source, "tokenizer")
    except LongBenchError:
        raise
    except Exception as error:  # transformers raises many kinds (OSError, ValueError, HTTP errors)
        raise LongBenchError(
            f"cannot load tokenizer {spec!r} ({type(error).__name__}); pass --tokenizer with a Hugging Face "
            "id or local path"
        ) from error


def backoff_delay(attempt: int, base: float, retry_after: float | None, rng: random.Random) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based): full jitter, at least ``retry_after``."""
    delay = rng.uniform(0.0, min(MAX_RETRY_DELAY, base * 2**attempt))
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay


def parse_retry_after(headers: Any) -> float | None:
    """The wait a response asks for, in seconds: ``retry-after-ms`` or ``Retry-After`` (seconds); else None."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name) if headers is not None else None
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue  # an HTTP date: fall back to our own backoff
        if seconds >= 0:
            return seconds
    return None


@dataclass
class _Endpoint:
    url: str
    client: Any  # openai.AsyncOpenAI
    in_flight: int = 0


@dataclass
class _Failure:
    message: str
    retryable: bool
    retry_after: float | None = None
    unreachable: bool = False  # the connection was refused or the host unknown: no server was reached


class OpenAIBackend(Backend):
    """Requests to one or more OpenAI-compatible servers; ``generate`` yields results as they complete."""

    name = "openai"

    def __init__(
        self,
        model: str,
        base_urls: list[str],
        api_key_env: str | None,
        concurrency: int,
        request_timeout: float,
        tokenizer: str | None,
        completion_tasks_as_chat: bool = False,
        max_retries: int = 6,
        retry_base_delay: float | None = None,
        token_limit_parameter: str = "max_tokens",
        send_temperature: bool = True,
        chat_template_kwargs: Mapping[str, Any] | None = None,
        think_tags: ThinkTags | None = DEFAULT_THINK_TAGS,
        neutral_decoding: bool = True,
        unreachable_timeout: float = UNREACHABLE_TIMEOUT_S,
    ) -> None:
        if unreachable_timeout <= 0:
            raise LongBenchError(f"--unreachable-timeout must be positive, got {unreachable_timeout}")
        if concurrency < 1:
            raise LongBenchError(f"--concurrency must be at least 1, got {concurrency}")
        if request_timeout <= 0:
            raise LongBenchError(f"--request-timeout must be positive, got {request_timeout}")
        if max_retries < 0:
            raise LongBenchError(f"--max-retries must be 0 or more, got {max_retries}")
        if token_limit_parameter not in TOKEN_LIMIT_PARAMETERS:
            raise LongBenchError(
                f"unknown token limit parameter {token_limit_parameter!r}; valid: {', '.join(TOKEN_LIMIT_PARAMETERS)}"
            )
        self.model = model
        self._secret = _read_api_key(api_key_env)
        if not base_urls and self._secret is None:
            raise LongBenchError(
                "--backend openai: pass --base-url (e.g. http://localhost:8000/v1 for `vllm serve`); the public "
                f"OpenAI API ({DEFAULT_BASE_URL}) is used only with a key (OPENAI_API_KEY or --api-key-env)"
            )
        self.base_urls = [url.rstrip("/") for url in (base_urls or [DEFAULT_BASE_URL])]
        self.token_limit_parameter = token_limit_parameter
        self.send_temperature = send_temperature
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self.request_timeout = float(request_timeout)
        self.completion_tasks_as_chat = completion_tasks_as_chat
        self.max_retries = max_retries
        self.retry_base_delay = _retry_base_delay(retry_base_delay)
        self.tokenizer_spec = tokenizer or model
        self.chat_template_kwargs = _checked_template_kwargs(chat_template_kwargs)
        self.think_tags = check_think_tags(think_tags)
        self.decoding = NeutralDecoding(enabled=neutral_decoding)
        self.unreachable_timeout = float(unreachable_timeout)
        _import_openai()  # fail now, clearly, when the optional dependency is missing
        self._refusals: Counter[str] = Counter()  # identical non-retryable errors, to stop a doomed run
        self.tokenizer = _api_tokenizer(self.tokenizer_spec)
        self._last_contact: float | None = None  # monotonic time of the last answer from any server
        self._refused_first: set[str] = set()  # endpoints that refused a connection before any answer
        self.stats: Counter[str] = Counter()  # attempts, successes, failures and retries by reason
        self._rng = random.Random()
        self._endpoints: list[_Endpoint] = []
        self._turn = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- what is sent -------------------------------------------------------------------------------------

    def _uses_chat(self, request: GenerationRequest) -> bool:
        return request.chat or self.completion_tasks_as_chat

    def request_body(self, request: GenerationRequest) -> tuple[str, dict[str, Any]]:
        """The API path (relative to a base URL) and the JSON body sent for ``request``."""
        body: dict[str, Any] = {"model": self.model}
        if self._uses_chat(request):
            path = CHAT_PATH
            body["messages"] = [{"role": "user", "content": request.prompt}]
        else:
            path = COMPLETION_PATH
            body["prompt"] = request.prompt
        if self.send_temperature:
            body["temperature"] = request.temperature
        body[self.token_limit_parameter] = request.max_new_tokens
        if request.stop_at_newline:
            body["stop"] = ["\n"]
        body.update(self._decoding_fields(request, chat=path == CHAT_PATH))
        return path, body

    def _decoding_fields(self, request: GenerationRequest, chat: bool) -> dict[str, Any]:
        """The fields beyond prompt and budget: the neutral sampling settings (:mod:`server_decoding`), the
        call's seed, and the chat template's switches (chat requests only)."""
        fields = self.decoding.fields()
        if request.seed is not None:
            fields["seed"] = request.seed
        if chat and self.chat_template_kwargs:
            fields["chat_template_kwargs"] = dict(self.chat_template_kwargs)
        return fields

    def render(self, request: GenerationRequest) -> str:
        path, body = self.request_body(request)
        return json.dumps({"endpoint": "/v1" + path, **body}, ensure_ascii=False, indent=2)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model": self.model,
            "base_urls": [redact_url(url) for url in self.base_urls],
            "endpoints": {
                "chat_tasks": "/v1" + CHAT_PATH,
                "completion_tasks": "/v1" + (CHAT_PATH if self.completion_tasks_as_chat else COMPLETION_PATH),
            },
            "decoding": self._describe_decoding(),
            "decoding_neutral": self.send_temperature and self.decoding.neutral,
            "chat_template_kwargs": dict(self.chat_template_kwargs),
            "think_tags": list(self.think_tags) if self.think_tags else None,
            **self._sent_settings(),
            "tokenizer": self.tokenizer_spec,
            "api_key_env": self.api_key_env,  # the variable's name, never its value
            "concurrency": self.concurrency,
            "request_timeout_s": self.request_timeout,
            "max_retries": self.max_retries,
        }

    def _describe_decoding(self) -> dict[str, Any]:
        """The decoding fields as sent: the temperature is each request's (run.json ``temperature``)."""
        return {
            "temperature": "each request's (run.json temperature; 0 or absent: greedy)"
            if self.send_temperature
            else "not sent (the server's default)",
            self.token_limit_parameter: "each request's max_new_tokens",
            "samsum_stop": ["\n"],
            "seed": "each request's when set",
            **self.decoding.describe(),
        }

    def chat_text(self, prompt: str) -> str | None:
        """``prompt`` in the tokenizer's own chat template, as a server serving the same model renders it
        (None when the tokenizer has none, e.g. tiktoken): used to count the template's tokens and to see
        whether it opens the thinking tag."""
        from longbench.prompts import chat_template_from_option, wrap_chat

        if not getattr(self.tokenizer, "chat_template", None):
            return None
        template = chat_template_from_option("tokenizer", self.tokenizer)
        try:
            return wrap_chat(prompt, self.tokenizer, template, self.chat_template_kwargs)
        except Exception:  # noqa: BLE001 -- a template this side cannot render: the server's is then unknown
            return None

    def chat_template_tokens(self) -> int | None:
        """Tokens the server's chat template adds, counted with the tokenizer's own template (None when it
        has none)."""
        from longbench.prompts import encode_model_input

        wrapped = self.chat_text("")
        if wrapped is None:
            return None
        bare = len(self.tokenizer("", truncation=False).input_ids)  # type: ignore[misc]
        return max(0, len(encode_model_input(wrapped, self.tokenizer, chat_wrapped=True)) - bare)  # type: ignore[arg-type]

    def _sent_settings(self) -> dict[str, Any]:
        """How requests are sent, as flat keys compared on resume (a different way makes other predictions)."""
        return {
            "completion_as_chat": self.completion_tasks_as_chat,
            "token_limit_parameter": self.token_limit_parameter,
            "omit_temperature": not self.send_temperature,
        }

    # -- the event loop thread ----------------------------------------------------------------------------

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=self._loop.run_forever, name="longbench-openai", daemon=True
            )
            self._thread.start()
        return self._loop

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._ensure_loop()).result()

    async def _clients(self) -> list[_Endpoint]:
        if not self._endpoints:
            AsyncOpenAI = _import_openai().AsyncOpenAI  # noqa: N806 -- a class

            self._endpoints = [
                _Endpoint(
                    url=url,
                    client=AsyncOpenAI(
                        api_key=self._secret or NO_KEY,
                        base_url=url,
                        max_retries=0,  # the retry policy is ours
                        timeout=self.request_timeout,
                    ),
                )
                for url in self.base_urls
            ]
            for endpoint in self._endpoints:  # import the API resources now, not inside the first timeout
                _ = endpoint.client.chat.completions, endpoint.client.completions, endpoint.client.models
        return self._endpoints

    def _pick(self, avoid: _Endpoint | None = None) -> _Endpoint:
        """The least loaded endpoint, not ``avoid`` (which just failed); among equals, the next in turn."""
        count = len(self._endpoints)
        order = [self._endpoints[(self._turn + offset) % count] for offset in range(count)]
        if count > 1 and avoid is not None:
            order.remove(avoid)
        chosen = min(order, key=lambda endpoint: endpoint.in_flight)
        self._turn = (self._endpoints.index(chosen) + 1) % count
        return chosen

    # -- generation ---------------------------------------------------------------------------------------

    def generate(self, requests: Iterable[GenerationRequest]) -> Iterator[GenerationResult]:
        """Requests are taken from ``requests`` as concurrency slots free up (lazily, on the event loop)."""
        pending = iter(requests)
        results: queue.Queue[GenerationResult | BaseException | None] = queue.Queue()
        future = asyncio.run_coroutine_threadsafe(
            self._generate_all(pending, results.put), self._ensure_loop()
        )
        finished = False
        try:
            while True:
                item = results.get()
                if item is None:
                    finished = True
                    return
                if isinstance(item, BaseException):
                    finished = True
                    raise item
                yield item
        finally:
            if not finished:  # the caller stopped early (error, interrupt): stop the requests in flight
                future.cancel()
                _wait_for_end(results, timeout=5.0)

    async def _generate_all(
        self,
        requests: Iterator[GenerationRequest],
        emit: Callable[[GenerationResult | BaseException | None], None],
    ) -> None:
        try:
            await self._clients()
            todo = requests
            stopping = asyncio.Event()  # set when the caller goes away; checked as well as cancellation

            async def worker() -> None:
                for request in todo:
                    if stopping.is_set():
                        return
                    emit(await self._generate_one(request, stopping))

            workers = [asyncio.ensure_future(worker()) for _ in range(self.concurrency)]
            try:
                done, _ = await asyncio.wait(workers, return_when=asyncio.FIRST_EXCEPTION)
                for task in done:
                    task.result()  # re-raise a fatal error
            finally:
                stopping.set()
                for task in workers:
                    task.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
        except asyncio.CancelledError:
            emit(None)
            raise
        except LongBenchError as error:  # fatal API errors, and bad input met while building a request
            emit(error)
        except Exception as error:  # a bug: surface it to the caller rather than hang it
            emit(LongBenchError(self._scrub(f"openai backend failed: {type(error).__name__}: {error}")))
        else:
            emit(None)

    async def _generate_one(self, request: GenerationRequest, stopping: asyncio.Event) -> GenerationResult:
        failure = _Failure("not attempted", retryable=False)
        endpoint: _Endpoint | None = None
        attempt = retries = 0
        while True:
            if attempt:
                delay = backoff_delay(attempt - 1, self.retry_base_delay, failure.retry_after, self._rng)
                await asyncio.sleep(self._bounded_wait(delay) if failure.unreachable else delay)
            attempt += 1
            endpoint = self._pick(avoid=endpoint)
            endpoint.in_flight += 1
            self.stats["attempts"] += 1
            try:
                result = await self._send_adapted(endpoint, request)
            except Exception as error:
                failure = self._classify(error, endpoint)
            else:
                self.stats["successes"] += 1
                return result
            finally:
                endpoint.in_flight -= 1
            if failure.unreachable:
                self._stop_if_unreachable(endpoint)
            elif not failure.retryable:
                self._stop_if_refused_again(failure.message)
            if not failure.retryable or stopping.is_set():
                break
            if not failure.unreachable:  # waiting for a server that went away uses up no retries
                if retries >= self.max_retries:
                    break
                retries += 1
            self.stats["retries"] += 1
            self.stats["retry: " + failure.message.split(":")[0]] += 1
        self.stats["failures"] += 1
        return GenerationResult.failure(request, self._scrub(f"{failure.message} (after {attempt} attempts)"))

    async def _attempt(
        self, endpoint: _Endpoint, path: str, body: dict[str, Any], request: GenerationRequest
    ) -> GenerationResult:
        """One attempt under one overall deadline (the client's own timeout applies to each read only), noting
        when a server answered at all."""
        openai = _import_openai()
        try:
            result = await asyncio.wait_for(self._send(endpoint, path, body, request), self.request_timeout)
        except (openai.APIStatusError, MalformedResponse, openai.APIResponseValidationError):
            self._last_contact = time.monotonic()  # an answer, if not a usable one: the server is there
            raise
        self._last_contact = time.monotonic()
        return result

    def _bounded_wait(self, delay: float) -> float:
        """``delay``, at most :data:`UNREACHABLE_POLL_S` (a server that is back is used again soon) and not past
        the moment the unreachable server is given up on."""
        delay = min(delay, UNREACHABLE_POLL_S)
        if self._last_contact is None:
            return delay
        left = self._last_contact + self.unreachable_timeout - time.monotonic()
        return max(0.0, min(delay, left + 0.01))

    def _stop_if_unreachable(self, endpoint: _Endpoint) -> None:
        """Raise :class:`FatalAPIError` when a refused connection means no request can get through: no server
        has answered yet and every one refused (a wrong ``--base-url``), or none has answered for
        ``unreachable_timeout`` seconds (the server went away and did not come back)."""
        where = ", ".join(redact_url(e.url) for e in self._endpoints)
        if self._last_contact is None:
            self._refused_first.add(endpoint.url)
            if len(self._refused_first) == len(self._endpoints):
                raise FatalAPIError(
                    f"cannot connect to {where} (connection refused or unknown host); check --base-url and "
                    "that the server is running"
                )
            return
        silent = time.monotonic() - self._last_contact
        if silent >= self.unreachable_timeout:
            raise FatalAPIError(
                f"no request has reached {where} for {silent:.0f} s (connection refused); stopped, every "
                "prediction written is kept: run the same command again when the server is back"
            )

    async def _send_adapted(self, endpoint: _Endpoint, request: GenerationRequest) -> GenerationResult:
        """Send ``request``; when the server refuses one of the neutral decoding fields, send it again at
        once as :class:`NeutralDecoding` adapts them (at most twice a run: ``top_k``, then all of them)."""
        openai = _import_openai()
        adapted = 0
        while True:
            path, body = self.request_body(request)
            try:
                return await self._attempt(endpoint, path, body, request)
            except openai.APIStatusError as error:
                # any status: llama-cpp-python answers a field it refuses with HTTP 500
                if adapted == _MAX_ADAPTATIONS or not self.decoding.adapt(str(error), body):
                    raise
            adapted += 1
            self.stats["decoding fields adapted to a refusal"] += 1

    async def _send(
        self, endpoint: _Endpoint, path: str, body: dict[str, Any], request: GenerationRequest
    ) -> GenerationResult:
        chat = path == CHAT_PATH
        known = _CHAT_CLIENT_FIELDS if chat else _COMPLETION_CLIENT_FIELDS
        arguments = {key: value for key, value in body.items() if key in known}
        extra = {key: value for key, value in body.items() if key not in known}
        create = endpoint.client.chat.completions.create if chat else endpoint.client.completions.create
        response = await create(**arguments, extra_body=extra or None)
        return self._result_of(request, response, chat)

    def _result_of(self, request: GenerationRequest, response: Any, chat: bool) -> GenerationResult:
        """The result of a completion response: the answer, the thinking apart, the finish reason and usage."""
        text = _response_text(response, chat=chat)
        usage = getattr(response, "usage", None)
        details = getattr(usage, "completion_tokens_details", None)
        return self.result(
            request,
            text,
            reasoning=_reasoning_text(response) if chat else None,
            finish_reason=getattr(response.choices[0], "finish_reason", None),
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            generated_tokens=getattr(usage, "completion_tokens", None),
            thinking_tokens=getattr(details, "reasoning_tokens", None),
        )

    def _stop_if_refused_again(self, message: str) -> None:
        """Raise :class:`FatalAPIError` once the same non-retryable error has come ``REFUSALS_TO_STOP`` times:
        a server that rejects the request format (say "Unsupported parameter: 'max_tokens'") rejects them all."""
        self._refusals[message] += 1
        if self._refusals[message] >= REFUSALS_TO_STOP:
            hint = ""
            if "max_tokens" in message:
                hint = " (for APIs that want max_completion_tokens: --token-limit-parameter max_completion_tokens)"
            elif "temperature" in message:
                hint = " (for APIs that refuse a temperature: --omit-temperature)"
            raise FatalAPIError(f"stopped after {REFUSALS_TO_STOP} identical refusals: {message}{hint}")

    def _classify(self, error: BaseException, endpoint: _Endpoint) -> _Failure:
        """Whether ``error`` is worth another attempt; raises :class:`FatalAPIError` when no request can work."""
        openai = _import_openai()

        where = redact_url(endpoint.url)
        if isinstance(error, (openai.APITimeoutError, asyncio.TimeoutError)):
            return _Failure(f"timeout: no whole answer from {where} within {self.request_timeout:g} s", True)
        if isinstance(error, openai.APIConnectionError):
            cause = error.__cause__ or error
            refused = type(cause).__name__ == "ConnectError"  # httpx: refused, unknown host, unroutable
            return _Failure(f"connection error: {where}: {type(cause).__name__}", True, unreachable=refused)
        if isinstance(error, openai.APIStatusError):
            status = error.status_code
            detail = self._scrub(str(error))[:300]
            if status in _FATAL_STATUS:
                raise FatalAPIError(
                    f"{where} answered HTTP {status} for model {self.model!r}: {detail} "
                    "(check --model, --base-url and --api-key-env)"
                )
            retryable = status in _RETRY_STATUS or status >= 500
            retry_after = parse_retry_after(error.response.headers) if retryable else None
            return _Failure(f"HTTP {status}: {where}: {detail}", retryable, retry_after)
        if isinstance(error, (MalformedResponse, ValueError, openai.APIResponseValidationError)):
            return _Failure(f"malformed response: {where}: {type(error).__name__}: {error}"[:300], True)
        return _Failure(f"unexpected error: {where}: {type(error).__name__}: {error}"[:300], False)

    def _scrub(self, text: str) -> str:
        """``text`` without the key and with every URL in it redacted (credentials, key-like parameters)."""
        return redact_text(text.replace(self._secret, "***") if self._secret else text)

    # -- model information and cleanup -------------------------------------------------------------------

    def context_window(self) -> int | None:
        """The ``max_model_len`` a vLLM-style ``/v1/models`` reports for this model; None when not told.

        Raises :class:`FatalAPIError` when every base URL refuses the connection (nothing listens there)."""
        try:
            return self._run(self._model_len())
        except FatalAPIError:
            raise
        except Exception:  # any other failure only means "unknown"
            return None

    async def _model_len(self) -> int | None:
        openai = _import_openai()
        for endpoint in await self._clients():  # the first that answers
            try:
                page = await endpoint.client.models.list(timeout=min(self.request_timeout, 30.0))
            except openai.APIConnectionError as error:
                if self._classify(error, endpoint).unreachable:
                    self._stop_if_unreachable(endpoint)  # raises once every one has refused
                    continue
                raise
            self._last_contact = time.monotonic()
            for entry in page.data:
                if entry.id == self.model:
                    value = (entry.model_extra or {}).get("max_model_len")
                    return value if isinstance(value, int) and value > 0 else None
            return None
        return None

    def close(self) -> None:
        if self._loop is None:
            return

        async def shutdown() -> None:
            current = asyncio.current_task()
            leftovers = [task for task in asyncio.all_tasks() if task is not current]
            for task in leftovers:  # requests of a generation the caller abandoned
                task.cancel()
            await asyncio.gather(*leftovers, return_exceptions=True)
            for endpoint in self._endpoints:
                await endpoint.client.close()

        try:
            self._run(shutdown())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._loop.close()
            self._loop = None
            self._thread = None
            self._endpoints = []


def _api_tokenizer(spec: str) -> TokenizerLike:
    """:func:`load_tokenizer`; when the model's own name is no loadable tokenizer (an API model such as
    gpt-4o), the error says how to name one."""
    try:
        return load_tokenizer(spec)
    except LongBenchError as error:
        if spec.startswith(("tiktoken:", "builtin:")):
            raise
        raise LongBenchError(
            f"{error}; for an OpenAI model pass --tokenizer tiktoken:o200k_base (gpt-4o, o1, ...) or "
            "tiktoken:cl100k_base (gpt-4, gpt-3.5)"
        ) from None


def _wait_for_end(results: queue.Queue[Any], timeout: float) -> None:
    """Discard results until the generation's end marker (None or an error) arrives, or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            item = results.get(timeout=left)
        except queue.Empty:
            return
        if item is None or isinstance(item, BaseException):
            return


def _response_text(response: Any, chat: bool) -> str:
    """The generated text of a completion response; :class:`MalformedResponse` when it has none."""
    choices = getattr(response, "choices", None)
    if not isinstance(choices, list) or not choices:
        raise MalformedResponse("no choices in the response")
    choice = choices[0]
    if chat:
        message = getattr(choice, "message", None)
        if message is None:
            raise MalformedResponse("no message in the first choice")
        content = getattr(message, "content", None)
        return "" if content is None else _require_str(content)
    return _require_str(getattr(choice, "text", None))


def _reasoning_text(response: Any) -> str | None:
    """The thinking a server returned apart from the answer (``reasoning_content``, or ``reasoning`` as some
    servers name it); None when there is none."""
    message = getattr(response.choices[0], "message", None)
    for name in ("reasoning_content", "reasoning"):
        value = getattr(message, name, None)
        if isinstance(value, str) and value:
            return value
    return None


def _checked_template_kwargs(kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    from longbench.backends.chat import check_template_kwargs

    return check_template_kwargs(kwargs)


def _require_str(value: Any) -> str:
    """The generated text, lone surrogates (which no file can hold) replaced by U+FFFD."""
    if not isinstance(value, str):
        raise MalformedResponse(f"generated text is {type(value).__name__}, not a string")
    return replace_lone_surrogates(value)


def _import_openai() -> Any:
    try:
        import openai
    except ImportError as error:
        raise LongBenchError(
            "--backend openai needs the openai package: pip install 'longbench[openai]'"
        ) from error
    return openai


def _read_api_key(variable: str | None) -> str | None:
    """The key in environment variable ``variable``; without one, OPENAI_API_KEY if set, else no key."""
    if variable is None:
        return os.environ.get("OPENAI_API_KEY") or None
    if not is_variable_name(variable):
        raise LongBenchError(
            "--api-key-env expects the NAME of an environment variable that holds the key (e.g. OPENAI_API_KEY), "
            "not the key itself (the value given is not shown)"
        )
    value = os.environ.get(variable)
    if not value:
        raise LongBenchError(f"--api-key-env {variable}: that environment variable is not set or empty")
    return value


def _retry_base_delay(explicit: float | None) -> float:
    if explicit is not None:
        return max(0.0, float(explicit))
    raw = os.environ.get(RETRY_BASE_DELAY_ENV)
    if raw is None:
        return DEFAULT_RETRY_BASE_DELAY
    try:
        return max(0.0, float(raw))
    except ValueError as error:
        raise LongBenchError(f"{RETRY_BASE_DELAY_ENV}={raw!r} is not a number of seconds") from error
