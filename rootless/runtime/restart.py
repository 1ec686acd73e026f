"""Docker's restart policies (pure): whether a container that exited is started again."""


def restart_wanted(policy: dict, code: int, count: int, stopped_by_user: bool,
                   cancelled: bool = False) -> bool:
    """Docker's restart policies, as its restartmanager.ShouldRestart (pure): nothing once
    cancelled (a stop, most kills); ``unless-stopped`` not after any kill by the user."""
    name = policy.get("name", "no")
    if cancelled or name == "no":
        return False
    if name == "on-failure":
        limit = policy.get("maximum_retry_count", 0)
        return code != 0 and (limit == 0 or count < limit)
    if name == "unless-stopped":
        return not stopped_by_user
    return name == "always"
