"""``inspect``, ``container inspect``, ``image inspect``: low-level JSON, as Docker prints it.

Each NAME|ID is looked up as a container first, then as an image (Docker's order; ``--type``
keeps one). The objects found are printed as one JSON array (indent 4), as one compact
array with ``-f json``, or with ``-f TEMPLATE`` the template rendered once per object, a
line each (an empty line when nothing was found, as Docker's). A name found nowhere does
not stop the others: they are printed first, then ``Error: No such object: NAME`` (``No
such container``, ``No such image`` when the type is known) on stderr, and the exit code
is 1, Docker's for inspect.

The container JSON is ``runtime.inspect``'s; the image JSON is ``cli.images.inspect_image``.
"""

import json
import sys
from typing import Callable, Dict, List, Optional

# Docker's object types, in its order: the ones rootless has, and the rest it has none of.
TYPES = ("config", "container", "image", "network", "node", "plugin", "secret", "service", "task", "volume")
FORMAT_HELP = ("format output using a custom template: 'json' prints in JSON format, "
               "'TEMPLATE' prints output using the given Go template")


def register(sub) -> None:
    p = sub.add_parser("inspect", help="return low-level information on containers and images")
    p.add_argument("names", nargs="+", metavar="NAME|ID")
    p.add_argument("-f", "--format", help=FORMAT_HELP)
    p.add_argument("-s", "--size", action="store_true", help="display total file sizes if the type is container")
    p.add_argument("--type", default=None, help="only inspect objects of the given type (container or image)")
    p.set_defaults(handler=cmd_inspect)


def add_container_parser(csub) -> None:
    p = csub.add_parser("inspect", help="display detailed information on one or more containers")
    p.add_argument("names", nargs="+", metavar="CONTAINER")
    p.add_argument("-f", "--format", help=FORMAT_HELP)
    p.add_argument("-s", "--size", action="store_true", help="display total file sizes")
    p.set_defaults(handler=cmd_inspect, type="container")


def add_image_parser(isub) -> None:
    p = isub.add_parser("inspect", help="display detailed information on one or more images")
    p.add_argument("names", nargs="+", metavar="IMAGE")
    p.add_argument("-f", "--format", help=FORMAT_HELP)
    p.set_defaults(handler=cmd_inspect, type="image", size=False)


def kinds_of(type_name: Optional[str]) -> tuple:
    """The object kinds a ``--type`` searches (Docker's errors for a bad one)."""
    from rootless.errors import Unsupported, UsageError
    if type_name is None:
        return ("container", "image")
    if type_name == "":
        raise UsageError('type is empty: must be one of "%s"' % '", "'.join(TYPES))
    if type_name not in TYPES:
        raise UsageError('unknown type: "%s": must be one of "%s"' % (type_name, '", "'.join(TYPES)))
    if type_name not in ("container", "image"):
        raise Unsupported("rootless has no %ss to inspect (it has containers and images)" % type_name)
    return (type_name,)


class Finder:
    """Looks names up as containers and images; each store is read once, when first asked."""

    def __init__(self, ctx, size: bool):
        self.ctx, self.size = ctx, size
        self._records: Optional[List[dict]] = None
        self._store = None
        self._index: Optional[Dict[str, object]] = None

    def container(self, ref: str) -> dict:
        from rootless.runtime import state
        from rootless.runtime.inspect import inspect_container
        paths = self.ctx.paths()
        containers = state.Containers(paths)
        if self._records is None:
            from rootless.runtime.start import remove
            self._records = containers.all(lambda record: remove(paths, record))
        record = state.pick(self._records, ref)
        return inspect_container(containers, record, self._sizes(containers, record) if self.size else None)

    def _sizes(self, containers, record: dict) -> "tuple[int, int]":
        from rootless.storage.rootfs import writable_size
        rw = writable_size(record.get("driver", ""), containers.dir(record["id"]))
        image = self.images().get(record.get("image_id", ""))
        return rw, rw + (image.size if image is not None else 0)

    def store(self):
        if self._store is None:
            self._store = self.ctx.store()
        return self._store

    def images(self) -> Dict[str, object]:
        if self._index is None:
            self._index = {rec.id: rec for rec in self.store().images()}
        return self._index

    def image(self, ref: str) -> dict:
        from rootless.cli.images import inspect_image
        obj = inspect_image(self.store(), ref)
        if self.size:
            sys.stderr.write("WARNING: --size ignored for image\n")
        return obj


def cmd_inspect(ctx, args) -> int:
    kinds = kinds_of(args.type)
    finder = Finder(ctx, bool(getattr(args, "size", False)))
    lookups = {"container": finder.container, "image": finder.image}
    return print_found(*find_all(args.names, [(kind, lookups[kind]) for kind in kinds]), args.format)


def print_found(objects: list, errors: list, template: Optional[str]) -> int:
    """What every inspect prints: the objects found, then an error line for each not found
    (exit 1 if any)."""
    sys.stdout.write(render_objects(objects, template))
    if errors:
        sys.stdout.flush()
        sys.stderr.write("".join(line + "\n" for line in errors))
        return 1
    return 0


def find_all(refs: List[str], lookups: List["tuple[str, Callable[[str], dict]]"]) -> "tuple[list, list]":
    """(objects found, error lines): each ref tried with each (kind, lookup) in turn until
    one finds it; a NotFound tries the next kind, another error stops at that ref."""
    from rootless.errors import NotFound, RootlessError
    objects, errors = [], []
    what = lookups[0][0] if len(lookups) == 1 else "object"
    for ref in refs:
        for kind, lookup in lookups:
            try:
                objects.append(lookup(ref))
                break
            except NotFound:
                continue
            except RootlessError as e:
                errors.append("rootless: error: %s" % " ".join(str(e).split("\n")))
                break
        else:
            errors.append("Error: No such %s: %s" % (what, ref))
    return objects, errors


def render_objects(objects: List[dict], template: Optional[str]) -> str:
    """Docker's inspect output: the JSON array, or one rendered line per object."""
    if not template:
        return go_json(objects, indent=4) + "\n"
    if template == "json":
        return go_json(objects) + "\n"
    from rootless.cli import format as fmt
    body = template.replace("\\t", "\t").replace("\\n", "\n")
    lines = [fmt.render(body, o) for o in objects]  # every one first: no half output on an error
    return "".join(line + "\n" for line in lines) if lines else "\n"


def go_json(value, indent: Optional[int] = None) -> str:
    """JSON as Go's encoder writes it: UTF-8 kept, ``<``, ``>``, ``&``, U+2028 and U+2029
    escaped (they occur only inside strings, so replacing them in the text is safe)."""
    text = json.dumps(value, indent=indent, ensure_ascii=False, separators=None if indent else (",", ":"))
    for c, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                       ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(c, escaped)
    return text
