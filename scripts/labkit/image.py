"""The one container image every lab host and lab switch runs: ``localhost/twinsite-lab-host:<tag>``.

A Debian 12 (bookworm) system with systemd as PID 1, sshd (root by key only), python3 for Ansible,
and the packages the roles configure (bind9, postgresql, keepalived, conntrackd, nftables,
Open vSwitch, restic...), installed but disabled: a role enables what its host runs. The recipe is
the two files in ``image/``: ``packages.txt`` (what debootstrap installs) and ``setup.sh`` (run once
in the new tree). The tag is a hash of the recipe, so an edited recipe builds a new image on the
next ``lab up`` and an unchanged one is reused.

Build: ``debootstrap --variant=minbase --include=<packages>`` into a temporary directory, then
``setup.sh`` in a chroot, then ``tar | podman import``. About 1.5 minutes and 600 MB; it needs root
and Debian's package mirror. The full output goes to ``.lab/logs/image.log``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from .context import Context
from .errors import LabError

COMPONENT = "image"
REPOSITORY = "localhost/twinsite-lab-host"
LATEST = f"{REPOSITORY}:latest"
RECIPE_DIR = Path(__file__).with_name("image")
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# Part of the tag: bump it when the build steps below change in a way that changes the image.
BUILD_STEPS_VERSION = "1"
# The tree is ~900 MB before setup.sh trims it; /var/tmp is on disk where /tmp may be RAM.
WORK_PARENT = Path(os.environ.get("TWINSITE_LAB_IMAGE_TMP", "/var/tmp"))  # noqa: S108 - mkdtemp below
NEEDED_FREE_BYTES = 3 * 1024**3
DEBOOTSTRAP_TIMEOUT = 30 * 60

# podman import takes Dockerfile-like changes: start systemd, and stop it the way it wants.
IMPORT_CHANGES = ['CMD ["/sbin/init"]', "STOPSIGNAL SIGRTMIN+3"]


# --- recipe --------------------------------------------------------------------------------------


def packages() -> list[str]:
    """The package names in image/packages.txt (comments and blank lines dropped)."""
    names = []
    for line in (RECIPE_DIR / "packages.txt").read_text().splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            names.append(name)
    return names


def recipe_tag() -> str:
    """A short hash of everything that decides the image's contents."""
    digest = hashlib.sha256(f"{SUITE}\0{BUILD_STEPS_VERSION}\0{' '.join(IMPORT_CHANGES)}\0".encode())
    for path in sorted(RECIPE_DIR.iterdir()):
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def image_ref() -> str:
    return f"{REPOSITORY}:{recipe_tag()}"


def mirror() -> str:
    """The Debian mirror to build from: $TWINSITE_LAB_MIRROR, else the one apt on this machine uses."""
    if os.environ.get("TWINSITE_LAB_MIRROR"):
        return os.environ["TWINSITE_LAB_MIRROR"].rstrip("/")
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        # deb822: blank-line separated stanzas; take the one serving the plain suite (not -security).
        for stanza in re.split(r"\n\s*\n", sources.read_text()):
            fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", stanza, re.M))
            if "deb" in fields.get("Types", "").split() and SUITE in fields.get("Suites", "").split():
                uris = fields.get("URIs", "").split()
                if uris:
                    return uris[0].rstrip("/")
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists():
        for line in legacy.read_text().splitlines():
            match = re.match(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+" + SUITE + r"\s", line)
            if match:
                return match.group(1).rstrip("/")
    return DEFAULT_MIRROR


# --- podman --------------------------------------------------------------------------------------


def _podman(*args: str, check: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check)  # noqa: S603


def image_exists(ref: str) -> bool:
    return _podman("image", "exists", ref).returncode == 0


def image_size(ref: str) -> int:
    out = _podman("image", "inspect", "--format", "{{.Size}}", ref).stdout.strip()
    return int(out) if out.isdigit() else 0


def ensure_image(ctx: Context) -> str:
    """Return the lab host image's reference, building it first if this recipe has none yet."""
    for tool in ("podman", "debootstrap", "chroot", "tar"):
        if shutil.which(tool) is None:
            raise LabError(COMPONENT, f"`{tool}` is not installed. Run `make setup` (apt-get install podman debootstrap).")
    ref = image_ref()
    if not image_exists(ref):
        _build_new(ctx, ref)
    # Molecule scenarios name the image by this fixed tag; it always points at the current recipe.
    _podman("tag", ref, LATEST, check=False)
    return ref


def _build_new(ctx: Context, ref: str) -> None:
    if os.geteuid() != 0:
        raise LabError(COMPONENT, f"{ref} must be built, and debootstrap needs root. Run the lab as root (or with sudo).")
    started = time.monotonic()
    ctx.say(f"building the lab host image {ref} (once per recipe; about 2 minutes)")
    _build(ctx, ref)
    size = image_size(ref)
    ctx.say(f"built {ref} in {time.monotonic() - started:.0f}s, {size / 1e6:.0f} MB")
    _prune_old(ctx, ref)


# --- build ---------------------------------------------------------------------------------------


def _build(ctx: Context, ref: str) -> None:
    log_path = ctx.state.logs / f"{COMPONENT}.log"
    log_path.write_text("")  # one build per log: the tail in an error is this build's
    WORK_PARENT.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(WORK_PARENT).free
    if free < NEEDED_FREE_BYTES:
        raise LabError(
            COMPONENT,
            f"only {free / 1e9:.1f} GB free under {WORK_PARENT}; the build needs about 3 GB. "
            f"Free some space (`podman image prune`) or set TWINSITE_LAB_IMAGE_TMP to a roomier directory.",
        )
    work = Path(tempfile.mkdtemp(prefix="twinsite-image-", dir=WORK_PARENT))
    rootfs = work / "rootfs"
    try:
        _debootstrap(ctx, rootfs, log_path)
        _setup(ctx, rootfs, log_path)
        _import(ctx, rootfs, ref, log_path)
    finally:
        problem = _remove_tree(work)
        if problem:
            ctx.say(problem)


def _debootstrap(ctx: Context, rootfs: Path, log_path: Path) -> None:
    source = mirror()
    argv = [
        "debootstrap", "--variant=minbase", f"--include={','.join(packages())}",
        SUITE, str(rootfs), source,
    ]  # fmt: skip
    ctx.say(f"debootstrap {SUITE} from {source} with {len(packages())} extra packages")
    with log_path.open("a") as log:
        log.write("$ " + " ".join(argv) + "\n")
        log.flush()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        try:
            _follow(ctx, proc, log_path)
        finally:
            if proc.poll() is None:  # interrupted (Ctrl-C, timeout): stop it before its tree is removed
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    if proc.returncode != 0:
        detail = _tail(log_path) + _tail(rootfs / "debootstrap" / "debootstrap.log", 10, "debootstrap.log")
        raise LabError(COMPONENT, f"debootstrap failed (exit {proc.returncode}). {_debootstrap_fix(log_path, source)}\n{detail}")


# debootstrap's milestones, in order, as a person would call the phase. (Its per-package
# "I: Unpacking foo" lines repeat for each of its two passes, so only these lines are watched.)
MILESTONES = [
    ("I: Retrieving InRelease", "reading the mirror's package index"),
    ("I: Retrieving libc6", "downloading packages"),
    ("I: Installing core packages", "installing core packages"),
    ("I: Unpacking the base system", "unpacking packages"),
    ("I: Configuring the base system", "configuring packages"),
]


def _follow(ctx: Context, proc: subprocess.Popen, log_path: Path) -> None:
    """Wait for debootstrap, telling the person which phase it is in (it is silent for minutes)."""
    started, reached = time.monotonic(), -1
    while proc.poll() is None:
        if time.monotonic() - started > DEBOOTSTRAP_TIMEOUT:
            raise LabError(
                COMPONENT,
                f"debootstrap ran for more than {DEBOOTSTRAP_TIMEOUT // 60} minutes; the mirror is probably too slow or unreachable. See {log_path}.",
            )
        text = log_path.read_text(errors="replace")
        for index in range(len(MILESTONES) - 1, reached, -1):
            if MILESTONES[index][0] in text:
                reached = index
                ctx.say(f"image: {MILESTONES[index][1]} ({time.monotonic() - started:.0f}s)")
                break
        time.sleep(2)


def _debootstrap_fix(log_path: Path, source: str) -> str:
    text = log_path.read_text(errors="replace")
    missing = re.search(r"Couldn't find these debs: (.*)", text)
    if missing:
        return (
            f"Likely fix: {missing.group(1).strip()} is not a {SUITE} package; correct scripts/labkit/image/packages.txt (check with `apt-cache policy NAME`)."
        )
    if re.search(r"Failed getting release file|Release signed by unknown key|Couldn't download", text):
        return (
            f"Likely fix: the mirror {source} is unreachable or not a Debian mirror; check "
            f"`curl -sI {source}/dists/{SUITE}/Release`, or set TWINSITE_LAB_MIRROR."
        )
    return f"Likely fix: read {log_path} (and retry: a dropped download fails the whole run)."


def _setup(ctx: Context, rootfs: Path, log_path: Path) -> None:
    ctx.say("image: running image/setup.sh in the new system")
    script = rootfs / "tmp" / "twinsite-setup.sh"
    shutil.copyfile(RECIPE_DIR / "setup.sh", script)
    with log_path.open("a") as log:
        log.write("$ chroot ROOTFS /bin/sh /tmp/twinsite-setup.sh\n")
        log.flush()
        code = subprocess.run(  # noqa: S603
            ["chroot", str(rootfs), "/bin/sh", "/tmp/twinsite-setup.sh"],  # noqa: S108 - inside the new tree
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=_chroot_env(),
        ).returncode  # fmt: skip
    script.unlink(missing_ok=True)
    if code != 0:
        raise LabError(
            COMPONENT,
            f"scripts/labkit/image/setup.sh failed (exit {code}). Likely fix: correct the failing "
            f"line in setup.sh. Last lines of {log_path}:\n{_tail(log_path)}",
        )


def _chroot_env() -> dict:
    # The host's environment (a venv's PATH, LANG values the image has no locale for) means
    # nothing in the chroot.
    return {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root"}


def _import(ctx: Context, rootfs: Path, ref: str, log_path: Path) -> None:
    ctx.say(f"image: importing into podman as {ref}")
    argv = ["podman", "import", f"--message=twinsite lab host image, recipe {ref.rsplit(':', 1)[1]}"]
    for change in IMPORT_CHANGES:
        argv.append(f"--change={change}")
    argv += ["-", ref]
    with log_path.open("a") as log:
        # --numeric-owner: the image's users are the image's, whatever this machine's /etc/passwd says.
        tar = subprocess.Popen(  # noqa: S603
            ["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE, stderr=log
        )
        imported = subprocess.run(argv, stdin=tar.stdout, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        tar.stdout.close()
        tar_code = tar.wait()
    if tar_code != 0 or imported.returncode != 0:
        raise LabError(
            COMPONENT,
            f"podman import failed (tar exit {tar_code}, podman exit {imported.returncode}). Likely fix: "
            f"check `podman info` works and there is disk space under /var/lib/containers. "
            f"Last lines of {log_path}:\n{_tail(log_path)}",
        )


def _prune_old(ctx: Context, keep: str) -> None:
    """Remove earlier recipes' images; podman refuses (and we skip) those a container still uses."""
    listed = _podman("images", "--format", "{{.Repository}}:{{.Tag}}", REPOSITORY).stdout.split()
    for ref in listed:
        if ref not in (keep, LATEST) and _podman("rmi", ref).returncode == 0:
            ctx.say(f"removed the previous lab host image {ref}")


# --- housekeeping --------------------------------------------------------------------------------


def _remove_tree(work: Path) -> str | None:
    """Delete the build directory; return a message instead if something is still mounted in it.

    debootstrap mounts /proc and /sys inside the tree (and may bind /dev) and an interrupted run can
    leave them mounted: removing the tree then would delete files through the mount. Unmount first,
    and leave the tree alone if that fails.
    """
    for mount in sorted(_mounts_under(work), key=len, reverse=True):
        subprocess.run(["umount", "--lazy", mount], capture_output=True)  # noqa: S603
    left = _mounts_under(work)
    if left:
        return f"image: left {work} in place because {', '.join(left)} is still mounted; unmount it (`umount -l PATH`) and remove {work} by hand."
    shutil.rmtree(work, ignore_errors=True)
    return None


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()) + "/"
    found = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        mount_point = line.split()[4].replace("\\040", " ")
        if mount_point.startswith(prefix):
            found.append(mount_point)
    return found


def _tail(path: Path, lines: int = 15, label: str | None = None) -> str:
    try:
        text = "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
    return f"--- {label} ---\n{text}\n" if label else text + "\n"
