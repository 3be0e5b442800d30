"""Benchmark twinsite-backup against the same restic commands run by hand, on the lab's hosts:
back up a generated dataset from dns1 to the secondary room's repository (backup1, REST over TLS),
replicate it to the cloud bucket (restic copy to S3), then run both again with nothing changed.

    .venv/bin/python bench/backup.py [--size-mb 2048] [--quick] [--rounds 2] [--replicate]
                                     [--keep-dataset] [--tool PATH]

The dataset (default 2 GB: half compressible log-like text in ~1 MB files plus 5,000 small
config-like files, half random data in 1-64 MB files) is generated on dns1 under
/var/tmp/bench-dataset from a fixed seed, so every run backs up the same bytes.

Contenders, each with repositories of its own, fresh in every round:
  - twinsite: ``twinsite-backup backup bench-twinsite-N`` on dns1 (pre-hook, sha256 manifest of
    every file, restic backup), then ``twinsite-backup replicate bench-twinsite-N`` on backup1 as
    restic-repo; the tool is this checkout's copy, run with a bench-only config and state directory;
  - by hand: ``restic init`` + ``restic backup`` on dns1 to bench-manual-N, then ``restic init
    --copy-chunker-params`` + ``restic copy`` on backup1 as restic-repo.
Each does the first backup, the first replication, then the no-change backup and replication.
Replication is measured only with --replicate. It goes to an S3 of the bench's own, never to the
lab's bucket (object-locked, ~1.3 GB in all): SeaweedFS started as the lab starts its own
(scripts/labkit/s3.py), on free ports of its own, with room for several copies of the dataset
(1 GB volumes), its state in a private directory under /tmp, and a certificate from the lab CA for
the host's address on the backup network (172.31.50.1, --s3-host), which backup1 reaches directly.
Its bucket is object-locked like the lab's; it is stopped and its data removed at the end.
Rounds alternate who goes first (twinsite then by hand, then the other way round). Wall times are
taken on the host that runs the command (no SSH in them).

The lab stays up and its own jobs are not touched: everything lives under
/var/tmp/twinsite-bench-backup on both hosts, and the secondary repositories are /srv/restic/bench-*
(removed at the end). Results: docs/benchmarks.md ("Backups").
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import secrets
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))  # labkit: the bench's S3 is started as the lab starts its own
TOOL = REPO / "roles" / "restic_jobs" / "files" / "twinsite-backup"
SSH_KEY = REPO / ".lab" / "ssh" / "id_ed25519"
KNOWN_HOSTS = REPO / ".lab" / "ssh" / "known_hosts"
CLIENT, CLIENT_NAME = "172.31.10.41", "dns1"   # the protected host
REPO_HOST = "172.31.10.31"                      # backup1: the secondary room's repository
DATASET = "/var/tmp/bench-dataset"  # noqa: S108 - on the lab host, removed at the end
WORK = "/var/tmp/twinsite-bench-backup"  # noqa: S108 - on the lab hosts, removed at the end
SEED = 20240521
CA = "/etc/twinsite/backup/ca.pem"
# Where the lab's dns job keeps the REST login the bench borrows (read on dns1, never copied here).
CLIENT_ENV = "/etc/twinsite/backup/secrets/dns-secondary.env"
LAB_CA_DIR = REPO / ".lab" / "ca"  # the lab CA: backup1 trusts it (/etc/twinsite/backup/ca.pem)
S3_HOST = "172.31.50.1"  # the host's address on the lab's backup network: backup1 reaches it
S3_BUCKET = "twinsite-bench"
# The bench's S3 ports: the first free set from here on (the lab's S3 uses 8333 and 18080-19333).
S3_PORTS = {"port": 18533, "master": 19533, "volume": 18580, "filer": 18988}

STEPS = [("backup", "first backup"), ("replicate", "first replication"),
         ("backup-again", "backup, nothing changed"), ("replicate-again", "replication, nothing changed")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=2048, help="dataset size (default 2048)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 200 MB, one round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, alternating who goes first (default 2)")
    parser.add_argument("--keep-dataset", action="store_true", help="leave /var/tmp/bench-dataset on dns1")
    parser.add_argument("--replicate", action="store_true",
                        help="also replicate (restic copy) from backup1 to an S3 of the bench's own, started for the run")
    parser.add_argument("--s3-host", default=S3_HOST,
                        help=f"the address the bench's S3 binds and backup1 reaches it by (default {S3_HOST})")
    parser.add_argument("--tool", type=Path, default=TOOL, help="the twinsite-backup to measure (default: this checkout's)")
    args = parser.parse_args()
    size_mb, rounds = (200, 1) if args.quick else (args.size_mb, args.rounds)
    started = dt.datetime.now(dt.UTC)
    run_id = started.strftime("%Y%m%dT%H%M%SZ")
    # Names new in every run: the repository server (rclone serve restic) caches what it has listed,
    # so a repository removed on disk and created again under the same name looks half there to it.
    tag = started.strftime("%m%d%H%M%S")

    print(f"backup bench {run_id}: {size_mb} MB dataset on {CLIENT_NAME}, {rounds} round(s)", flush=True)
    results: list[dict[str, dict[str, float]]] = []
    manifests: list[dict] = []
    cloud = BenchS3(args.s3_host) if args.replicate else None
    try:
        if cloud:
            cloud.start()
        prepare(run_id, tag, rounds, args.tool, cloud)
        info = generate(size_mb)
        print(f"  dataset: {info['files']} files, {info['bytes'] / 1e6:.0f} MB, generated in {info['seconds']:.0f}s", flush=True)
        for n in range(1, rounds + 1):
            order = ["twinsite", "manual"] if n % 2 else ["manual", "twinsite"]
            times: dict[str, dict[str, float]] = {}
            for who in order:
                times[who], extra = contender(who, f"{tag}-{n}", args.replicate)
                if extra:
                    manifests.append(extra)
            results.append(times)
    finally:
        try:
            cleanup(args.keep_dataset)
        finally:
            if cloud:
                cloud.stop()
    report(results, manifests, size_mb, info)
    return 0


# --- running things on the lab hosts ---------------------------------------------------------


def ssh(host: str, script: str, stdin: str = "") -> str:
    """Run a bash script on a lab host (the script on stdin, so nothing of it lands in argv)."""
    argv = ["ssh", "-i", str(SSH_KEY), "-o", f"UserKnownHostsFile={KNOWN_HOSTS}", "-o", "BatchMode=yes",
            f"root@{host}", "bash -s"]
    done = subprocess.run(argv, input=f"set -euo pipefail\n{stdin}\n{script}\n", capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"on {host} failed ({done.returncode}):\n{script[-1500:]}\n--- stderr:\n{done.stderr[-3000:]}\n"
                         f"--- stdout:\n{done.stdout[-1500:]}")
    return done.stdout


def timed(host: str, what: str, command: str) -> tuple[float, str]:
    """Wall time of a command measured on the host itself; its stdout."""
    out = ssh(host, f"s=$(date +%s%N)\n{command} > {WORK}/out.txt\ne=$(date +%s%N)\n"
                    f"cat {WORK}/out.txt\necho \"__ELAPSED_NS__ $((e - s))\"")
    body, _, tail = out.rpartition("__ELAPSED_NS__ ")
    seconds = int(tail.strip()) / 1e9
    print(f"    {what:48} {seconds:8.2f} s", flush=True)
    return seconds, body


def prepare(run_id: str, tag: str, rounds: int, tool: Path, cloud: BenchS3 | None) -> None:
    """Bench-only config, secrets and state on both hosts, borrowing the lab's REST login on dns1."""
    password = secrets.token_urlsafe(24)
    if cloud:
        # backup1 verifies the bench's S3 against the CA it has: it must be the one that signed it.
        theirs = ssh(REPO_HOST, f"sha256sum {CA}").split()[0]
        if theirs != hashlib.sha256((LAB_CA_DIR / "ca.pem").read_bytes()).hexdigest():
            raise SystemExit(f"backup1's {CA} is not this checkout's lab CA ({LAB_CA_DIR / 'ca.pem'}): is this checkout's lab the one up?")
    clean_old = f"rm -rf {WORK} && install -d -m 0750 {WORK} {WORK}/secrets"
    services = [f"bench-{who}-{tag}-{n}" for n in range(1, rounds + 1) for who in ("twinsite", "manual")]
    # dns1: the REST login of the lab's dns job, pointed at bench repositories.
    client_jobs = {"host": CLIENT_NAME, "cacert": CA, "jobs": [
        {"service": s, "policy": "bench", "paths": [DATASET], "pre_backup": {"command": "true"}, "rpo_minutes": 60,
         "retention": {"keep_last": 3}, "copies": {"secondary": {"env_file": f"{WORK}/secrets/{s}-secondary.env"}}}
        for s in services]}
    writes = "\n".join(
        f"base=$(sed -n 's#^RESTIC_REPOSITORY=\\(rest:.*:8000/\\).*#\\1#p' {CLIENT_ENV})\n"
        f"umask 077; printf 'RESTIC_REPOSITORY=%s{s}/\\nRESTIC_PASSWORD=%s\\n' \"$base\" \"$BENCH_PW\" "
        f"> {WORK}/secrets/{s}-secondary.env" for s in services)
    ssh(CLIENT, f"{clean_old}\nrm -rf {DATASET}\n{writes}\ncat > {WORK}/jobs.json <<'EOF'\n{json.dumps(client_jobs)}\nEOF\n"
                f"cat > {WORK}/twinsite-backup <<'EOF'\n{tool.read_text()}\nEOF\nchmod 0755 {WORK}/twinsite-backup\n"
                f"install -d -m 0700 {WORK}/state {WORK}/cache-manual",
        stdin=f"BENCH_PW={shlex.quote(password)}")
    # backup1: local secondary repositories; the bench S3's login and bucket, a prefix per run.
    repo_jobs = {"host": "backup1", "cacert": CA, "jobs": [
        {"service": s, "policy": "bench", "paths": [DATASET], "pre_backup": {}, "rpo_minutes": 60, "retention": {"keep_last": 3},
         "copies": {"secondary": {"env_file": f"{WORK}/secrets/{s}-secondary.env"},
                    "cloud": {"env_file": f"{WORK}/secrets/{s}-cloud.env"}}} for s in services]}
    writes = "\n".join(
        f"printf 'RESTIC_REPOSITORY=/srv/restic/{s}\\nRESTIC_PASSWORD=%s\\n' \"$BENCH_PW\" > {WORK}/secrets/{s}-secondary.env\n"
        f"printf 'AWS_ACCESS_KEY_ID=%s\\nAWS_SECRET_ACCESS_KEY=%s\\nAWS_DEFAULT_REGION=%s\\n"
        f"RESTIC_REPOSITORY=%s/{run_id}/{s}\\nRESTIC_PASSWORD=%s\\n' \"$S3_KEY\" \"$S3_SECRET\" \"$S3_REGION\" \"$S3_BUCKET\" "
        f"\"$BENCH_PW\" > {WORK}/secrets/{s}-cloud.env\n"
        # restic 0.14 reads the source's password (restic copy) from a file or a command.
        f"printf '%s\\n' \"$BENCH_PW\" > {WORK}/secrets/{s}-from-password" for s in services)
    ssh(REPO_HOST, f"{clean_old}\nrm -rf /srv/restic/bench-*\n"
                   f"umask 027\n{writes}\n"
                   f"cat > {WORK}/jobs.json <<'EOF'\n{json.dumps(repo_jobs)}\nEOF\n"
                   f"cat > {WORK}/twinsite-backup <<'EOF'\n{tool.read_text()}\nEOF\nchmod 0755 {WORK}/twinsite-backup\n"
                   f"chgrp -R restic-repo {WORK}\ninstall -d -m 0700 -o restic-repo -g restic-repo {WORK}/state {WORK}/cache-manual",
        stdin="\n".join(f"{k}={shlex.quote(v)}" for k, v in {"BENCH_PW": password, **(cloud.login() if cloud else {
            "S3_KEY": "", "S3_SECRET": "", "S3_REGION": "", "S3_BUCKET": ""})}.items()))


# --- the bench's own S3 --------------------------------------------------------------------


class BenchS3:
    """SeaweedFS for the replication steps, started with labkit's s3 component on ports of its own.

    Its state (data, logs, PID, certificate) is a private directory under /tmp, removed by ``stop``.
    The certificate is issued by the lab CA (a copy of ca.pem and ca.key in that directory: nothing
    is written to the lab's own .lab/ca) for the address backup1 reaches it by.
    """

    def __init__(self, host: str):
        from labkit.context import Context
        from labkit.state import State

        self.host = host
        self.root = Path(tempfile.mkdtemp(prefix="twinsite-bench-backup-s3-"))
        self.ctx = Context(State(self.root), quiet=True)
        self.key, self.secret = f"bench-{secrets.token_hex(4)}", secrets.token_urlsafe(24)
        self.spec: dict = {}

    def start(self) -> None:
        from labkit import procs, s3

        for name in ("ca.pem", "ca.key"):
            if not (LAB_CA_DIR / name).is_file():
                raise SystemExit(f"no lab CA at {LAB_CA_DIR / name}: start the lab first (scripts/lab up)")
            shutil.copy2(LAB_CA_DIR / name, self.ctx.state.ca / name)
        ports = None
        for shift in range(0, 200, 5):
            candidate = {role: port + shift for role, port in S3_PORTS.items()}
            every = [*candidate.values(), *(port + 10000 for port in candidate.values())]  # weed's gRPC ports
            if all(procs.port_free(self.host, port) for port in every):
                ports = candidate
                break
        if ports is None:
            raise SystemExit(f"no free set of ports for the bench's S3 on {self.host} from {S3_PORTS}")
        self.spec = {
            "host": self.host, "port": ports["port"], "region": "us-east-1", "access_key": self.key, "secret_key": self.secret,
            # Object-locked like the lab's bucket. Room for the dataset's copies of every round and
            # contender (~1.4 GB each at 2 GB): 1 GB volumes, 24 of them, grown only as they fill.
            "buckets": [{"name": S3_BUCKET, "object_lock": True, "mode": "COMPLIANCE", "retention_days": 1}],
            "internal_ports": {role: port for role, port in ports.items() if role != "port"},
            "volume_size_mb": 1024, "volume_max": 24,
        }
        self.ctx.model["s3"] = self.spec
        print(f"  bench S3: SeaweedFS on https://{self.host}:{ports['port']} (state {self.root})", flush=True)
        s3.up(self.ctx)

    def login(self) -> dict[str, str]:
        """What backup1's cloud env files get (passed on stdin, never in argv)."""
        return {"S3_KEY": self.key, "S3_SECRET": self.secret, "S3_REGION": self.spec["region"],
                "S3_BUCKET": f"s3:https://{self.host}:{self.spec['port']}/{S3_BUCKET}"}

    def usage(self) -> str:
        data = self.root / "data" / "s3"
        size = sum(f.stat().st_size for f in data.rglob("*") if f.is_file()) if data.is_dir() else 0
        return f"{size / 1e9:.2f} GB on disk"

    def stop(self) -> None:
        from labkit import s3

        print(f"  stopping the bench S3 ({self.usage()}) and removing {self.root}", flush=True)
        try:
            if self.spec:
                s3.down(self.ctx)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


GENERATOR = r'''
import json, os, random, sys, time
root, total, seed = sys.argv[1], int(sys.argv[2]) * 1000 * 1000, int(sys.argv[3])
rng = random.Random(seed)
started = time.time()
letters = "abcdefghijklmnopqrstuvwxyz"
vocab = ["".join(rng.choices(letters, k=rng.randint(2, 11))) for _ in range(4000)]
vocab += ["\n"] * 400 + [f"{n}" for n in range(200)] + ["ERROR", "WARN", "INFO", "user=", "host="] * 20
files = size = 0
def write(path, data):
    global files, size
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)
    files += 1
    size += len(data)
def text(nbytes):
    words = rng.choices(vocab, k=nbytes // 6 + 16)
    return " ".join(words).encode()[:nbytes]
# Half compressible: 5,000 small config-like files (1-8 KB), then log-like files of 64 KB-2 MB.
half = total // 2
for n in range(5000):
    write(f"{root}/etc/d{n // 250:02d}/conf-{n:05d}.cfg", text(rng.randint(1024, 8192)))
n = 0
while size < half:
    write(f"{root}/logs/d{n // 100:02d}/app-{n:05d}.log", text(min(rng.randint(64 << 10, 2 << 20), half - size)))
    n += 1
# Half random (incompressible, no duplicates): 1-64 MB files.
n = 0
while size < total:
    write(f"{root}/blobs/blob-{n:04d}.bin", rng.randbytes(min(rng.randint(1 << 20, 64 << 20), total - size)))
    n += 1
os.sync()
print(json.dumps({"files": files, "bytes": size, "seconds": time.time() - started}))
'''


def generate(size_mb: int) -> dict:
    out = ssh(CLIENT, f"python3 - {DATASET} {size_mb} {SEED} <<'EOF'\n{GENERATOR}\nEOF")
    return json.loads(out.strip().splitlines()[-1])


def cleanup(keep_dataset: bool) -> None:
    print("  cleaning up: bench repositories on backup1, bench config and state on both hosts"
          + ("" if keep_dataset else ", the dataset"), flush=True)
    ssh(REPO_HOST, f"rm -rf /srv/restic/bench-* {WORK}")
    ssh(CLIENT, f"rm -rf {WORK}" + ("" if keep_dataset else f" {DATASET}"))


# --- the contenders --------------------------------------------------------------------------


def contender(who: str, n: str, replicate: bool) -> tuple[dict[str, float], dict | None]:
    service = f"bench-{who}-{n}"
    print(f"  round {n.rpartition('-')[2]}: {'twinsite-backup' if who == 'twinsite' else 'restic by hand'} ({service})", flush=True)
    tool = f"TWINSITE_BACKUP_CONFIG={WORK}/jobs.json TWINSITE_BACKUP_STATE={WORK}/state {WORK}/twinsite-backup --quiet"
    as_repo = "runuser -u restic-repo --"
    secondary_env, cloud_env = f"{WORK}/secrets/{service}-secondary.env", f"{WORK}/secrets/{service}-cloud.env"
    # By hand, as a sysadmin's script would: load the env file, run restic. The cache is the bench's.
    load = f"set -a; . {secondary_env}; set +a; export RESTIC_CACHE_DIR={WORK}/cache-manual;"
    restic_backup = f"restic --cacert {CA} backup --host {CLIENT_NAME} {DATASET}"
    from_repo = (f"set -a; . {cloud_env}; set +a; export RESTIC_CACHE_DIR={WORK}/cache-manual "
                 f"RESTIC_FROM_REPOSITORY=/srv/restic/{service} RESTIC_FROM_PASSWORD_FILE={WORK}/secrets/{service}-from-password;")
    times, manifest = {}, None
    for step, label in STEPS:
        if step.startswith("replicate") and not replicate:
            continue
        if who == "twinsite":
            if step.startswith("backup"):
                seconds, out = timed(CLIENT, label, f"{tool} backup {service}")
                record = json.loads(out)
                manifest = {**(manifest or {}), step: {k: record.get(k) for k in ("manifest_s", "manifest_hashed", "manifest_changed", "files")}}
            else:
                seconds, _ = timed(REPO_HOST, label, f"{as_repo} env {tool} replicate {service}")
        elif step == "backup":
            seconds, _ = timed(CLIENT, label, f"( {load} restic --cacert {CA} init && {restic_backup} )")
        elif step == "backup-again":
            seconds, _ = timed(CLIENT, label, f"( {load} {restic_backup} )")
        else:
            init = f"restic --cacert {CA} init --copy-chunker-params && " if step == "replicate" else ""
            seconds, _ = timed(REPO_HOST, label, f"{as_repo} bash -c {shlex.quote(f'{from_repo} {init}restic --cacert {CA} copy')}")
        times[step] = seconds
    return times, manifest


# --- the table -------------------------------------------------------------------------------


def report(results: list[dict], manifests: list[dict], size_mb: int, info: dict) -> None:
    where = "backup1 and the bench's S3" if "replicate" in results[0]["twinsite"] else "backup1"
    print(f"\n{size_mb} MB ({info['files']} files) from {CLIENT_NAME} to {where}; "
          f"wall seconds, median of {len(results)} round(s)")
    print(f"  {'step':36} {'twinsite':>9} {'by hand':>9} {'overhead':>9}   per round (twinsite/by hand)")
    rows = [(label, [step]) for step, label in STEPS if step in results[0]["twinsite"]]
    if "replicate" in results[0]["twinsite"]:
        rows += [("first run: backup + replication", ["backup", "replicate"]),
                 ("no-change run: backup + replication", ["backup-again", "replicate-again"])]
    for label, steps in rows:
        ours = [sum(r["twinsite"][s] for s in steps) for r in results]
        theirs = [sum(r["manual"][s] for s in steps) for r in results]
        a, b = statistics.median(ours), statistics.median(theirs)
        rounds = ", ".join(f"{x:.2f}/{y:.2f}" for x, y in zip(ours, theirs, strict=True))
        print(f"  {label:36} {a:9.2f} {b:9.2f} {(a / b - 1) * 100:+8.1f}%   {rounds}")
    for m in manifests:
        print(f"  twinsite manifest: {json.dumps(m, sort_keys=True)}")


if __name__ == "__main__":
    sys.exit(main())
