"""How one sandbox is made: the bubblewrap command line, what is mounted, the seccomp filters.

Every sandbox is a bubblewrap (`bwrap`) container: new PID, network, IPC, UTS and mount namespaces; a root file system
that holds only /usr, the Python installation, the offered packages, the runtime files under /sandbox (the template,
QuickJS and the JavaScript runner's files; all read-only), a private /proc, a minimal read-only /dev and a size-capped
tmpfs at /tmp (the scratch directory); an empty environment; no capabilities and no_new_privs; a seccomp filter
against the kernel interfaces a sandbox has no use for. When the server runs as root, bubblewrap runs privileged (it
needs no user namespace) and `setpriv` drops to an unprivileged uid of the sandbox's own before anything else runs;
otherwise bubblewrap makes a user namespace. With egress on (egress.py), a Python sandbox also gets its proxy
socket's directory and /etc/ssl/certs, read-only, and the proxy settings in its environment.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import importlib.util
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from knotflow.sandbox import egress
from knotflow.sandbox.errors import CodeFailed
from knotflow.sandbox.options import SandboxOptions

HERE = Path(__file__).resolve().parent
RUNTIME_DIR = "/sandbox"
SITE_DIR = "/sandbox/site"
PY_WORKER = "/sandbox/pyworker.py"
JS_DIR = "/sandbox/js"  # the template of a JavaScript sandbox adds it to sys.path (see _pyworker.py)
VENDOR = HERE / "vendor"  # built from sandbox-js/ (`make sandbox-js`)
JS_FILES = {
    "jsworker.py": HERE / "_jsworker.py", "runner.js": HERE / "_jsrunner.js",
    "typescript.js": VENDOR / "typescript.js", "inspect.js": VENDOR / "inspect.js",
}  # fmt: skip
# The extension of the quickjs-ng wheel, imported without its Python wrapper (which starts a thread).
QUICKJS_MODULE = "_quickjs"
SCRATCH = "/tmp"
SETPRIV = "/usr/bin/setpriv"

# Interfaces a sandboxed program has no use for, which widen the kernel surface it can attack or let it observe or
# alter other processes: tracing, keyrings, eBPF, perf, userfaultfd, mounts and namespaces, modules, clocks,
# io_uring (which bypasses seccomp for the operations it performs), handle-based opens (escape a bind mount).
DENIED_EVERYWHERE = (
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "keyctl", "add_key", "request_key", "bpf",
    "perf_event_open", "userfaultfd", "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "fsopen",
    "fsmount", "fsconfig", "fspick", "move_mount", "open_tree", "mount_setattr", "kexec_load", "kexec_file_load",
    "init_module", "finit_module", "delete_module", "reboot", "swapon", "swapoff", "syslog", "acct",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "open_by_handle_at", "name_to_handle_at",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "fanotify_init", "quotactl", "iopl", "ioperm",
    "mbind", "migrate_pages", "move_pages", "set_mempolicy", "lookup_dcookie", "vhangup",
)  # fmt: skip
# On top of that, a call's child (Python or JavaScript) may create no process or thread at all and exec nothing:
# Coze forbids threading and multiprocessing too, and with nothing to fork a fork bomb has nothing to work with.
DENIED_IN_CALLS = ("fork", "vfork", "clone", "execve", "execveat")
# CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET
NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)

_uid_offsets = itertools.count()
_REQUIREMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_EXTRA_MARKER = re.compile(r"\bextra\s*==")


def _normalized(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


@dataclass(frozen=True)
class Mount:
    source: str
    target: str


@functools.cache
def seccomp_programs() -> tuple[bytes, bytes]:
    """The BPF programs (everywhere; a call's child), compiled once per process with libseccomp."""
    try:
        import pyseccomp as seccomp
    except (ImportError, RuntimeError) as error:  # RuntimeError: the package found no libseccomp.so
        raise CodeFailed("sandbox", f"libseccomp is not usable ({error}); install libseccomp2") from None

    def compiled(denied: tuple[str, ...], *, forbid_clone: bool) -> bytes:
        rules = seccomp.SyscallFilter(seccomp.ALLOW)
        for name in denied:
            # Some are not system calls on every architecture (fork on arm64, iopl on most).
            with contextlib.suppress(OSError, ValueError, RuntimeError):
                rules.add_rule(seccomp.ERRNO(errno.EPERM), name)
        if not forbid_clone:  # the template's forks stay possible; new namespaces do not
            for flag in NAMESPACE_FLAGS:
                rules.add_rule(seccomp.ERRNO(errno.EPERM), "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
        # clone3 passes its flags in memory, out of a filter's sight: ENOSYS makes libc fall back to clone.
        rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
        with os.fdopen(os.memfd_create("seccomp"), "w+b") as stream:
            rules.export_bpf(stream)
            stream.seek(0)
            return stream.read()

    everywhere = compiled(DENIED_EVERYWHERE, forbid_clone=False)
    calls = compiled(DENIED_EVERYWHERE + DENIED_IN_CALLS, forbid_clone=True)
    return everywhere, calls


# Jails are built in worker threads (their checks run programs and import machinery); two pools may start at once.
_construction = threading.Lock()


class Jail:
    """Resolves tools and paths once, then builds command lines for sandboxes."""

    def __init__(self, options: SandboxOptions) -> None:
        with _construction:
            self._resolve(options)

    def _resolve(self, options: SandboxOptions) -> None:
        self.options = options
        self.privileged = os.geteuid() == 0
        bwrap = options.bwrap or shutil.which("bwrap")
        if not bwrap or not os.access(bwrap, os.X_OK):
            raise CodeFailed("sandbox", "bubblewrap is not installed (Debian: apt-get install bubblewrap)")
        self.bwrap = bwrap
        if self.privileged and not os.access(SETPRIV, os.X_OK):
            raise CodeFailed("sandbox", f"{SETPRIV} (util-linux) is needed to drop root")
        self.python, python_prefix, self.hidden = self._python(options.python)
        self.site = self._packages(options.offered_packages)
        self.quickjs = self._quickjs()
        self.seccomp_everywhere, self.seccomp_calls = seccomp_programs()
        mounts = [Mount(str(HERE / "_pyworker.py"), PY_WORKER)]
        mounts += [Mount(str(source), f"{JS_DIR}/{name}") for name, source in JS_FILES.items()]
        if not python_prefix.startswith("/usr/"):
            mounts.append(Mount(python_prefix, python_prefix))
        if not self.python.startswith(("/usr/", python_prefix + "/")):
            mounts.append(Mount(self.python, self.python))
        mounts += self.site
        if self.quickjs:
            mounts.append(Mount(self.quickjs, f"{JS_DIR}/{Path(self.quickjs).name}"))
        if options.egress and os.path.isdir(egress.CA_CERTIFICATES):
            mounts.append(Mount(egress.CA_CERTIFICATES, egress.CA_CERTIFICATES))
        self.mounts = mounts

    @staticmethod
    def _python(configured: str | None) -> tuple[str, str, list[str]]:
        """The interpreter's real path, its installation prefix, and its own site-packages directories."""
        # The real binary, not a virtualenv's link to it: the sandbox gets the standard library and the offered
        # packages, never the server's whole environment.
        found = os.path.realpath(shutil.which(configured) or configured if configured else sys.executable)
        probe = "import json, site, sys; print(json.dumps([sys.base_prefix, site.getsitepackages()]))"
        try:
            answer = subprocess.run([found, "-I", "-c", probe], capture_output=True, text=True, timeout=60, check=False)
        except OSError as error:
            raise CodeFailed("sandbox", f"the Python interpreter {found} does not run: {error}") from None
        if answer.returncode != 0:
            raise CodeFailed("sandbox", f"the Python interpreter {found} does not run: {answer.stderr.strip()}")
        prefix, site_dirs = json.loads(answer.stdout)
        return found, os.path.realpath(prefix), [path for path in site_dirs if os.path.isdir(path)]

    @staticmethod
    def _packages(offered: tuple[str, ...]) -> list[Mount]:
        """Mounts for the offered packages and the third-party modules they import (httpx: httpcore, h11, anyio…)."""
        mounts = []
        for name in Jail._imported(offered):
            spec = importlib.util.find_spec(name)
            if spec is None:
                raise CodeFailed("sandbox", f"the offered Python package {name!r} is not installed")
            locations = list(spec.submodule_search_locations or [])
            path = Path(locations[0]) if locations else Path(spec.origin or "")
            mounts.append(Mount(str(path), f"{SITE_DIR}/{path.name}"))
            vendored = path.with_name(f"{name}.libs")  # shared libraries of a manylinux wheel, found via RPATH
            if vendored.is_dir():
                mounts.append(Mount(str(vendored), f"{SITE_DIR}/{vendored.name}"))
        return mounts

    @staticmethod
    def _imported(offered: tuple[str, ...]) -> list[str]:
        """`offered` and the top-level modules of the distributions they require (without extras), transitively:
        what importing them may load, now or lazily (httpcore imports h11 on its first connection)."""
        providers = metadata.packages_distributions()  # top-level module -> its distributions
        modules_of: dict[str, set[str]] = {}
        for module, distributions in providers.items():
            for distribution in distributions:
                modules_of.setdefault(_normalized(distribution), set()).add(module)
        pending = [distribution for module in offered for distribution in providers.get(module, [])]
        seen: set[str] = set()
        while pending:
            name = _normalized(pending.pop())
            if name in seen:
                continue
            seen.add(name)
            with contextlib.suppress(metadata.PackageNotFoundError):
                for requirement in metadata.requires(name) or []:
                    # Markers other than extras are not evaluated: a dependency for another Python version is
                    # mounted only if it is installed, and then harmlessly.
                    if not _EXTRA_MARKER.search(requirement):
                        pending.append(_REQUIREMENT_NAME.match(requirement)[0])  # type: ignore[index]
        required = sorted(module for distribution in seen for module in modules_of.get(distribution, ())
                          if module.isidentifier() and module not in offered)
        return [*offered, *(module for module in required if importlib.util.find_spec(module) is not None)]

    @staticmethod
    def _quickjs() -> str | None:
        """The QuickJS extension module's file (one shared library, no dependency beyond libc), or None."""
        spec = importlib.util.find_spec(QUICKJS_MODULE)
        return os.path.realpath(spec.origin) if spec is not None and spec.origin else None

    def sandbox_uid(self) -> int:
        """An unprivileged uid for one sandbox (privileged mode), so RLIMIT_NPROC counts that sandbox alone.

        Distinct within this server process; two server processes may rarely share one, which only merges their
        task counts: each sandbox still has its own PID namespace, file system and scratch.
        """
        return self.options.sandbox_uid_base + (os.getpid() % 4096) * 256 + next(_uid_offsets) % 256

    def _bwrap(self, descriptors: tuple[int, int], environment: dict[str, str], extra: list[Mount]) -> list[str]:
        seccomp_fd, info_fd = descriptors
        args = [
            self.bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--clearenv",
        ]  # fmt: skip
        if self.privileged:
            # Only what setpriv needs to drop to the sandbox's uid; it then clears them all.
            args += ["--cap-drop", "ALL"]
            for capability in ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP"):
                args += ["--cap-add", capability]
        else:
            args += ["--unshare-user", "--disable-userns"]
        args += ["--ro-bind", "/usr", "/usr"]
        for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            host = Path("/") / name
            if host.is_symlink():
                args += ["--symlink", os.readlink(host), str(host)]
            elif host.is_dir():
                args += ["--ro-bind", str(host), str(host)]
        args += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev"]
        args += ["--perms", "1777", "--size", str(self.options.scratch_mb << 20), "--tmpfs", SCRATCH]
        # bubblewrap makes missing parents of a mount point mode 0700 (root's): the sandbox's uid could not pass.
        mounts = [*self.mounts, *extra]
        parents = dict.fromkeys(str(parent) for mount in mounts for parent in reversed(Path(mount.target).parents))
        for directory in parents:
            if directory != "/":
                args += ["--perms", "0755", "--dir", directory]
        for mount in mounts:
            args += ["--ro-bind", mount.source, mount.target]
        for path in self.hidden:  # what is installed into the interpreter itself is not offered: mask it
            args += ["--perms", "0555", "--tmpfs", path, "--remount-ro", path]
        args += ["--remount-ro", "/"]
        for name, value in {"HOME": SCRATCH, "TMPDIR": SCRATCH, "LANG": "C.UTF-8", "TZ": "UTC", **environment}.items():
            args += ["--setenv", name, value]
        # --info-fd tells the host PID of the sandbox's PID-namespace init: killing it ends everything inside.
        args += ["--chdir", SCRATCH, "--add-seccomp-fd", str(seccomp_fd), "--info-fd", str(info_fd), "--"]
        return args

    def _drop_root(self, uid: int) -> list[str]:
        if not self.privileged:
            return []
        return [SETPRIV, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
                "--bounding-set=-all", "--"]  # fmt: skip

    def command(self, runtime: str, seccomp_fd: int, info_fd: int, egress_directory: str | None = None) -> list[str]:
        """A sandbox's command line: bubblewrap reads the filter from `seccomp_fd`, writes its info to `info_fd`.

        Both runtimes run the same template (_pyworker.py): a Python one preloads the offered packages, a JavaScript
        one QuickJS and the TypeScript transpiler (see _jsworker.py). With `egress_directory` (a Python sandbox when
        egress is on: see egress.py) the proxy's socket is mounted and the template starts its relay."""
        import base64

        if runtime == "js" and self.quickjs is None:
            raise CodeFailed("sandbox", "QuickJS is not installed (pip install quickjs-ng)")
        python = runtime == "python"
        config = {
            "runtime": runtime,
            "site": [SITE_DIR] if python else [],
            "preload": list(self.options.offered_packages) if python else [],
            "max_tasks": self.options.max_tasks,
            "memory_bytes": self.options.memory_mb << 20,
            "scratch": SCRATCH,
            "scratch_bytes": self.options.scratch_mb << 20,
            "max_output": self.options.max_output_bytes,
            "max_stdout": self.options.max_stdout_chars,
            "child_seccomp": base64.b64encode(self.seccomp_calls).decode(),
            "egress": egress.relay_config() if egress_directory else None,
        }
        # One thread per BLAS library: threads cannot survive the fork of each call, and calls may not make more.
        single_thread = {name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
        environment = single_thread if python else {}
        extra = []
        if egress_directory:
            environment = {**environment, **egress.environment()}
            extra.append(Mount(egress_directory, egress.MOUNT))
        return (
            self._bwrap((seccomp_fd, info_fd), environment, extra)
            + self._drop_root(self.sandbox_uid())
            + [self.python, "-I", "-S", "-B", PY_WORKER, json.dumps(config)]
        )

    def seccomp_descriptor(self) -> int:
        """A fresh descriptor holding the everywhere-filter; bubblewrap reads it to the end, so one per sandbox."""
        descriptor = os.memfd_create("knotflow-seccomp", os.MFD_CLOEXEC)
        os.write(descriptor, self.seccomp_everywhere)
        os.lseek(descriptor, 0, os.SEEK_SET)
        return descriptor
