"""A small in-memory server that speaks the part of the Hugging Face Hub protocol that `huggingface_hub` uses to
create a repo, commit files (regular and LFS) and download them. It runs on 127.0.0.1, a random port.

Any request it does not know is answered 501 and recorded in `unknown`, so that a test can fail on it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import uuid
from fnmatch import fnmatch
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

_REPO = r"(?P<repo>[^/]+/[^/]+)"


class HubState:
    def __init__(self):
        self.repos: dict[str, dict] = {}  # repo_id -> {"files": {path: bytes}, "lfs": set(paths), "commits": [...]}
        self.lfs_objects: dict[str, bytes] = {}
        self.lfs_patterns: list[str] = []  # paths the server asks to receive through LFS
        self.fail: dict[str, int] = {}  # request kind -> HTTP status to answer instead
        self.unknown: list[str] = []
        self.log: list[str] = []
        self.token = "hf_dummy_token_for_tests"
        self.user = "tester"


class _Handler(BaseHTTPRequestHandler):
    server_version = "TestHub/1.0"
    protocol_version = "HTTP/1.1"

    # -- plumbing -------------------------------------------------------------------------------------------

    @property
    def state(self) -> HubState:
        return self.server.state

    def log_message(self, fmt, *args):  # keep test output clean
        pass

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj, headers: dict | None = None):
        self._send(status, json.dumps(obj).encode(), headers)

    def _authorized(self) -> bool:
        return self.headers.get("Authorization") == f"Bearer {self.state.token}"

    def _failing(self, kind: str) -> bool:
        status = self.state.fail.get(kind)
        if status:
            self._json(status, {"error": f"test server configured to fail {kind}"})
            return True
        return False

    def _not_found(self, code: str):
        self._json(404, {"error": f"{code}"}, {"X-Error-Code": code, "X-Error-Message": code})

    def _unknown(self):
        self.state.unknown.append(f"{self.command} {self.path}")
        self._json(501, {"error": f"test hub does not know {self.command} {self.path}"})

    def _route(self, routes):
        path = unquote(urlparse(self.path).path)
        self.state.log.append(f"{self.command} {path}")
        for pattern, handler in routes:
            m = re.fullmatch(pattern, path)
            if m:
                return handler(**m.groupdict())
        return self._unknown()

    def do_GET(self):
        self._route(
            [
                (r"/api/whoami-v2", self.whoami),
                (rf"/api/models/{_REPO}/revision/(?P<rev>[^/]+)", self.model_info),
                (rf"/api/models/{_REPO}", lambda repo: self.model_info(repo, "main")),
                (rf"/api/models/{_REPO}/tree/(?P<rev>[^/]+)(?P<sub>/.*)?", self.tree),
                (rf"/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<file>.+)", self.resolve),
            ]
        )

    def do_HEAD(self):
        self._route([(rf"/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<file>.+)", self.resolve)])

    def do_POST(self):
        self._route(
            [
                (r"/api/repos/create", self.create_repo),
                (r"/api/validate-yaml", self.validate_yaml),
                (rf"/api/models/{_REPO}/preupload/(?P<rev>[^/]+)", self.preupload),
                (rf"/{_REPO}\.git/info/lfs/objects/batch", self.lfs_batch),
                (rf"/api/models/{_REPO}/commit/(?P<rev>[^/]+)", self.commit),
            ]
        )

    def do_PUT(self):
        self._route([(r"/lfs-upload/(?P<oid>[0-9a-f]{64})", self.lfs_upload)])

    # -- endpoints ------------------------------------------------------------------------------------------

    def _base(self) -> str:
        return f"http://{self.server.server_address[0]}:{self.server.server_address[1]}"

    def _repo(self, repo: str):
        return self.state.repos.get(repo)

    def _head(self, repo: str) -> str:
        commits = self._repo(repo)["commits"]
        return commits[-1] if commits else "0" * 40

    def whoami(self):
        self._body()
        if not self._authorized():
            return self._json(401, {"error": "Invalid credentials"})
        self._json(200, {"type": "user", "name": self.state.user, "orgs": [], "auth": {"accessToken": {"role": "write"}}})

    def create_repo(self):
        payload = json.loads(self._body() or b"{}")
        if not self._authorized():
            return self._json(401, {"error": "Invalid username or password."})
        if self._failing("create"):
            return None
        repo_id = f"{payload.get('organization') or self.state.user}/{payload['name']}"
        url = f"{self._base()}/{repo_id}"
        if repo_id in self.state.repos:
            return self._json(409, {"error": "You already created this model repo", "url": url})
        self.state.repos[repo_id] = {"files": {}, "lfs": set(), "commits": [], "private": payload.get("private")}
        self._json(200, {"url": url, "name": repo_id})

    def validate_yaml(self):
        self._body()
        self._json(200, {"errors": [], "warnings": []})

    def preupload(self, repo, rev):
        payload = json.loads(self._body())
        if self._repo(repo) is None:
            return self._not_found("RepoNotFound")
        files = []
        for f in payload["files"]:
            lfs = any(fnmatch(f["path"], p) for p in self.state.lfs_patterns)
            files.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": None})
        self._json(200, {"files": files, "commitOid": self._head(repo)})

    def lfs_batch(self, repo):
        payload = json.loads(self._body())
        objects = []
        for obj in payload["objects"]:
            entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.state.lfs_objects:
                entry["actions"] = {"upload": {"href": f"{self._base()}/lfs-upload/{obj['oid']}", "header": {}}}
            objects.append(entry)
        self._send(200, json.dumps({"transfer": "basic", "objects": objects}).encode(), content_type="application/vnd.git-lfs+json")

    def lfs_upload(self, oid):
        data = self._body()
        if hashlib.sha256(data).hexdigest() != oid:
            return self._json(400, {"error": "oid does not match the content"})
        self.state.lfs_objects[oid] = data
        self._send(200, b"")

    def commit(self, repo, rev):
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        if self._failing("commit"):
            return None
        if not self._authorized():
            return self._json(401, {"error": "Invalid credentials"})
        state = self._repo(repo)
        if state is None:
            return self._not_found("RepoNotFound")
        for line in lines:
            key, value = line["key"], line["value"]
            if key == "file":
                state["files"][value["path"]] = base64.b64decode(value["content"])
                state["lfs"].discard(value["path"])
            elif key == "lfsFile":
                if value["oid"] not in self.state.lfs_objects:
                    return self._json(422, {"error": f"LFS object {value['oid']} was never uploaded"})
                state["files"][value["path"]] = self.state.lfs_objects[value["oid"]]
                state["lfs"].add(value["path"])
            elif key == "deletedFile":
                state["files"].pop(value["path"], None)
            elif key != "header":
                return self._json(400, {"error": f"unknown commit operation {key}"})
        oid = uuid.uuid4().hex + uuid.uuid4().hex[:8]
        state["commits"].append(oid)
        self._json(200, {"commitUrl": f"{self._base()}/{repo}/commit/{oid}", "commitOid": oid, "pullRequestUrl": None})

    def model_info(self, repo, rev):
        state = self._repo(repo)
        if state is None:
            return self._not_found("RepoNotFound")
        siblings = [{"rfilename": p} for p in sorted(state["files"])]
        self._json(200, {"id": repo, "modelId": repo, "sha": self._head(repo), "siblings": siblings, "private": bool(state["private"]), "tags": []})

    def tree(self, repo, rev, sub=None):
        state = self._repo(repo)
        if state is None:
            return self._not_found("RepoNotFound")
        prefix = (sub or "").strip("/")
        entries = [
            {"type": "file", "path": p, "size": len(d), "oid": hashlib.sha1(d).hexdigest()}
            for p, d in sorted(state["files"].items())
            if not prefix or p.startswith(prefix + "/")
        ]
        self._json(200, entries)

    def resolve(self, repo, rev, file):
        state = self._repo(repo)
        if state is None:
            return self._not_found("RepoNotFound")
        data = state["files"].get(file)
        if data is None:
            return self._not_found("EntryNotFound")
        etag = hashlib.sha256(data).hexdigest() if file in state["lfs"] else hashlib.sha1(data).hexdigest()
        headers = {"X-Repo-Commit": self._head(repo), "ETag": f'"{etag}"'}
        if file in state["lfs"]:
            headers["X-Linked-Etag"] = f'"{etag}"'
            headers["X-Linked-Size"] = str(len(data))
        self._send(200, data, headers, content_type="application/octet-stream")


class HubServer:
    """`with HubServer() as hub:` serves on `hub.url` until the block ends."""

    def __init__(self):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.state = HubState()
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def state(self) -> HubState:
        return self.httpd.state

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
