"""A local stand-in for the Hugging Face hub: a real HTTP server on 127.0.0.1 serving repository files.

It speaks the part of the hub protocol that ``huggingface_hub.hf_hub_download`` uses for a plain (non-Xet)
file: ``HEAD`` and ``GET`` on ``/{type}s/{repo}/resolve/{revision}/{filename}`` (no prefix for models), answered
with the ``X-Repo-Commit``, ``ETag`` and ``Content-Length`` headers the client requires, ``Range`` requests for
resumed downloads, and the hub's 404 error codes (``RevisionNotFound``, ``EntryNotFound``, ``RepoNotFound``).
Every request is recorded, so a test can tell a cache hit from a download.

Use it as a context manager and point the client at ``server.url`` (``endpoint=`` or ``HF_ENDPOINT``)::

    with HubServer() as hub:
        hub.add_file("THUDM/LongBench", "data.zip", payload, repo_type="dataset")
        hf_hub_download("THUDM/LongBench", "data.zip", repo_type="dataset", endpoint=hub.url, cache_dir=tmp)
        assert hub.count("GET") == 1
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

from loopback import LoopbackServer

_RESOLVE = re.compile(
    r"^/(?:(?P<type>datasets|spaces)/)?(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$"
)
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


@dataclass(frozen=True)
class Request:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]


class HubServer(LoopbackServer):
    """Serve repository files over HTTP on an ephemeral port of 127.0.0.1, from a daemon thread."""

    def __init__(self) -> None:
        # (repo_type, repo_id) -> revision name -> filename -> content
        self._repos: dict[tuple[str, str], dict[str, dict[str, bytes]]] = {}
        self._lock = threading.Lock()
        self.requests: list[Request] = []
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        super().__init__(server, "hubserver")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_file(
        self,
        repo_id: str,
        filename: str,
        content: bytes,
        *,
        revision: str = "main",
        repo_type: str = "dataset",
    ) -> str:
        """Publish ``content`` as ``filename`` at ``revision`` (replacing it); return the revision's commit hash."""
        with self._lock:
            files = self._repos.setdefault((repo_type, repo_id), {}).setdefault(revision, {})
            files[filename] = content
            return _commit_of(repo_id, revision, files)

    def commit(self, repo_id: str, *, revision: str = "main", repo_type: str = "dataset") -> str:
        """The commit hash the server reports for ``revision``."""
        with self._lock:
            return _commit_of(repo_id, revision, self._repos[(repo_type, repo_id)][revision])

    def count(self, method: str | None = None, filename: str | None = None) -> int:
        """How many requests were received, optionally only those with ``method`` for a path ending in ``filename``."""
        with self._lock:
            return sum(
                1
                for request in self.requests
                if (method is None or request.method == method)
                and (filename is None or request.path.endswith("/" + filename))
            )

    def _lookup(
        self, repo_type: str, repo_id: str, revision: str, filename: str
    ) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body for a resolve request (body is the file, or empty for errors)."""
        with self._lock:
            revisions = self._repos.get((repo_type, repo_id))
            if revisions is None:
                return 404, {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"}, b""
            by_commit = {_commit_of(repo_id, name, files): files for name, files in revisions.items()}
            files = revisions.get(revision) or by_commit.get(revision)
            if files is None:
                return 404, {"X-Error-Code": "RevisionNotFound", "X-Error-Message": "Invalid rev id"}, b""
            commit = _commit_of(repo_id, revision, files) if revision in revisions else revision
            content = files.get(filename)
            if content is None:
                headers = {
                    "X-Error-Code": "EntryNotFound",
                    "X-Error-Message": "Entry not found",
                    "X-Repo-Commit": commit,
                }
                return 404, headers, b""
            etag = hashlib.sha256(content).hexdigest()
            return 200, {"X-Repo-Commit": commit, "ETag": f'"{etag}"', "Accept-Ranges": "bytes"}, content

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)


def _commit_of(repo_id: str, revision: str, files: dict[str, bytes]) -> str:
    """A stable 40-hex commit hash for one revision's content."""
    digest = hashlib.sha1(f"{repo_id}@{revision}".encode())
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return digest.hexdigest()


def _handler_for(server: HubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - silence stderr logging
            pass

        def do_HEAD(self) -> None:
            self._resolve(send_body=False)

        def do_GET(self) -> None:
            self._resolve(send_body=True)

        def _resolve(self, send_body: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            server._record(Request(self.command, path, dict(self.headers.items())))
            match = _RESOLVE.match(path)
            if match is None:
                self._reply(404, {"X-Error-Message": "not a resolve URL"}, b"", send_body)
                return
            repo_type = {"datasets": "dataset", "spaces": "space", None: "model"}[match["type"]]
            status, headers, body = server._lookup(repo_type, match["repo"], match["rev"], match["file"])
            if status == 200 and send_body and "Range" in self.headers:
                status, headers, body = _ranged(self.headers["Range"], headers, body)
            self._reply(status, headers, body, send_body)

        def _reply(self, status: int, headers: dict[str, str], body: bytes, send_body: bool) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            if send_body:
                self.wfile.write(body)

    return Handler


def _ranged(spec: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
    """Apply a ``Range: bytes=a-b`` header (206), or answer 416 when it cannot be satisfied."""
    match = _RANGE.match(spec.strip())
    if match is None or int(match[1]) >= len(body):
        return 416, {"Content-Range": f"bytes */{len(body)}"}, b""
    start = int(match[1])
    end = min(int(match[2]) if match[2] else len(body) - 1, len(body) - 1)
    headers = {**headers, "Content-Range": f"bytes {start}-{end}/{len(body)}"}
    return 206, headers, body[start : end + 1]
