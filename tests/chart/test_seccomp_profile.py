"""The shipped seccomp profile: the runtime's default allow-list (resolved for a container
without capabilities) plus GPU syscalls; not the source document's four-line list."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "deploy" / "seccomp" / "nimble-nim.json"
CHART_COPY = REPO / "charts" / "nimble-nim" / "files" / "seccomp" / "nimble-nim.json"

# What any dynamically linked Python/CUDA server process calls while starting up, loading
# weights, serving HTTP and spawning worker processes (glibc, CPython, CUDA driver, NCCL).
ESSENTIAL = {
    "read",
    "write",
    "openat",
    "close",
    "fstat",
    "newfstatat",
    "statx",
    "lseek",
    "mmap",
    "munmap",
    "mprotect",
    "brk",
    "madvise",
    "mremap",
    "ioctl",
    "futex",
    "clone",
    "execve",
    "wait4",
    "exit_group",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "getpid",
    "gettid",
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "epoll_pwait",
    "eventfd2",
    "socket",
    "bind",
    "listen",
    "accept4",
    "connect",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "setsockopt",
    "getsockopt",
    "pipe2",
    "dup2",
    "fcntl",
    "getdents64",
    "readlink",
    "getcwd",
    "prlimit64",
    "sched_getaffinity",
    "sched_yield",
    "set_robust_list",
    "rseq",
    "getrandom",
    "memfd_create",
    "shmget",
    "shmat",
    "shmctl",
    "mlock",
    "munlock",
    "pread64",
    "pwrite64",
    "fallocate",
    "uname",
    "arch_prctl",
    "set_tid_address",
    "clock_gettime",
    "nanosleep",
    "clock_nanosleep",
    "kill",
    "tgkill",
    "prctl",
}
GPU_EXTRA = {"get_mempolicy", "mbind", "set_mempolicy", "pidfd_getfd"}
# Must stay blocked for an unprivileged container (the runtime default blocks them too).
FORBIDDEN = {
    "mount",
    "umount2",
    "unshare",
    "setns",
    "pivot_root",
    "bpf",
    "perf_event_open",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "add_key",
    "keyctl",
    "request_key",
    "open_by_handle_at",
    "fsopen",
    "fsmount",
    "move_mount",
    "open_tree",
    "userfaultfd",
    "iopl",
    "ioperm",
    "settimeofday",
    "clock_settime",
    "acct",
    "quotactl",
    "lookup_dcookie",
    "syslog",
}
# The source document's proposed profile (seed, improvement 7).
SEED_PROFILE = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "architectures": ["SCMP_ARCH_X86_64"],
    "syscalls": [
        {"names": ["ioctl", "mmap", "munmap"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["open", "read", "write", "close"], "action": "SCMP_ACT_ALLOW"},
    ],
}


def allowed(profile: dict[str, Any]) -> set[str]:
    """Syscalls allowed at least for some arguments."""
    return {
        name
        for rule in profile["syscalls"]
        if rule["action"] == "SCMP_ACT_ALLOW"
        for name in rule["names"]
    }


def load() -> dict[str, Any]:
    profile: dict[str, Any] = json.loads(PROFILE.read_text())
    return profile


def test_chart_carries_the_same_profile_as_deploy() -> None:
    assert CHART_COPY.read_bytes() == PROFILE.read_bytes()


def test_profile_denies_by_default_and_targets_x86_64() -> None:
    profile = load()
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
    assert profile["architectures"][0] == "SCMP_ARCH_X86_64"
    # Only OCI runtime-spec fields: Docker-only keys (includes/excludes/archMap) would be
    # ignored by containerd/CRI-O and silently widen the profile.
    assert set(profile) <= {"defaultAction", "defaultErrnoRet", "architectures", "syscalls"}
    for rule in profile["syscalls"]:
        assert set(rule) <= {"names", "action", "args", "errnoRet"}, rule


def test_profile_allows_what_a_gpu_server_process_needs() -> None:
    names = allowed(load())
    assert names >= ESSENTIAL, sorted(ESSENTIAL - names)
    assert names >= GPU_EXTRA
    assert len(names) > 300


def test_profile_blocks_privileged_syscalls() -> None:
    assert not FORBIDDEN & allowed(load())


def test_clone_is_restricted_to_no_new_namespaces_and_clone3_falls_back() -> None:
    profile = load()
    clone_rules = [r for r in profile["syscalls"] if "clone" in r["names"]]
    assert all(r.get("args") for r in clone_rules), "clone must be argument-filtered"
    (clone3,) = [r for r in profile["syscalls"] if "clone3" in r["names"]]
    assert clone3["action"] == "SCMP_ACT_ERRNO" and clone3["errnoRet"] == 38  # ENOSYS


def test_the_source_documents_profile_would_break_the_process() -> None:
    missing = ESSENTIAL - allowed(SEED_PROFILE)
    assert {"execve", "futex", "clone", "openat", "exit_group", "rt_sigaction"} <= missing
