"""Container images built for real with podman, on local stand-ins for the public base images.

There is no Docker engine and no image registry here: podman builds a generated Dockerfile
(`--isolation chroot`) with its build arguments pointed at stand-ins for its two public images:
a Debian base made from Debian's packages (mmdebstrap) for `python:<version>-slim` (bookworm's
python3 is 3.11; for 3.12 this machine's own build is added), and an image holding this
machine's uv binary for `ghcr.io/astral-sh/uv`. They are made once and cached in
`~/.cache/cookiecutter-mlops-tests/`, keyed by what they are made from; each test imports them
into a podman store of its own (:func:`image_store`), removed with everything built in it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# The base image's recipe: its arguments are the cache key (Debian bookworm's python3 is 3.11,
# the defaults' version).
BASE_RECIPE = (
    "--variant=apt",
    "--include=python3,python3-venv,ca-certificates",
    "--format=tar",
    "bookworm",
)
BASE_PYTHON = "3.11"
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / (
    "cookiecutter-mlops-tests"
)
# Set by .ci/run: there, missing tools fail the test instead of skipping it.
REQUIRE_PODMAN = "TEMPLATE_TESTS_REQUIRE_PODMAN"
BASE_IMAGE = "localhost/debian-python:bookworm"
UV_IMAGE = "localhost/uv:local"


@dataclass
class Podman:
    """podman on a store of a test's own: what the test builds goes with it.

    `store` holds the images; `runroot`, podman's run-time state, must be a short path (podman
    refuses one over 50 characters, which pytest's temporary folders under xdist exceed).
    """

    store: Path
    runroot: Path

    def __call__(self, *args: str, timeout: float = 900) -> str:
        """Run podman with `args` on the store; its output, or the test fails showing it."""
        command = [*self.command, *args]
        result = subprocess.run(
            command, capture_output=True, text=True, check=False, timeout=timeout
        )
        if result.returncode != 0:
            pytest.fail(
                f"{' '.join(command)} exited {result.returncode}\n"
                f"--- stdout\n{result.stdout[-6000:]}\n--- stderr\n{result.stderr[-6000:]}"
            )
        return result.stdout

    @property
    def command(self) -> list[str]:
        """podman with this store's options: what a stand-in for `docker` runs."""
        return [
            "podman",
            *("--root", str(self.store / "root"), "--runroot", str(self.runroot)),
            *("--storage-driver", "overlay"),
        ]

    def inspect(self, image: str) -> dict[str, Any]:
        (found,) = json.loads(self("image", "inspect", image))
        return dict(found)


def require_tools() -> None:
    """Skip without podman, mmdebstrap or root (chroot) -- or fail, where CI asks for them."""
    missing = [tool for tool in ("podman", "mmdebstrap", "chroot") if not shutil.which(tool)]
    reason = ""
    if missing:
        reason = f"{', '.join(missing)} missing: apt-get install -y podman mmdebstrap uidmap"
    elif os.geteuid() != 0:
        reason = "needs root: chroot, and podman's own store, run as root"
    if reason and os.environ.get(REQUIRE_PODMAN) == "1":
        pytest.fail(f"{reason} ({REQUIRE_PODMAN}=1)")
    if reason:
        pytest.skip(reason)


def uv_binary() -> Path:
    """The uv executable itself: pyenv puts a shell-script shim named `uv` on PATH."""
    candidates = [found] if (found := shutil.which("uv")) else []
    if shutil.which("pyenv"):
        # Whichever of pyenv's Pythons has it (`pyenv which` sees only the current folder's).
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False)
        candidates += sorted(map(str, Path(root.stdout.strip()).glob("versions/*/bin/uv")))
    for candidate in map(Path, candidates):
        with candidate.open("rb") as handle:
            if handle.read(4) == b"\x7fELF":
                return candidate.resolve()
    pytest.fail(f"no uv executable among {candidates} (shims only)")


def cached(name: str, make: Callable[[Path], None]) -> Path:
    """`CACHE_DIR/name`, made by `make(path)` once (under a lock: sessions may run at once)."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    path = CACHE_DIR / name
    with (CACHE_DIR / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            partial = path.with_name(f"partial-{name}")
            make(partial)
            partial.replace(path)
    return path


def debian_rootfs(path: Path) -> None:
    subprocess.run(["mmdebstrap", "--quiet", *BASE_RECIPE, str(path)], check=True, timeout=900)


def uv_rootfs(binary: Path) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        with tarfile.open(path, "w") as archive:
            info = archive.gettarinfo(binary, arcname="uv")
            info.mode, info.uid, info.gid, info.uname, info.gname = 0o755, 0, 0, "root", "root"
            with binary.open("rb") as handle:
                archive.addfile(info, handle)

    return make


def digest(*parts: bytes) -> str:
    return hashlib.sha256(b"\0".join(parts)).hexdigest()[:16]


def python_rootfs(base: Path, version: str) -> Callable[[Path], None]:
    """The Debian base plus this machine's Python `version` (pyenv's build, at the same path:
    it finds its shared library there), as `python<version>` on PATH."""
    prefix = Path(
        subprocess.run(
            ["pyenv", "prefix", version], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    skipped = {"test", "site-packages", "__pycache__", "idlelib", "tkinter", "ensurepip"}

    def make(path: Path) -> None:
        with tarfile.open(base) as rootfs, tarfile.open(path, "w") as combined:
            for member in rootfs:
                if member.name.lstrip("./") == "root":
                    member.mode = 0o755  # the image's user reads the interpreter under /root
                combined.addfile(member, rootfs.extractfile(member) if member.isfile() else None)
            combined.add(
                prefix,
                arcname=str(prefix).lstrip("/"),
                filter=lambda info: None if Path(info.name).name in skipped else info,
            )
            link = tarfile.TarInfo(f"usr/local/bin/python{version}")
            link.type, link.linkname = tarfile.SYMTYPE, str(prefix / "bin" / f"python{version}")
            combined.addfile(link)

    return make


@contextlib.contextmanager
def image_store(folder: Path, python_version: str = BASE_PYTHON) -> Iterator[Podman]:
    """A podman store in `folder` holding the stand-in base (for `python_version`) and uv images.

    Everything built in it goes with it.
    """
    require_tools()
    podman = Podman(folder, Path(tempfile.mkdtemp(prefix="podman-run-", dir="/tmp")))
    try:
        base = cached(f"debian-{digest(*map(str.encode, BASE_RECIPE))}.tar", debian_rootfs)
        if python_version != BASE_PYTHON:
            key = digest(base.name.encode(), python_version.encode())
            base = cached(
                f"debian-python{python_version}-{key}.tar", python_rootfs(base, python_version)
            )
        uv = uv_binary()
        uv_tar = cached(f"uv-{digest(uv.read_bytes())}.tar", uv_rootfs(uv))
        podman("import", "--quiet", str(base), BASE_IMAGE)
        podman("import", "--quiet", str(uv_tar), UV_IMAGE)
        yield podman
    finally:
        with contextlib.suppress(BaseException):
            podman("rm", "--all", "--force")
            podman("rmi", "--all", "--force")
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(podman.runroot, ignore_errors=True)


def build_args() -> list[str]:
    """What points a generated Dockerfile at the stand-ins (and, behind a TLS-inspecting proxy,
    hands this machine's CA bundle to the package installs as a build secret)."""
    arguments = [
        *("--build-arg", f"BASE_IMAGE={BASE_IMAGE}"),
        *("--build-arg", f"UV_IMAGE={UV_IMAGE}"),
    ]
    if ca_bundle := os.environ.get("SSL_CERT_FILE"):
        arguments += ["--secret", f"id=ca_bundle,src={ca_bundle}"]
    return arguments
