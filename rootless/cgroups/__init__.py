"""cgroup v2: which tree this user may use (``detect``) and the resource flags (``limits``)."""
