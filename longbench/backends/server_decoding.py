"""Neutral decoding on OpenAI-compatible servers: the sampling fields every request carries, and what a
server's refusal of them changes.

A server fills every sampling setting a request leaves out with its own defaults: vLLM (0.8+) takes the
model's ``generation_config.json`` (Qwen models ship ``repetition_penalty`` 1.05-1.1), llama-cpp-python's
server applies ``repeat_penalty`` 1.1, ``top_k`` 40 and ``min_p`` 0.05. So every request carries the
settings that make its decoding that of the in-process backends (greedy, or the run's temperature and
nothing else): ``top_p`` 1 and the servers' extension fields at their neutral values.

``top_k`` means "off" at -1 for vLLM and SGLang (which refuse 0 in older releases) and at 0 for llama.cpp
(llama-cpp-python's server refuses -1, with HTTP 500); -1 is sent first and a refusal naming ``top_k``, of
any status, switches to 0. An API
that refuses the other fields (as OpenAI's does: HTTP 400 naming an unsupported or unrecognized parameter)
gets none of them after its first refusal; both decisions are taken once per run.
"""

from __future__ import annotations

import threading
from typing import Any

# field -> neutral value; ``repetition_penalty`` is vLLM's and SGLang's name, ``repeat_penalty`` llama.cpp's
NEUTRAL_FIELDS: dict[str, Any] = {
    "top_p": 1.0,
    "top_k": -1,
    "min_p": 0.0,
    "repetition_penalty": 1.0,
    "repeat_penalty": 1.0,
}
TOP_K_OFF_ALTERNATIVE = 0  # llama.cpp's "off"


class NeutralDecoding:
    """The neutral fields sent with each request, adapted at most twice per run to a server's refusals."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._fields: dict[str, Any] = dict(NEUTRAL_FIELDS) if enabled else {}
        self.refusal: str | None = None  # the server's message that made us stop sending them
        self._lock = threading.Lock()

    def fields(self) -> dict[str, Any]:
        """The fields to add to the next request's body."""
        with self._lock:
            return dict(self._fields)

    def adapt(self, message: str, sent: dict[str, Any]) -> bool:
        """Take a server's refusal ``message`` of a request whose body was ``sent``: True when it named one of
        the neutral fields sent (the request should then be sent again, adapted), else False."""
        with self._lock:
            named = [name for name in NEUTRAL_FIELDS if name in sent and name in message]
            if not named:
                return False
            if any(sent.get(name) != self._fields.get(name) for name in NEUTRAL_FIELDS):
                return (
                    True  # built before an earlier refusal changed the fields: send it again as they are now
                )
            if named == ["top_k"] and self._fields["top_k"] != TOP_K_OFF_ALTERNATIVE:
                self._fields["top_k"] = TOP_K_OFF_ALTERNATIVE
                return True
            self._fields = {}
            self.refusal = message[:200]
            return True

    @property
    def neutral(self) -> bool:
        """Whether every request carries the neutral fields (decoding is then known to be the in-process one)."""
        with self._lock:
            return bool(self._fields)

    def describe(self) -> dict[str, Any]:
        """What run.json records: the fields sent, and why none are when the server refused them."""
        with self._lock:
            return {
                "neutral_fields_sent": dict(self._fields),
                "neutral_fields_refused": self.refusal,
            }
