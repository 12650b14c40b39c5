"""A minimal Hugging Face Hub stand-in on 127.0.0.1, for tests only.

It serves what `huggingface_hub` needs to download a repo (`snapshot_download`) and to upload a folder
(`create_repo` + `upload_folder`, every file sent as a "regular" file in the commit payload):

- `GET /api/models/{repo}[/revision/{rev}]`: repo info (`id`, `sha`, `siblings`);
- `GET /api/models/{repo}/tree/{rev}`: the file list;
- `HEAD`/`GET /{repo}/resolve/{rev}/{path}`: file metadata headers and content (with `Range`);
- `POST /api/repos/create`, `/api/models/{repo}/preupload/{rev}`, `/api/models/{repo}/commit/{rev}`
  (NDJSON) and `/api/validate-yaml`.

Faults for the error paths are switched on with the `fault` attribute (see `HubServer`).
"""

import base64
import hashlib
import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

REPO = r"(?P<repo>[^/]+/[^/]+)"
ROUTES = [
    ("GET", re.compile(rf"^/api/models/{REPO}(?:/revision/(?P<rev>[^/]+))?$"), "_info"),
    ("GET", re.compile(rf"^/api/models/{REPO}/tree/(?P<rev>[^/]+)$"), "_tree"),
    ("GET", re.compile(rf"^/{REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$"), "_resolve"),
    ("HEAD", re.compile(rf"^/{REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$"), "_resolve"),
    ("POST", re.compile(r"^/api/repos/create$"), "_create"),
    ("POST", re.compile(rf"^/api/models/{REPO}/preupload/(?P<rev>[^/]+)$"), "_preupload"),
    ("POST", re.compile(rf"^/api/models/{REPO}/commit/(?P<rev>[^/]+)$"), "_commit"),
    ("POST", re.compile(r"^/api/validate-yaml$"), "_validate_yaml"),
    ("GET", re.compile(r"^/api/agent-harnesses$"), "_not_here"),  # huggingface_hub's optional look-up
]
LFS_SUFFIXES = (".h5", ".keras", ".safetensors")


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubServer:
    """The Hub's repos in memory, served by a thread; `stop()` ends it.

    `repos[repo_id]` is `{"refs": {branch: commit}, "commits": {commit: {path: bytes}}}`.
    `fault`, when set, breaks the server: `"404"`, `"500"` or `"garbage"` (an HTML page with status 200)
    answer every repo-info call; `("cut", path)` sends half of `path` then drops the connection, and
    drops every later request for it without an answer (`cut_sent` says the half went out).
    `requests` logs `(method, path)` of each call, `unrouted` those no route serves, and
    `authorization[(method, path)]` keeps the last `Authorization` header of each.
    """

    def __init__(self):
        self.repos = {}
        self.fault = None
        self.requests = []
        self.unrouted = []
        self.authorization = {}
        self.cut_sent = False
        self._lock = threading.Lock()
        self._commits = 0
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.hub = self
        self._server = server
        self.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self):
        """Stops serving and closes the port (again: no-op)."""
        if not self._thread.is_alive():
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def commit(self, repo_id, files, *, branch="main", message="commit"):
        """Commits `files` (a preset folder or `{path: bytes}`) on top of `branch`; returns the commit id."""
        if isinstance(files, (str, Path)):
            files = {p.name: p.read_bytes() for p in sorted(Path(files).iterdir()) if p.is_file()}
        with self._lock:
            repo = self.repos.setdefault(repo_id, {"refs": {}, "commits": {}})
            parent = repo["commits"].get(repo["refs"].get(branch), {})
            tree = {**parent, **files}
            self._commits += 1
            digest = hashlib.sha1(f"{repo_id}\n{branch}\n{message}\n{self._commits}".encode())
            for path in sorted(tree):
                digest.update(path.encode() + b"\0" + tree[path])
            commit = digest.hexdigest()
            repo["commits"][commit] = tree
            repo["refs"][branch] = commit
        return commit

    def lookup(self, repo_id, revision):
        """Returns `(commit, files)` for a branch or commit id, or `None` if the repo has no such revision."""
        repo = self.repos[repo_id]
        commit = repo["refs"].get(revision, revision)
        return (commit, repo["commits"][commit]) if commit in repo["commits"] else None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: no handler thread outlives its answer

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self._route("GET")

    def do_HEAD(self):
        self._route("HEAD")

    def do_POST(self):
        self._route("POST")

    def _route(self, method):
        hub = self.server.hub
        path = unquote(urlsplit(self.path).path)
        with hub._lock:
            hub.requests.append((method, path))
            hub.authorization[method, path] = self.headers.get("Authorization")
        for verb, pattern, name in ROUTES:
            match = pattern.match(path)
            if verb == method and match:
                return getattr(self, name)(**match.groupdict())
        hub.unrouted.append((method, path))
        self._json({"error": "Not found"}, 404)

    # -- answers

    def _send(self, status, body=b"", headers=None, length=None):
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, data, status=200, headers=None):
        self._send(status, json.dumps(data).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _body(self):
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _revision(self, repo, rev):
        """The `(commit, files)` of `repo` at `rev`, or None after answering the Hub's 404."""
        hub = self.server.hub
        if repo not in hub.repos:
            self._json({"error": "Repository not found"}, 404, {"X-Error-Code": "RepoNotFound"})
            return None
        found = hub.lookup(repo, rev or "main")
        if found is None:
            self._json({"error": f"Invalid rev id: {rev}"}, 404, {"X-Error-Code": "RevisionNotFound"})
        return found

    def _not_here(self):
        self._json({"error": "Not found"}, 404)

    # -- download

    def _info(self, repo, rev=None):
        fault = self.server.hub.fault
        if fault == "404":
            return self._json({"error": "Repository not found"}, 404, {"X-Error-Code": "RepoNotFound"})
        if fault == "500":
            return self._json({"error": "Internal Error - We're working hard to fix this."}, 500)
        if fault == "garbage":
            page = b"<!doctype html><html><body><h1>Welcome to the captive portal</h1></body></html>"
            return self._send(200, page, {"Content-Type": "text/html"})
        found = self._revision(repo, rev)
        if found:
            commit, files = found
            siblings = [{"rfilename": path} for path in sorted(files)]
            self._json({"id": repo, "modelId": repo, "sha": commit, "private": False, "siblings": siblings})

    def _tree(self, repo, rev):
        found = self._revision(repo, rev)
        if found:
            entries = []
            for path, data in sorted(found[1].items()):
                entry = {"type": "file", "path": path, "size": len(data), "oid": git_blob_id(data)}
                if path.endswith(LFS_SUFFIXES):
                    entry["lfs"] = {
                        "oid": hashlib.sha256(data).hexdigest(),
                        "size": len(data),
                        "pointerSize": 134,
                    }
                entries.append(entry)
            self._json(entries)

    def _resolve(self, repo, rev, path):
        hub = self.server.hub
        if hub.fault == ("cut", path) and self.command == "GET":
            if "Range" not in self.headers and not hub.cut_sent:
                hub.cut_sent = True
                data = hub.lookup(repo, rev)[1][path]
                self._send(
                    200, data[: len(data) // 2], {"Content-Type": "application/octet-stream"}, len(data)
                )
            self.close_connection = True
            return self.connection.shutdown(socket.SHUT_RDWR)  # the client sees a dropped connection
        found = self._revision(repo, rev)
        if not found:
            return
        commit, files = found
        if path not in files:
            return self._json(
                {"error": "Entry not found"}, 404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit}
            )
        data = files[path]
        headers = {
            "X-Repo-Commit": commit,
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        if path.endswith(LFS_SUFFIXES):
            headers.update(
                {"X-Linked-Etag": f'"{hashlib.sha256(data).hexdigest()}"', "X-Linked-Size": str(len(data))}
            )
        headers["ETag"] = f'"{git_blob_id(data)}"'
        start = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if start and self.command == "GET":
            first = int(start.group(1))
            headers["Content-Range"] = f"bytes {first}-{len(data) - 1}/{len(data)}"
            return self._send(206, data[first:], headers)
        self._send(200, data, headers)

    # -- upload

    def _create(self):
        hub = self.server.hub
        payload = json.loads(self._body())
        repo = (
            f"{payload['organization']}/{payload['name']}" if payload.get("organization") else payload["name"]
        )
        if repo in hub.repos:
            return self._json(
                {"error": "You already created this model repo", "url": f"{hub.endpoint}/{repo}"}, 409
            )
        hub.commit(repo, {".gitattributes": b"*.h5 filter=lfs diff=lfs merge=lfs -text\n"}, message="initial")
        hub.repos[repo]["private"] = payload.get("visibility") == "private" or bool(payload.get("private"))
        self._json({"url": f"{hub.endpoint}/{repo}", "name": repo})

    def _preupload(self, repo, rev):
        found = self._revision(repo, rev)
        if found:
            files = [
                {
                    "path": item["path"],
                    "uploadMode": "regular",
                    "shouldIgnore": False,
                    "oid": git_blob_id(found[1][item["path"]]) if item["path"] in found[1] else None,
                }
                for item in json.loads(self._body())["files"]
            ]
            self._json({"files": files, "commitOid": found[0]})

    def _commit(self, repo, rev):
        hub = self.server.hub
        if not self._revision(repo, rev):
            return
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        message = next(line["value"]["summary"] for line in lines if line["key"] == "header")
        files = {
            line["value"]["path"]: base64.b64decode(line["value"]["content"])
            for line in lines
            if line["key"] == "file"
        }
        if any(line["key"] not in ("header", "file") for line in lines):
            return self._json({"error": "only regular file additions are supported here"}, 400)
        commit = hub.commit(repo, files, branch=rev, message=message)
        self._json(
            {"commitUrl": f"{hub.endpoint}/{repo}/commit/{commit}", "commitOid": commit, "success": True}
        )

    def _validate_yaml(self):
        self._body()
        self._json({"errors": [], "warnings": []})
