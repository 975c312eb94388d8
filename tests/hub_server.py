"""A small in-memory server that speaks the part of the Hugging Face Hub protocol that `huggingface_hub` uses to
create a repo, commit files (regular and LFS) and download them, and that `datasets.load_dataset` uses to read a
dataset repo (info, tree, paths-info, resolve) at a branch or commit. It runs on 127.0.0.1, a random port.

Any request it does not know is answered 501 and recorded in `unknown`, so that a test can fail on it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import threading
import uuid
from fnmatch import fnmatch
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlparse

_REPO = r"(?P<repo>[^/]+/[^/]+)"


class HubState:
    def __init__(self):
        self.repos: dict[str, dict] = {}  # repo_id -> {"files": {path: bytes}, "lfs": set(paths), "commits": [...]}
        self.datasets: dict[str, dict] = {}  # repo_id -> {"files": {path: bytes}, "revisions": {name or sha: sha}}
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
        # Matched before unquoting, so that an encoded revision (refs%2Fconvert%2Fparquet) stays one path segment.
        raw = urlparse(self.path).path
        self.state.log.append(f"{self.command} {unquote(raw)}")
        for pattern, handler in routes:
            m = re.fullmatch(pattern, raw)
            if m:
                return handler(**{k: unquote(v) if v else v for k, v in m.groupdict().items()})
        return self._unknown()

    def do_GET(self):
        self._route(
            [
                (r"/api/whoami-v2", self.whoami),
                (rf"/api/models/{_REPO}/revision/(?P<rev>[^/]+)", self.model_info),
                (rf"/api/models/{_REPO}", lambda repo: self.model_info(repo, "main")),
                (rf"/api/models/{_REPO}/tree/(?P<rev>[^/]+)(?P<sub>/.*)?", self.tree),
                (rf"/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<file>.+)", self.resolve),
                (rf"/api/datasets/{_REPO}/revision/(?P<rev>[^/]+)", self.dataset_info),
                (rf"/api/datasets/{_REPO}", lambda repo: self.dataset_info(repo, "main")),
                (rf"/api/datasets/{_REPO}/tree/(?P<rev>[^/]+)(?P<sub>/.*)?", self.dataset_tree),
                (rf"/datasets/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<file>.+)", self.dataset_resolve),
            ]
        )

    def do_HEAD(self):
        self._route(
            [
                (rf"/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<file>.+)", self.resolve),
                (rf"/datasets/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<file>.+)", self.dataset_resolve),
            ]
        )

    def do_POST(self):
        self._route(
            [
                (r"/api/repos/create", self.create_repo),
                (r"/api/validate-yaml", self.validate_yaml),
                (rf"/api/models/{_REPO}/preupload/(?P<rev>[^/]+)", self.preupload),
                (rf"/{_REPO}\.git/info/lfs/objects/batch", self.lfs_batch),
                (rf"/api/models/{_REPO}/commit/(?P<rev>[^/]+)", self.commit),
                (rf"/api/datasets/{_REPO}/paths-info/(?P<rev>[^/]+)", self.dataset_paths_info),
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
        self._json(
            200, {"type": "user", "name": self.state.user, "orgs": [], "auth": {"accessToken": {"role": "write"}}}
        )

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
            files.append(
                {"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": None}
            )
        self._json(200, {"files": files, "commitOid": self._head(repo)})

    def lfs_batch(self, repo):
        payload = json.loads(self._body())
        objects = []
        for obj in payload["objects"]:
            entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.state.lfs_objects:
                entry["actions"] = {"upload": {"href": f"{self._base()}/lfs-upload/{obj['oid']}", "header": {}}}
            objects.append(entry)
        self._send(
            200,
            json.dumps({"transfer": "basic", "objects": objects}).encode(),
            content_type="application/vnd.git-lfs+json",
        )

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
        self._json(
            200,
            {
                "id": repo,
                "modelId": repo,
                "sha": self._head(repo),
                "siblings": siblings,
                "private": bool(state["private"]),
                "tags": [],
            },
        )

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

    # -- dataset repos (read only): one snapshot, reachable under its revision names and its commit ------------

    def _dataset(self, repo, rev):
        """(state, sha) of a dataset repo at `rev`, or None after answering 404 as the Hub does."""
        state = self.state.datasets.get(repo)
        if state is None:
            self._not_found("RepoNotFound")
            return None
        sha = state["revisions"].get(rev)
        if sha is None:
            self._not_found("RevisionNotFound")
            return None
        return state, sha

    def _entries(self, files, paths, recursive):
        """Tree entries (files and directories) under the directories `paths` ("" is the root)."""
        out = {}
        for path, data in sorted(files.items()):
            for base in paths:
                if base and not path.startswith(base + "/"):
                    continue
                rest = path[len(base) + 1 :] if base else path
                parts = rest.split("/")
                if recursive:
                    for i in range(1, len(parts)):  # the directories on the way
                        d = "/".join(filter(None, [base, *parts[:i]]))
                        out[d] = {
                            "type": "directory",
                            "path": d,
                            "oid": hashlib.sha1(d.encode()).hexdigest(),
                            "size": 0,
                        }
                    out[path] = self._file_entry(path, data)
                elif len(parts) == 1:
                    out[path] = self._file_entry(path, data)
                else:
                    d = "/".join(filter(None, [base, parts[0]]))
                    out[d] = {"type": "directory", "path": d, "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0}
        return sorted(out.values(), key=lambda e: e["path"])

    @staticmethod
    def _file_entry(path, data):
        return {"type": "file", "path": path, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}

    def dataset_info(self, repo, rev):
        found = self._dataset(repo, rev)
        if found is None:
            return None
        state, sha = found
        siblings = [{"rfilename": p} for p in sorted(state["files"])]
        self._json(
            200,
            {
                "id": repo,
                "sha": sha,
                "siblings": siblings,
                "private": False,
                "disabled": False,
                "gated": False,
                "tags": [],
                "downloads": 0,
                "likes": 0,
                "lastModified": "2026-01-01T00:00:00.000Z",
            },
        )

    def dataset_tree(self, repo, rev, sub=None):
        found = self._dataset(repo, rev)
        if found is None:
            return None
        state, _ = found
        prefix = (sub or "").strip("/")
        if prefix and not any(p.startswith(prefix + "/") for p in state["files"]):
            return self._not_found("EntryNotFound")
        recursive = "recursive=true" in (urlparse(self.path).query or "").lower()
        self._json(200, self._entries(state["files"], [prefix], recursive))

    def dataset_paths_info(self, repo, rev):
        body = self._body().decode()
        found = self._dataset(repo, rev)
        if found is None:
            return None
        state, _ = found
        content_type = self.headers.get("Content-Type", "")
        if "json" in content_type:
            paths = json.loads(body or "{}").get("paths", [])
        else:
            paths = [v for k, v in parse_qsl(body) if k == "paths"]
        entries = []
        for path in paths:
            path = path.strip("/")
            if path in state["files"]:
                entries.append(self._file_entry(path, state["files"][path]))
            elif any(p.startswith(path + "/") for p in state["files"]):
                entries.append(
                    {"type": "directory", "path": path, "oid": hashlib.sha1(path.encode()).hexdigest(), "size": 0}
                )
        self._json(200, entries)

    def dataset_resolve(self, repo, rev, file):
        found = self._dataset(repo, rev)
        if found is None:
            return None
        state, sha = found
        data = state["files"].get(file)
        if data is None:
            return self._not_found("EntryNotFound")
        headers = {"X-Repo-Commit": sha, "ETag": f'"{hashlib.sha1(data).hexdigest()}"'}
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

    def add_dataset(self, repo_id: str, files: dict[str, bytes], revisions=("main",), sha: str | None = None) -> str:
        """Serve a read-only dataset repo holding `files`, reachable under each name in `revisions` and under its
        commit `sha` (made up when not given; returned)."""
        sha = sha or hashlib.sha1(repo_id.encode() + b"".join(sorted(files.values()))).hexdigest()
        names = {name: sha for name in revisions}
        names[sha] = sha
        self.state.datasets[repo_id] = {"files": dict(files), "revisions": names}
        return sha

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


def client_env(hub: HubServer, tmp_path, **extra) -> dict[str, str]:
    """The environment of a client process that talks to `hub` (online, with its token, its own cache)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(
        HF_ENDPOINT=hub.url,
        HF_HOME=str(tmp_path / "hf_home"),
        HF_TOKEN=hub.state.token,
        HF_HUB_OFFLINE="0",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_XET="1",
        TOKENIZERS_PARALLELISM="false",
        WANDB_DISABLED="true",
    )
    env.update(extra)
    return env
