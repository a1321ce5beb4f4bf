"""A local Hugging Face Hub for tests: model repositories served over real HTTP from local files.

It answers the part of the Hub's HTTP API that huggingface_hub's client uses to read a model
(written against huggingface_hub 2.4; see its ``hf_api.py`` and ``file_download.py``):

* ``GET /api/models/{repo}`` and ``…/revision/{rev}``: model info (sha, siblings, gated,
  cardData from the README's YAML front matter), what ``HfApi.model_info`` reads;
* ``GET /api/models/{repo}/tree/{rev}``: the file listing ``snapshot_download`` filters;
* ``HEAD``/``GET /{repo}/resolve/{rev}/{file}``: a plain file answers itself with ``ETag`` (the
  git blob id), ``X-Repo-Commit`` and ``Content-Length``; a large-file-storage file (weights)
  answers 302 to a "CDN" with ``X-Linked-Etag`` (its sha256), ``X-Linked-Size`` and
  ``X-Repo-Commit``, like the Hub. The CDN is this same server named ``localhost`` instead of
  127.0.0.1: another origin, so the client reads the metadata off the redirect and drops its
  token before following it, as it does for the Hub's real CDN;
* ``Range`` requests (206), which is how safetensors headers are read without the weights.

Errors carry the Hub's ``X-Error-Code`` header (RepoNotFound, RevisionNotFound, EntryNotFound,
GatedRepo), which the client turns into its typed errors. A gated repo lists its info and
files but answers 401 to a download (403 when a token is sent), as the Hub does before its
license is accepted. No Xet headers are ever sent, so the client takes its plain HTTP path.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

LFS_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt")
"""Files the Hub keeps in large file storage (and serves from its CDN)."""

_INFO = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>[^/]+))?$")
_TREE = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?:/(?P<path>.+))?$")
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
_CDN = re.compile(r"^/cdn/(?P<sha256>[0-9a-f]{64})$")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class HubError(Exception):
    """An error answer: status, the Hub's X-Error-Code, a message, and the commit when the repo exists."""

    def __init__(self, status: int, code: str | None, message: str, commit: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.commit = status, code, message, commit


@dataclass(frozen=True)
class HubFile:
    """One file of a repo, with the ids the Hub gives it."""

    path: str
    data: bytes

    @property
    def lfs(self) -> bool:
        return self.path.endswith(LFS_SUFFIXES)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def blob_id(self) -> str:
        """The git blob id: what the Hub sends as a plain file's ETag."""
        return hashlib.sha1(b"blob %d\0" % len(self.data) + self.data).hexdigest()


@dataclass(frozen=True)
class HubRepo:
    """A model repo at one commit: its files, its model card's metadata and whether it is gated."""

    repo_id: str
    files: dict[str, HubFile]
    gated: bool = False

    @property
    def sha(self) -> str:
        """A commit id made from the files, so a test can tell which commit a client recorded."""
        listing = "\n".join(f"{name} {file.blob_id}" for name, file in sorted(self.files.items()))
        return hashlib.sha1(f"{self.repo_id}\n{listing}".encode()).hexdigest()

    @property
    def card_data(self) -> dict[str, Any] | None:
        """The README's YAML front matter, which the Hub returns as ``cardData``."""
        readme = self.files.get("README.md")
        text = readme.data.decode("utf-8", errors="replace") if readme else ""
        if not text.startswith("---\n"):
            return None
        front, _, _ = text[4:].partition("\n---")
        loaded = yaml.safe_load(front)
        return loaded if isinstance(loaded, dict) else None

    def info(self) -> dict[str, Any]:
        return {
            "_id": self.sha[:24],
            "id": self.repo_id,
            "modelId": self.repo_id,
            "author": self.repo_id.split("/")[0],
            "sha": self.sha,
            "lastModified": "2025-01-01T00:00:00.000Z",
            "private": False,
            "disabled": False,
            "gated": "manual" if self.gated else False,
            "tags": ["safetensors"] if any(name.endswith(".safetensors") for name in self.files) else [],
            "cardData": self.card_data,
            "siblings": [{"rfilename": name} for name in sorted(self.files)],
        }

    def tree(self, prefix: str) -> list[dict[str, Any]]:
        entries = []
        for name, file in sorted(self.files.items()):
            if prefix and not name.startswith(prefix.rstrip("/") + "/"):
                continue
            entry: dict[str, Any] = {"type": "file", "oid": file.blob_id, "size": len(file.data), "path": name}
            if file.lfs:
                entry["lfs"] = {"oid": file.sha256, "size": len(file.data), "pointerSize": 134}
            entries.append(entry)
        return entries


@dataclass(frozen=True)
class Request:
    """What the server was asked, so a test can check what the client fetched (and what it did not)."""

    method: str
    path: str
    range: str | None
    authorized: bool


@dataclass
class LocalHub:
    """The served repos and the requests seen; ``url`` is what HF_ENDPOINT should be."""

    url: str = ""
    repos: dict[str, HubRepo] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)

    def add(self, repo_id: str, folder: Path, *, readme: str | None = None, gated: bool = False) -> HubRepo:
        """Serve the files under ``folder`` as ``repo_id`` (plus a README.md with ``readme``'s text)."""
        paths = (path.relative_to(folder).as_posix() for path in sorted(folder.rglob("*")) if path.is_file())
        files = {name: HubFile(name, (folder / name).read_bytes()) for name in paths}
        if readme is not None:
            files["README.md"] = HubFile("README.md", readme.encode("utf-8"))
        repo = HubRepo(repo_id, files, gated)
        self.repos[repo_id] = repo
        return repo

    # -- answering ---------------------------------------------------------------------------------

    def repo(self, repo_id: str, revision: str | None) -> HubRepo:
        repo = self.repos.get(repo_id)
        if repo is None:
            raise HubError(404, "RepoNotFound", "Repository not found")
        if revision not in (None, "main", repo.sha):
            raise HubError(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return repo

    def file(self, repo_id: str, revision: str, path: str, authorized: bool) -> tuple[HubRepo, HubFile]:
        repo = self.repo(repo_id, revision)
        if repo.gated:
            raise HubError(
                403 if authorized else 401,
                "GatedRepo",
                f"Access to model {repo_id} is restricted. You must have access to it and be authenticated to "
                "access it. Please log in.",
            )
        file = repo.files.get(path)
        if file is None:
            raise HubError(404, "EntryNotFound", f"{path} does not exist on {revision}", commit=repo.sha)
        return repo, file

    def blob(self, sha256: str) -> HubFile:
        for repo in self.repos.values():
            for file in repo.files.values():
                if file.lfs and file.sha256 == sha256:
                    return file
        raise HubError(404, None, "Not found")


def _handler(hub: LocalHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        """One request: route it, then answer with the Hub's headers."""

        def do_GET(self) -> None:
            self._answer(body=True)

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: pytest shows the test's own output, not an access log."""

        def _answer(self, *, body: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            authorized = "authorization" in {name.lower() for name in self.headers}
            hub.requests.append(Request(self.command, path, self.headers.get("Range"), authorized))
            try:
                self._route(path, authorized, body)
            except HubError as error:
                headers = {"X-Error-Message": error.message}
                if error.code:
                    headers["X-Error-Code"] = error.code
                if error.commit:
                    headers["X-Repo-Commit"] = error.commit
                self._send(error.status, json.dumps({"error": error.message}).encode(), headers, body)

        def _route(self, path: str, authorized: bool, body: bool) -> None:
            if match := _TREE.match(path):
                repo = hub.repo(match["repo"], match["rev"])
                self._send(200, json.dumps(repo.tree(match["path"] or "")).encode(), {}, body, "application/json")
            elif match := _INFO.match(path):
                repo = hub.repo(match["repo"], match["rev"])
                self._send(200, json.dumps(repo.info()).encode(), {}, body, "application/json")
            elif match := _RESOLVE.match(path):
                repo, file = hub.file(match["repo"], match["rev"], match["path"], authorized)
                headers = {"X-Repo-Commit": repo.sha, "ETag": f'"{file.blob_id}"'}
                if file.lfs:
                    port = self.server.server_address[1]
                    headers |= {
                        "Location": f"http://localhost:{port}/cdn/{file.sha256}",
                        "X-Linked-Etag": f'"{file.sha256}"',
                        "X-Linked-Size": str(len(file.data)),
                    }
                    self._send(302, b"", headers, body)
                else:
                    self._send_file(file.data, headers, body)
            elif match := _CDN.match(path):
                file = hub.blob(match["sha256"])
                self._send_file(file.data, {"ETag": f'"{file.sha256}"'}, body)
            else:
                raise HubError(404, None, "Not found")

        def _send_file(self, data: bytes, headers: dict[str, str], body: bool) -> None:
            """The whole file, or the byte range asked for (206), as the Hub and its CDN do."""
            headers = {**headers, "Accept-Ranges": "bytes"}
            asked = self.headers.get("Range")
            if asked is None:
                self._send(200, data, headers, body, "application/octet-stream")
                return
            match = _RANGE.match(asked.strip())
            if match is None or not any(match.groups()):
                raise HubError(416, None, f"Unsupported range {asked}")
            first, last = match.groups()
            start = int(first) if first else max(0, len(data) - int(last))
            end = min(int(last), len(data) - 1) if first and last else len(data) - 1
            if start >= len(data) or start > end:
                raise HubError(416, None, f"Range {asked} is outside {len(data)} bytes")
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            self._send(206, data[start : end + 1], headers, body, "application/octet-stream")

        def _send(
            self, status: int, data: bytes, headers: dict[str, str], body: bool, kind: str = "text/plain"
        ) -> None:
            self.send_response(status, HTTPStatus(status).phrase)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            if body:
                self.wfile.write(data)

    return Handler


@contextmanager
def serve_hub() -> Iterator[LocalHub]:
    """Run a LocalHub on 127.0.0.1 on a free port in a thread; it stops when the block ends."""
    hub = LocalHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="local-hub", daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
