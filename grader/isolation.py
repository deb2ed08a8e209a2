"""Which isolation a grade runs under, and what each mode leaves unprotected.

The modes, strongest first, are described in grader.sandbox; this module picks one for this
machine (refusing to run student code as root) and says, for the summary and results.json,
what the chosen one did not protect.
"""
from __future__ import annotations

import sys

from . import bwrap, identity
from .errors import InputError


class IsolationRefused(InputError):
    """This machine cannot run student code without it being root, or the mode asked for is unavailable."""


def bwrap_works(python: str = sys.executable) -> bool:
    return bwrap.usable_way(python) is not None


def choose_isolation(requested: str, python: str) -> str:
    """The mode to use; refuses (IsolationRefused) rather than run student code as root."""
    root = identity.can_switch()
    if requested == "bwrap" and not bwrap_works(python):
        raise IsolationRefused("--isolation bwrap: bubblewrap is not installed or cannot start here "
                               "(apt-get install bubblewrap; in a container it needs user namespaces)")
    if requested in ("auto", "user") and not (requested == "auto" and bwrap_works(python)):
        if not root:
            if requested == "user":
                raise IsolationRefused("--isolation user needs root, to run the submission as a uid of its own")
            return "process"
        ok, why = identity.runs_python(identity.sandbox_uid(), python)
        if not ok:
            raise IsolationRefused(
                f"refusing to grade: running as root without a usable bubblewrap, the submission's code would run "
                f"as root, and an unprivileged uid cannot start {python} ({why or 'permission denied'}). Install "
                f"bubblewrap, or put the grading environment where every user can read it (e.g. /opt/dlgrade, "
                f"chmod -R a+rX), or grade as an ordinary user.")
        return "user"
    if requested == "process" and root:
        raise IsolationRefused("--isolation process as root would run the submission's code as root; use "
                               "--isolation auto (bubblewrap or a uid of its own), or grade as an ordinary user")
    return "bwrap" if requested == "auto" else requested


def lost_protections(isolation: str, cgroups: list[str], namespaces: str = "") -> list[str]:
    """What this mode did not protect, one short line each, for the summary and results.json."""
    lost = []
    if isolation == "user":
        lost += ["no bubblewrap: its code could read every file on this machine that all users may read, and reach "
                 "the network", "it could write into /tmp, /var/tmp and /dev/shm; the grader removed what it left there"]
    if isolation == "process":
        lost.append("not root and no bubblewrap: its code ran as your own user, so it could read and change your "
                    "files" + (" and leave files in /tmp" if "pid" in namespaces else ""))
        if "pid" in namespaces:
            lost.append("its own user, PID and network namespaces kept it from signalling this grader, outliving the "
                        "grade or reaching the network" + (", and /dev/shm was its own" if "shm" in namespaces else ""))
        else:
            lost.append("the kernel gave it no namespaces of its own: it could reach the network, and signal, stop or "
                        "outlive this grader")
    if "memory" not in cgroups:
        lost.append("no kernel memory or process limits: a watchdog polling every 0.1 s enforced them")
    return lost
