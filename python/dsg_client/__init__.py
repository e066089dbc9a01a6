"""Python client for the Distributed Science Grid (DSG) REST API v1. Standard library only (Python 3.9+).

    from dsg_client import Client
    grid = Client()                      # configured like the `dsg` CLI
    job = grid.submit({"name": "hello", "script": "echo hi", "array": 3})
    grid.wait(job["id"])
    print(grid.logs(job["id"], task=0))
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import ssl
import time
import urllib.parse
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

__all__ = [
    "Client", "DsgError", "ValidationError", "Unauthorized", "Forbidden", "NotFound", "Conflict", "OverLimit",
    "Unavailable", "JobFailed", "PinMismatch",
]
__version__ = "0.1.0"

API = "/api/v1"
TERMINAL = {"succeeded", "failed", "cancelled"}


# ── errors ───────────────────────────────────────────────────────────────────────────────────────────────────
class DsgError(Exception):
    """An error from the grid (or from reaching it): `code` as the API names it, `message` saying what to do."""

    def __init__(self, code: str, message: str, details: Optional[Dict[str, Any]] = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}


class ValidationError(DsgError):
    """Bad input: `issues` is a list of {"path", "message"}."""

    @property
    def issues(self) -> List[Dict[str, str]]:
        return list(self.details.get("issues", []))


class Unauthorized(DsgError): pass
class Forbidden(DsgError): pass
class NotFound(DsgError): pass
class Conflict(DsgError): pass


class OverLimit(DsgError):
    """HTTP 429: a limit (queue, rate); `retry_after` seconds."""

    @property
    def retry_after(self) -> Optional[float]:
        v = self.details.get("retryAfterSeconds")
        return float(v) if isinstance(v, (int, float)) else None


class Unavailable(DsgError):
    """The coordinator cannot be reached (or a proxy in front of it says so)."""


class PinMismatch(DsgError):
    """The server's certificate is not the pinned one: nothing was sent."""


class JobFailed(DsgError):
    """`wait` saw the job (or workflow) end other than succeeded; `job` is its final state."""

    def __init__(self, job: Dict[str, Any]):
        super().__init__("failed", f"{job.get('id')} ended {job.get('state')}", {"job": job})
        self.job = job


_BY_CODE = {
    "validation": ValidationError, "unauthorized": Unauthorized, "forbidden": Forbidden, "not_found": NotFound,
    "conflict": Conflict, "over_limit": OverLimit, "unavailable": Unavailable,
}


# ── configuration, as the CLI reads it ────────────────────────────────────────────────────────────────────────
def _read_json(path: Path) -> Optional[Dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    try:
        v = json.loads(text)
    except ValueError as e:
        raise ValidationError("validation", f"{path} is not valid JSON: {e}") from None
    return v if isinstance(v, dict) else None


def _config_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "dsg" / "config.json"


def resolve_settings(coordinator: Optional[str] = None, token: Optional[str] = None, tls_fingerprint: Optional[str] = None) -> Tuple[str, str, Optional[str]]:
    """Arguments, then DSG_COORDINATOR / DSG_TOKEN / DSG_TLS_FINGERPRINT, then ~/.config/dsg/config.json, then
    ./.dsg/credentials.json: the same order as the `dsg` CLI. A fingerprint from a file counts only with that file's URL."""
    file = _read_json(_config_file()) or {}
    creds = _read_json(Path.cwd() / ".dsg" / "credentials.json") or {}
    url, url_from = None, None
    for value, source in ((coordinator, "arg"), (os.environ.get("DSG_COORDINATOR"), "env"), (file.get("coordinator"), "file"), (creds.get("url"), "creds")):
        if value:
            url, url_from = str(value), source
            break
    tok = token or os.environ.get("DSG_TOKEN") or file.get("token") or creds.get("adminToken")
    if not url or not tok:
        raise ValidationError("validation", "no grid configured: pass coordinator= and token=, set DSG_COORDINATOR and DSG_TOKEN, "
                              "or start a grid with `dsg up` (it writes ~/.config/dsg/config.json)")
    pin = tls_fingerprint or os.environ.get("DSG_TLS_FINGERPRINT") or (
        file.get("tlsFingerprint") if url_from == "file" else creds.get("tlsFingerprint") if url_from == "creds" else None)
    if "://" not in url:
        url = "http://" + url
    return url.rstrip("/"), str(tok).strip(), _parse_fingerprint(pin) if pin else None


def _parse_fingerprint(text: str) -> str:
    hexpart = text.strip().lower()
    for prefix in ("sha256:", "sha-256:", "sha256=", "sha-256="):
        if hexpart.startswith(prefix):
            hexpart = hexpart[len(prefix):]
    hexpart = hexpart.replace(":", "")
    if len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
        raise ValidationError("validation", f"expected a SHA-256 certificate fingerprint like sha256:3f9a… (64 hex digits), got {text!r}")
    return "sha256:" + hexpart


# ── HTTP ─────────────────────────────────────────────────────────────────────────────────────────────────────
class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS that trusts exactly one certificate: its fingerprint is checked right after the handshake, before
    the request is written (no CA, no host name: the pin is stronger)."""

    def __init__(self, host: str, port: Optional[int], pin: str, timeout: float):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        super().__init__(host, port, timeout=timeout, context=ctx)
        self._pin = pin

    def connect(self) -> None:
        super().connect()
        der = self.sock.getpeercert(binary_form=True) or b""
        got = "sha256:" + hashlib.sha256(der).hexdigest()
        if got != self._pin:
            self.sock.close()
            raise PinMismatch("unauthorized", f"the coordinator presented certificate {got}, but {self._pin} is pinned. Nothing was sent. "
                              "If you trust it (compare with what `dsg up` printed), pass tls_fingerprint=" + repr(got), {"presented": got})


class Client:
    """A DSG coordinator. Every method raises a DsgError subclass on failure, with the grid's own message."""

    def __init__(self, coordinator: Optional[str] = None, token: Optional[str] = None, tls_fingerprint: Optional[str] = None, timeout: float = 60.0):
        self.base_url, self._token, self._pin = resolve_settings(coordinator, token, tls_fingerprint)
        u = urllib.parse.urlsplit(self.base_url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValidationError("validation", f"expected an http:// or https:// coordinator URL, got {self.base_url!r}")
        self._scheme, self._host, self._port, self._prefix = u.scheme, u.hostname, u.port, u.path.rstrip("/")
        self._timeout = timeout

    # -- plumbing --
    def _connection(self) -> http.client.HTTPConnection:
        if self._scheme == "http":
            return http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        if self._pin:
            return _PinnedHTTPSConnection(self._host, self._port, self._pin, self._timeout)
        return http.client.HTTPSConnection(self._host, self._port, timeout=self._timeout, context=ssl.create_default_context())

    def _request(self, method: str, path: str, query: Optional[Dict[str, Any]] = None, body: Any = None,
                 raw: Optional[bytes] = None, headers: Optional[Dict[str, str]] = None) -> Tuple[int, bytes, http.client.HTTPResponse]:
        url = self._prefix + API + path
        if query:
            q = {k: v for k, v in query.items() if v is not None}
            if q:
                url += "?" + urllib.parse.urlencode(q)
        h = {"authorization": f"Bearer {self._token}", "accept": "application/json", **(headers or {})}
        data = raw
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            h["content-type"] = "application/json"
        conn = self._connection()
        try:
            conn.request(method, url, body=data, headers=h)
            res = conn.getresponse()
            payload = res.read()
        except PinMismatch:
            raise
        except (OSError, http.client.HTTPException) as e:
            raise Unavailable("unavailable", f"cannot reach the coordinator at {self.base_url}: {e}. Is it running? Start a grid with `dsg up`.") from None
        finally:
            conn.close()
        if 200 <= res.status < 300:
            return res.status, payload, res
        err: Dict[str, Any] = {}
        try:
            err = json.loads(payload or b"{}").get("error") or {}
        except ValueError:
            pass
        if not err:
            if res.status in (502, 503, 504):
                raise Unavailable("unavailable", f"cannot reach the coordinator at {self.base_url}: HTTP {res.status}")
            # No body (a HEAD, or not the coordinator answering): the status alone.
            by_status = {400: ("validation", ValidationError), 401: ("unauthorized", Unauthorized), 403: ("forbidden", Forbidden),
                         404: ("not_found", NotFound), 409: ("conflict", Conflict), 429: ("over_limit", OverLimit)}
            code, cls0 = by_status.get(res.status, ("internal", DsgError))
            raise cls0(code, f"{method} {path}: HTTP {res.status}")
        cls = _BY_CODE.get(err.get("code", ""), DsgError)
        raise cls(err.get("code", "internal"), err.get("message", f"HTTP {res.status}"), err.get("details") or {})

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        _, payload, _ = self._request(method, path, **kw)
        return json.loads(payload) if payload else None

    # -- reads --
    def health(self) -> Dict[str, Any]:
        return self._json("GET", "/health")

    def job(self, job_id: str) -> Dict[str, Any]:
        return self._json("GET", f"/jobs/{urllib.parse.quote(job_id)}")

    def workflow(self, workflow_id: str) -> Dict[str, Any]:
        return self._json("GET", f"/workflows/{urllib.parse.quote(workflow_id)}")

    def status(self, id: str) -> Dict[str, Any]:
        """A job (`job_…`) or a workflow (`wf_…`)."""
        return self.workflow(id) if id.startswith("wf_") else self.job(id)

    def jobs(self, state: Optional[str] = None, limit: int = 50) -> List[Dict[str, Any]]:
        return self._json("GET", "/jobs", query={"state": state, "limit": limit})["items"]

    def tasks(self, job_id: str) -> List[Dict[str, Any]]:
        out: List[Dict[str, Any]] = []
        cursor = None
        while True:
            page = self._json("GET", f"/jobs/{urllib.parse.quote(job_id)}/tasks", query={"limit": 1000, "cursor": cursor})
            out.extend(page["items"])
            cursor = page.get("nextCursor")
            if not cursor:
                return out

    def logs(self, job_id: str, task: int = 0, attempt: Optional[str] = None) -> str:
        """Everything the task (its latest attempt, or `attempt`) wrote to stdout and stderr so far."""
        text, offset = [], 0
        while True:
            chunk = self._json("GET", f"/jobs/{urllib.parse.quote(job_id)}/tasks/{int(task)}/logs", query={"offset": offset, "attempt": attempt})
            data = chunk.get("data", "")
            text.append(data)
            offset = chunk.get("nextOffset", offset + len(data.encode("utf-8")))
            if not data:  # everything written so far (`complete` says whether more can come)
                return "".join(text)

    def outputs(self, id: str) -> List[Dict[str, Any]]:
        path = f"/workflows/{urllib.parse.quote(id)}/outputs" if id.startswith("wf_") else f"/jobs/{urllib.parse.quote(id)}/outputs"
        return self._json("GET", path)["items"]

    def download_outputs(self, id: str, to: "os.PathLike[str] | str") -> List[Path]:
        """Every output of a job (or workflow) into `to`/<task>/<path> (workflows: `to`/<stage>/<task>/<path>).
        Paths are checked to stay inside `to`; each file's sha256 is verified."""
        root = Path(to).resolve()
        written: List[Path] = []
        for o in self.outputs(id):
            job_id = o.get("jobId", id)
            parts = ([o["stage"]] if "stage" in o else []) + [str(o["taskIndex"])] + o["path"].split("/")
            dest = root.joinpath(*parts).resolve()
            if root not in dest.parents:
                raise DsgError("validation", f"refusing output path {o['path']!r}: it leads outside {root}")
            enc = "/".join(urllib.parse.quote(p) for p in o["path"].split("/"))
            _, payload, _ = self._request("GET", f"/jobs/{urllib.parse.quote(job_id)}/tasks/{o['taskIndex']}/outputs/{enc}")
            if o.get("sha256") and hashlib.sha256(payload).hexdigest() != o["sha256"]:
                raise DsgError("internal", f"output {o['path']} of task {o['taskIndex']} did not match its sha256")
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(dest.name + ".part")
            tmp.write_bytes(payload)
            tmp.replace(dest)
            written.append(dest)
        return written

    # -- writes --
    def submit(self, spec: Dict[str, Any], base_dir: "os.PathLike[str] | str" = ".", params: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
        """Submit a job spec, or a workflow spec (a dict with `stages`). Files named in `inputs` (every stage's, for
        a workflow) are read relative to `base_dir` and uploaded if the grid lacks them. Returns the job or workflow."""
        base = Path(base_dir).resolve()
        lists = [s.get("inputs", []) for s in spec.get("stages", {}).values()] if "stages" in spec else [spec.get("inputs", [])]
        files: Dict[str, Dict[str, Any]] = {}
        for inputs in lists:
            for entry in inputs or []:
                if not isinstance(entry, str):
                    continue  # { from: STAGE }: an earlier stage's outputs, moved by the grid
                for rel, path in _expand(base, entry):
                    data = path.read_bytes()
                    digest = hashlib.sha256(data).hexdigest()
                    files[rel] = {"path": rel, "sha256": digest, "size": len(data), "mode": path.stat().st_mode & 0o777, "_data": data}
        for f in {f["sha256"]: f for f in files.values()}.values():
            try:
                self._request("HEAD", f"/blobs/{f['sha256']}")
            except NotFound:
                self._request("PUT", f"/blobs/{f['sha256']}", raw=f["_data"], headers={"content-type": "application/octet-stream"})
        inputs = [{k: v for k, v in f.items() if k != "_data"} for f in files.values()]
        body = {"spec": spec, "inputs": inputs, "params": params or {}}
        if "stages" in spec:
            return self._json("POST", "/workflows", body=body)["workflow"]
        return self._json("POST", "/jobs", body=body)["job"]

    def cancel(self, id: str) -> Dict[str, Any]:
        kind = "workflows" if id.startswith("wf_") else "jobs"
        return self._json("POST", f"/{kind}/{urllib.parse.quote(id)}/cancel")

    def wait(self, id: str, timeout: Optional[float] = None, poll: float = 1.0, on_progress: Optional[Callable[[Dict[str, Any]], None]] = None,
             raise_on_failure: bool = True) -> Dict[str, Any]:
        """Poll until the job or workflow ends; returns its final state. Raises JobFailed when it did not succeed
        (unless raise_on_failure=False) and TimeoutError after `timeout` seconds. A coordinator that is briefly
        unreachable (a restart) is retried."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                cur = self.status(id)
            except Unavailable:
                cur = None
            if cur is not None:
                if on_progress:
                    on_progress(cur)
                if cur.get("state") in TERMINAL:
                    if raise_on_failure and cur["state"] != "succeeded":
                        raise JobFailed(cur)
                    return cur
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"{id} has not ended within {timeout} s (it goes on in the grid)")
            time.sleep(poll)


def _expand(base: Path, entry: str) -> Iterable[Tuple[str, Path]]:
    """An input path → (path in the task's working dir, file on this machine); directories recursively.
    `../lib/x.py` lands at `lib/x.py`, as with the CLI."""
    src = (base / entry).resolve()
    rel_root = "/".join(p for p in Path(entry).parts if p not in ("..", ".")).rstrip("/")
    if not src.exists():
        raise ValidationError("validation", f"input {entry!r} does not exist (looked for {src})",
                              {"issues": [{"path": "inputs", "message": f"{entry!r} does not exist"}]})
    if src.is_file():
        yield rel_root, src
        return
    for p in sorted(src.rglob("*")):
        if p.is_file():
            yield rel_root + "/" + p.relative_to(src).as_posix(), p
