"""The module contract: how a feature plugs into Revenge (see docs/architecture.md).

* :class:`Module` (``MODULE = Module(name, install)`` in ``modules/<name>/__init__.py``)
  and the :class:`ModuleContext` its ``install(ctx)`` receives;
* the platform's typed service keys (:data:`DATABASE`, :data:`CACHE`, :data:`JOBS`,
  :data:`SETTINGS`);
* :func:`assemble`: the one way an application is built from a module list.

Arrows: ``app -> modules -> contract -> runtime, infra, http``.
"""

from revenge.contract.assembly import Assembly, assemble
from revenge.contract.module import Module, ModuleContext, Role
from revenge.contract.platform import CACHE, DATABASE, JOB_WORKER, JOBS, SETTINGS, JobWorker
from revenge.infra.jobs import JobBody, JobContext, JobKind, Payload, RetryPolicy
from revenge.runtime import Lazy, ServiceKey, Tier

__all__ = [
    "CACHE",
    "DATABASE",
    "JOBS",
    "JOB_WORKER",
    "SETTINGS",
    "Assembly",
    "JobBody",
    "JobContext",
    "JobKind",
    "JobWorker",
    "Lazy",
    "Module",
    "ModuleContext",
    "Payload",
    "RetryPolicy",
    "Role",
    "ServiceKey",
    "Tier",
    "assemble",
]
