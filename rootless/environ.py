"""Environment lists as the OCI spec and Docker keep them ("KEY=VALUE" strings), and the
rule of ``-e``/``--env-file`` shared by ``run``, ``create`` and ``exec``."""

from rootless.errors import UsageError


def to_dict(items) -> dict:
    """"KEY=VALUE" strings -> an ordered dict (a later KEY wins)."""
    env = {}
    for item in items or ():
        key, _, value = item.partition("=")
        env[key] = value
    return env


def apply_flags(env: dict, flags, host_env) -> None:
    """``-e KEY=VALUE`` sets; a bare ``-e KEY`` passes the host's value, or nothing when the
    host has none (Docker's rule); a bare ``-e 'PREFIX*'`` passes every host variable whose
    name begins with PREFIX (podman's rule: ``-e 'SLURM_*'`` hands a container its job's
    Slurm variables, ``-e '*'`` all of them); an empty KEY is refused."""
    for item in flags:
        key, sep, value = item.partition("=")
        if not key:
            raise UsageError("invalid environment variable %r" % item)
        if sep:
            env[key] = value
        elif key.endswith("*"):
            prefix = key[:-1]
            for name in sorted(host_env):
                if name.startswith(prefix):
                    env[name] = host_env[name]
        elif key in host_env:
            env[key] = host_env[key]


def to_list(env: dict) -> list:
    return ["%s=%s" % kv for kv in env.items()]
