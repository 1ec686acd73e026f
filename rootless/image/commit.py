"""``commit``: a container's changes become an image, as Docker makes it.

The new image is the container's image with one more layer (none when nothing changed:
Docker's ``empty_layer`` history entry), its config the container's (the command it ran,
its environment, labels and working directory, over the image's), with the ``--change``
instructions applied. History gets Docker's entry (``created_by`` is the container's Cmd
joined by spaces; author and comment). The layer goes through the store's own path
(``Store.ingest_layer``, as ``import`` does) and the image is listed by ``add_image``
last, so a failure (a full disk) leaves nothing listed, only work ``tmp/`` collects.

The instruction parsing here is pure (``apply_changes``): Docker's allowed set, JSON and
shell forms, Docker's words for what it refuses.
"""

import posixpath
import time
from typing import Dict, List, Optional, Tuple

from rootless import jsonfast
from rootless.errors import UsageError

ALLOWED = ("cmd", "entrypoint", "env", "expose", "healthcheck", "label", "onbuild", "stopsignal", "user", "volume",
           "workdir")
# Added by the runtime, not part of the container's configuration (Docker keeps them out too).
RUNTIME_ENV = ("HOSTNAME",)


def container_config(image_config: dict, command: List[str], env: List[str], workdir: str,
                     labels: Dict[str, str]) -> dict:
    """The container's configuration as Docker keeps it (pure): the image's, with the
    command split back into Entrypoint and Cmd, the environment without what the runtime
    added, the container's labels over the image's, its working directory."""
    config = jsonfast.loads(jsonfast.dumps(image_config or {}))
    entry = list(config.get("Entrypoint") or [])
    if entry and command[:len(entry)] == entry:
        cmd = command[len(entry):]
    elif entry:
        entry, cmd = command[:1], command[1:]  # --entrypoint replaced the image's
    else:
        cmd = list(command)
    if entry:
        config["Entrypoint"] = entry
    config["Cmd"] = cmd or None
    image_env = {e.partition("=")[0] for e in config.get("Env") or []}
    config["Env"] = [e for e in env if e.partition("=")[0] not in RUNTIME_ENV
                     and (e.partition("=")[0] not in ("HOME", "TERM") or e.partition("=")[0] in image_env)]
    if workdir and workdir != "/" or config.get("WorkingDir"):
        config["WorkingDir"] = workdir
    if labels:
        config["Labels"] = dict(config.get("Labels") or {}, **labels)
    return config


def apply_changes(config: dict, changes: List[str]) -> dict:
    """``config`` (a container config) with Dockerfile instructions applied, in order."""
    config = jsonfast.loads(jsonfast.dumps(config))
    cmd_set = False
    for line in changes:
        for text in line.split("\n"):
            text = text.strip()
            if not text or text.startswith("#"):
                continue
            word, _, rest = text.partition(" ")
            keyword, rest = word.lower(), rest.strip()
            if keyword not in ALLOWED:
                raise UsageError("%s is not a valid change command" % keyword)
            if not rest:
                raise UsageError("%s requires at least one argument" % keyword.upper())
            if keyword == "cmd":
                config["Cmd"], cmd_set = _command(rest), True
            elif keyword == "entrypoint":
                config["Entrypoint"] = _command(rest)
                if not cmd_set:
                    config["Cmd"] = None  # Docker: a new entrypoint drops the old Cmd
            elif keyword == "env":
                env = [e for e in config.get("Env") or []]
                for key, value in _pairs(rest, "ENV", env):
                    keys = [e.partition("=")[0] for e in env]  # Docker replaces in place
                    if key in keys:
                        env[keys.index(key)] = "%s=%s" % (key, value)
                    else:
                        env.append("%s=%s" % (key, value))
                config["Env"] = env
            elif keyword == "label":
                config["Labels"] = dict(config.get("Labels") or {}, **dict(_pairs(rest, "LABEL", config.get("Env") or [])))
            elif keyword == "expose":
                ports = dict(config.get("ExposedPorts") or {})
                for word in rest.split():
                    for port in _ports(word):
                        ports[port] = {}
                config["ExposedPorts"] = ports
            elif keyword == "volume":
                volumes = dict(config.get("Volumes") or {})
                for path in _list(rest):
                    if not path:
                        raise UsageError("VOLUME specified can not be an empty string")
                    volumes[path] = {}
                config["Volumes"] = volumes
            elif keyword == "workdir":
                config["WorkingDir"] = posixpath.join(config.get("WorkingDir") or "/", _expand(rest, config))
            elif keyword == "user":
                config["User"] = _expand(rest, config)
            elif keyword == "stopsignal":
                config["StopSignal"] = rest
            elif keyword == "healthcheck":
                config["Healthcheck"] = _healthcheck(rest)
            elif keyword == "onbuild":
                trigger, _, tail = rest.partition(" ")
                if trigger.upper() in ("ONBUILD", "FROM", "MAINTAINER"):
                    raise UsageError("%s isn't allowed as an ONBUILD trigger" % trigger.upper())
                config["OnBuild"] = list(config.get("OnBuild") or []) + [(trigger.upper() + " " + tail).strip()]
    return config


def _expand(text: str, config: dict) -> str:
    return " ".join(words_of(text, _env_map(config.get("Env") or []), split=False))


_DURATION_UNITS = {"ns": 1, "us": 1000, "µs": 1000, "ms": 10 ** 6, "s": 10 ** 9, "m": 60 * 10 ** 9, "h": 3600 * 10 ** 9}


def _healthcheck(rest: str) -> dict:
    """``HEALTHCHECK NONE`` or ``HEALTHCHECK [--interval=D ...] CMD command`` (Docker's
    fields: durations in nanoseconds)."""
    import re
    words = rest.split()
    if [w.upper() for w in words] == ["NONE"]:
        return {"Test": ["NONE"]}
    check: dict = {}
    while words and words[0].startswith("--"):
        flag, _, value = words.pop(0)[2:].partition("=")
        field = {"interval": "Interval", "timeout": "Timeout", "start-period": "StartPeriod",
                 "start-interval": "StartInterval", "retries": "Retries"}.get(flag)
        if field is None:
            raise UsageError("unknown flag: %s" % flag)
        if field == "Retries":
            if not value.isdigit():
                raise UsageError("invalid argument %r for --retries" % value)
            check[field] = int(value)
            continue
        parts = re.findall(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)", value)
        if not parts or "".join(a + b for a, b in parts) != value:
            raise UsageError('time: invalid duration "%s"' % value)
        check[field] = int(sum(float(a) * _DURATION_UNITS[b] for a, b in parts))
    if not words or words[0].upper() != "CMD":
        raise UsageError("Unknown type %r in HEALTHCHECK (try CMD)" % (words[0] if words else ""))
    text = re.sub(r"^(\s*--\S+)*\s*", "", rest)[3:].strip()
    form = _json_list(text)
    check["Test"] = ["CMD"] + form if form is not None else ["CMD-SHELL", text]
    return check


def _command(rest: str) -> List[str]:
    """The JSON form (``["echo","hi"]``) or the shell form (``/bin/sh -c TEXT``)."""
    form = _json_list(rest)
    return form if form is not None else ["/bin/sh", "-c", rest]


def _json_list(rest: str) -> Optional[List[str]]:
    if not rest.startswith("["):
        return None
    try:
        value = jsonfast.loads(rest)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def _list(rest: str) -> List[str]:
    form = _json_list(rest)
    return form if form is not None else rest.split()


def _pairs(rest: str, what: str, env: List[str]) -> List[Tuple[str, str]]:
    """``KEY=VALUE ...`` (quotes and ``$VAR`` as a Dockerfile's) or the old ``KEY VALUE``."""
    words = words_of(rest, _env_map(env))
    if not words or "=" not in words[0]:
        if len(words) < 2:
            raise UsageError("%s must have two arguments" % what)
        return [(words[0], " ".join(words_of(rest.split(None, 1)[1], _env_map(env), split=False)))]
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise UsageError("%s names can not be blank" % what if not key else
                             "Syntax error - can't find = in %r. Must be of the form: name=value" % word)
        pairs.append((key, value))
    return pairs


def _env_map(env: List[str]) -> Dict[str, str]:
    return dict(e.partition("=")[::2] for e in env)


def words_of(text: str, env: Dict[str, str], split: bool = True) -> List[str]:
    """A Dockerfile's words (pure): whitespace separates them (unless ``split`` is false),
    single quotes keep everything, double quotes and bare text expand ``$NAME`` and
    ``${NAME}`` from ``env``, a backslash escapes the next character."""
    words: List[str] = []
    word, started, i, quote = [], False, 0, ""
    while i < len(text):
        c = text[i]
        if quote == "'":
            if c == "'":
                quote = ""
            else:
                word.append(c)
        elif c == "\\" and i + 1 < len(text) and (not quote or text[i + 1] in '"$\\'):
            i += 1
            word.append(text[i])
        elif c == "$" and quote != "'":
            name, i = _variable(text, i)
            if name is None:
                word.append("$")
            else:
                word.append(env.get(name, ""))
                started = True
                continue
        elif quote == '"':
            if c == '"':
                quote = ""
            else:
                word.append(c)
        elif c in "'\"":
            quote, started = c, True
        elif c.isspace() and split:
            if word or started:
                words.append("".join(word))
            word, started = [], False
        else:
            word.append(c)
        i += 1
    if quote:
        raise UsageError("unexpected end of statement while looking for matching %s" % quote)
    if word or started:
        words.append("".join(word))
    return words


def _variable(text: str, at: int):
    """(the name of the variable at ``text[at]`` == "$", the index after it); (None, at)
    when no name follows."""
    import re
    m = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))").match(text, at)
    if not m:
        return None, at
    return m.group(1) or m.group(2), m.end()


def _ports(word: str) -> List[str]:
    port, _, proto = word.partition("/")
    proto = (proto or "tcp").lower()
    low, sep, high = port.partition("-")
    if not low.isdigit() or (sep and not high.isdigit()):
        raise UsageError("invalid containerPort: %s" % port)
    numbers = range(int(low), int(high) + 1) if sep else [int(low)]
    return ["%d/%s" % (n, proto) for n in numbers]


def rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%09dZ" % int((t % 1) * 1e9)


def image_config(base: dict, config: dict, diff_id: Optional[str], created: str, created_by: str,
                 author: str, comment: str) -> dict:
    """The new image's config (pure): ``base`` (the container's image config) with the
    container's ``config``, one more layer (``diff_id``; None: nothing changed) and its
    history entry."""
    new = {k: v for k, v in base.items() if k not in ("container_config", "container", "docker_version")}
    rootfs = dict(base.get("rootfs") or {"type": "layers"})
    rootfs["diff_ids"] = list(rootfs.get("diff_ids") or []) + ([diff_id] if diff_id else [])
    entry = {"created": created, "created_by": created_by}
    for key, value in (("author", author), ("comment", comment)):
        if value:
            entry[key] = value
    if not diff_id:
        entry["empty_layer"] = True
    new.update(config=config, rootfs=rootfs, created=created, history=list(base.get("history") or []) + [entry])
    for key, value in (("author", author), ("comment", comment)):
        if value:
            new[key] = value
        else:
            new.pop(key, None)
    return new


def store_image(store, base_id: str, config: dict, layer: Optional[Tuple[str, int]], created_by: str,
                author: str, comment: str, tag: Optional[str]) -> str:
    """Ingest the layer tar (``(path, size)``; None: no changes) and list the new image;
    its ID. The caller holds ``store.writing()``."""
    from rootless.image import manifest as mf
    from rootless.image.store import ImageRecord
    base_rec = store.lookup(base_id)
    base = jsonfast.loads(store.read_blob(base_rec.id))
    infos = [store.layer_info(d) for d in base_rec.layers]
    if any(i is None for i in infos):
        from rootless.errors import NotFound
        raise NotFound("a layer of the container's image %s is missing from the store" % base_rec.id[7:19])
    diff_id = None
    if layer is not None:
        path, size = layer
        info = store.ingest_layer(lambda: open(path, "rb"), what="the container's changes", region=(path, 0, size))
        infos.append(info)
        diff_id = info.diff_id
    now = time.time()
    data = jsonfast.dumps(image_config(base, config, diff_id, rfc3339(now), created_by, author, comment),
                      sort_keys=True).encode()
    digest = store.put_blob_bytes(data)
    manifest = store.put_blob_bytes(mf.build_manifest(digest, len(data), infos, docker=True))
    rec = ImageRecord(id=digest, manifest=manifest, layers=[i.diff_id for i in infos], created=rfc3339(now),
                      size=sum(i.content_size for i in infos), added=now)
    store.add_image(rec, [tag] if tag else [])
    return digest
