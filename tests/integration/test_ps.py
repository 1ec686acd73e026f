"""`ps`, `rename`, `container prune` on real containers, as the unprivileged test users.

`create` makes Created containers, `run` exited ones with a chosen exit code, and `run`
in the background with `sleep` a running one. The states the runtime cannot reach yet
(paused, dead) are written into a record by hand, as the lifecycle work will write them.
"""

import hashlib
import io
import json
import os
import re
import signal
import subprocess
import tarfile
import time

import pytest

from conftest import Rootless, need
from rootless.units import human_size

BUSYBOX_ID = "sha256:87f1175a53de8f5abe40b974af896e70ede19e5adf8bde6a540b10d300db1a99"


@pytest.fixture(scope="module")
def prl(tmp_path_factory, test_images):
    """One storage root for the module, with busybox and ``other:1`` (another image ID)."""
    need(os.getuid() != 0, "containers must be run as an unprivileged user (bash .ci/run does)")
    root = Rootless(str(tmp_path_factory.mktemp("ps") / "root"))
    root("load", "-i", os.path.join(test_images, "busybox-docker.tar"))
    other = busybox_labelled(test_images, str(tmp_path_factory.mktemp("img") / "other.tar"), "other:1")
    root("load", "-i", other)
    yield root
    root("system", "reset", "--force", check=False)


@pytest.fixture(autouse=True)
def clean(prl):
    """Each test starts with no container and leaves none, nor a CLI still running."""
    yield
    for pid in pids_of(prl.root):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for cid in prl.out("ps", "-a", "-q").split():
        prl("rm", "-f", cid, check=False)


def busybox_labelled(test_images, dest, tag):
    """A docker-archive of busybox whose config has a label more: another image ID."""
    with tarfile.open(os.path.join(test_images, "busybox-docker.tar")) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))[0]
        image = json.load(tar.extractfile(manifest["Config"]))
        members = [(name, tar.extractfile(name).read()) for name in manifest["Layers"]]
    image["config"]["Labels"] = {"made.by": "test_ps"}
    blob = json.dumps(image).encode()
    name = hashlib.sha256(blob).hexdigest() + ".json"
    entry = {"Config": name, "RepoTags": [tag], "Layers": manifest["Layers"]}
    with tarfile.open(dest, "w") as out:
        for member, data in members + [(name, blob), ("manifest.json", json.dumps([entry]).encode())]:
            info = tarfile.TarInfo(member)
            info.size, info.mode = len(data), 0o644
            out.addfile(info, io.BytesIO(data))
    return dest


def pids_of(root):
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid():
            try:
                with open("/proc/%s/cmdline" % name, "rb") as f:
                    if root.encode() in f.read() and os.stat("/proc/" + name).st_uid == os.getuid():
                        found.append(int(name))
            except OSError:
                pass
    return found


def until(probe, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def start_sleeper(prl, name, *command):
    """A running container (``run`` in the background), once ps shows it running."""
    proc = prl.popen("run", "--name", name, "busybox", *(command or ("sleep", "1000")),
                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert until(lambda: name in prl.out("ps", "--format", "{{.Names}}").split()), proc.stderr
    return proc


def world(prl):
    """made (Created), ok (Exited 0), failed (Exited 3), up (running): oldest first."""
    prl("create", "--name", "made", "-l", "tier=db", "busybox", "true")
    prl("run", "--name", "ok", "-l", "tier=web", "-l", "env=prod", "busybox", "true")
    assert prl("run", "--name", "failed", "-l", "tier=web", "busybox", "sh", "-c", "exit 3",
               check=False).returncode == 3
    return start_sleeper(prl, "up")


def table(text):
    """Rows of a ps table, cells split where Docker's tabwriter put 3+ spaces (or padding)."""
    return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines()]


def names(prl, *args):
    return prl.out("ps", *args, "--format", "{{.Names}}").split()


def record_path(prl, cid):
    return os.path.join(prl.root, "containers", cid, "container.json")


# -- columns and statuses -----------------------------------------------------------------------

def test_columns_statuses_and_order(prl):
    world(prl)
    listing = prl.out("ps", "-a")
    header, *rows = listing.splitlines()
    assert re.match(r"CONTAINER ID   IMAGE +COMMAND +CREATED +STATUS +PORTS +NAMES$", header), header
    cells = {r[-1]: r for r in table("\n".join(rows))}
    assert [r[-1] for r in table("\n".join(rows))] == ["up", "failed", "ok", "made"]  # newest first
    up, failed, ok, made = cells["up"], cells["failed"], cells["ok"], cells["made"]
    assert re.fullmatch(r"[0-9a-f]{12}", up[0]) and up[1] == "busybox" and up[2] == '"sleep 1000"'
    assert re.fullmatch(r"(Less than a second|\d+ seconds?) ago", up[3])
    assert re.fullmatch(r"Up (Less than a second|\d+ seconds?)", up[4])
    assert failed[2] == "\"sh -c 'exit 3'\"" and re.fullmatch(r"Exited \(3\) .* ago", failed[4])
    assert ok[2] == '"true"' and re.fullmatch(r"Exited \(0\) .* ago", ok[4])
    assert made[4] == "Created"
    # PORTS is empty (until networking lands): padding only, then NAMES.
    assert rows[0][header.index("PORTS"):header.index("NAMES")].strip() == ""
    assert rows[0][header.index("NAMES"):] == "up"
    # Without -a: the running one only (its CREATED and STATUS may have ticked meanwhile).
    assert [(r[0], r[-1]) for r in table(prl.out("ps"))[1:]] == [(up[0], "up")]


def test_no_trunc_ids_commands_and_image_references(prl):
    long = "echo 0123456789 abcdefghij klmnopqrstuv"
    prl("run", "--name", "long", "docker.io/library/busybox:latest", "sh", "-c", long)
    [row] = table(prl.out("ps", "-a"))[1:]
    assert row[1] == "busybox:latest" and row[2] == "\"sh -c 'echo 0123456…\""
    [row] = table(prl.out("ps", "-a", "--no-trunc"))[1:]
    assert re.fullmatch(r"[0-9a-f]{64}", row[0])
    assert row[1] == "docker.io/library/busybox:latest" and row[2] == "\"sh -c '%s'\"" % long


def test_image_shows_the_id_once_the_tag_moved_on(prl, test_images):
    prl("create", "--name", "old", "busybox", "true")
    prl("create", "--name", "by-id", BUSYBOX_ID[7:19], "true")
    prl("tag", "other:1", "busybox:latest")  # busybox now names another image
    try:
        shown = prl.out("ps", "-a", "--format", "{{.Names}} {{.Image}}")
        assert dict(line.split() for line in shown.splitlines()) == {"old": BUSYBOX_ID[7:19], "by-id": BUSYBOX_ID[7:19]}
        assert prl.out("ps", "-a", "--no-trunc", "-f", "name=old", "--format", "{{.Image}}") == BUSYBOX_ID + "\n"
        # ancestor= resolves in the store: busybox is the other image now; the old ID still names them.
        assert names(prl, "-a", "-f", "ancestor=busybox") == []
        assert names(prl, "-a", "-f", "ancestor=" + BUSYBOX_ID[7:15]) == ["by-id", "old"]
    finally:
        prl("load", "-i", os.path.join(test_images, "busybox-docker.tar"))  # busybox back where it was
    assert prl.out("ps", "-a", "-f", "name=old", "--format", "{{.Image}}") == "busybox\n"


def test_states_written_by_the_lifecycle_work(prl):
    # paused and dead cannot be reached by today's runtime: the records are edited as
    # the lifecycle work will write them, and ps presents and filters them as Docker does.
    for name, status in (("frozen", "paused"), ("broken", "dead")):
        cid = prl.out("create", "--name", name, "busybox", "true").strip()
        with open(record_path(prl, cid)) as f:
            record = json.load(f)
        record.update(status=status, started=time.time() - 150, exit_code=0)
        if status == "paused":  # an active record names a live owner (this test), else ps settles it
            with open("/proc/self/stat", "rb") as f:
                start = int(f.read().rsplit(b")", 1)[1].split()[19])
            record["monitor"] = {"pid": os.getpid(), "start": start}
        with open(record_path(prl, cid), "w") as f:
            json.dump(record, f)
    statuses = dict(line.split(" ", 1) for line in prl.out("ps", "-a", "--format", "{{.Names}} {{.Status}}").splitlines())
    assert statuses == {"broken": "Dead", "frozen": "Up 2 minutes (Paused)"}
    assert names(prl) == ["frozen"]  # a paused container counts as running
    assert names(prl, "--filter", "status=dead") == ["broken"]
    assert names(prl, "--filter", "status=paused", "--filter", "status=dead") == ["broken", "frozen"]
    assert prl.out("ps", "-a", "--format", "{{.State}}").split() == ["dead", "paused"]


# -- filters --------------------------------------------------------------------------------------

def test_every_filter(prl):
    world(prl)
    ids = dict(line.split() for line in prl.out("ps", "-a", "--no-trunc", "--format", "{{.Names}} {{.ID}}").splitlines())
    assert names(prl, "-a", "-f", "id=" + ids["ok"][:8]) == ["ok"]
    assert names(prl, "-a", "-f", "id=" + ids["ok"][:8], "-f", "id=" + ids["made"]) == ["ok", "made"]
    assert names(prl, "-a", "-f", "name=a") == ["failed", "made"]          # a regular expression, anywhere
    assert names(prl, "-a", "-f", "name=^/?ok$") == ["ok"]
    assert names(prl, "-a", "-f", "label=tier") == ["failed", "ok", "made"]
    assert names(prl, "-a", "-f", "label=tier=web") == ["failed", "ok"]
    assert names(prl, "-a", "-f", "label=tier=web", "-f", "label=env=prod") == ["ok"]
    assert names(prl, "-a", "-f", "exited=3") == ["failed"]
    assert names(prl, "-a", "-f", "exited=0", "-f", "exited=3") == ["failed", "ok"]
    assert names(prl, "-f", "status=exited") == ["failed", "ok"]            # status= implies -a
    assert names(prl, "-f", "status=running") == ["up"]
    assert names(prl, "-f", "status=created", "-f", "label=tier=db") == ["made"]
    assert names(prl, "-a", "-f", "ancestor=busybox") == ["up", "failed", "ok", "made"]
    assert names(prl, "-a", "-f", "ancestor=busybox:latest", "-f", "ancestor=other:1") == ["up", "failed", "ok", "made"]
    assert names(prl, "-a", "-f", "ancestor=" + BUSYBOX_ID[7:19]) == ["up", "failed", "ok", "made"]
    assert names(prl, "-a", "-f", "ancestor=other:1") == []
    assert names(prl, "-a", "-f", "before=failed") == ["ok", "made"]
    assert names(prl, "-a", "-f", "since=ok") == ["up", "failed"]
    assert names(prl, "-a", "-f", "since=" + ids["made"][:10], "-f", "before=up") == ["failed", "ok"]
    assert names(prl, "-f", "before=failed") == []                            # still only running ones


@pytest.mark.parametrize("args, message", [
    (["-f", "status"], 'invalid argument "status" for "-f, --filter" flag: bad format of filter (expected name=value)'),
    (["-f", "status=up"], "invalid filter 'status=up': invalid value for state (up): must be one of created, "
                          "running, paused, restarting, removing, exited, dead"),
    (["-f", "exited=x"], "invalid filter 'exited=x': strconv.Atoi: parsing \"x\": invalid syntax"),
    (["-f", "colour=red"], "invalid filter 'colour'"),
    (["-f", "before=nobody"], "No such container: nobody"),
    (["-f", "network=bridge"], "the 'network' filter is not supported yet: rootless has no networks yet"),
    (["-f", "publish=8080:80"], "filter for 'publish' should not contain ':': 8080:80"),
    (["-f", "expose=http"], "error while looking up for expose http"),
    (["-f", "volume=/data"], "not supported yet"),
    (["-f", "health=healthy"], "not supported yet"),
    (["-f", "isolation=default"], "not supported yet"),
    (["-f", "is-task=false"], "not supported yet"),
    (["--format", "{{.Nope}}"], 'template: :1:2: executing "" at <.Nope>: can\'t evaluate field Nope'),
])
def test_filter_and_format_errors(prl, args, message):
    proc = prl("ps", *args, check=False)
    err = proc.stderr.decode()
    assert proc.returncode == 125 and proc.stdout == b""
    assert err.startswith("rootless: error: ") and message in err and len(err.splitlines()) == 1, err


# -- -l, -n, -q, -s -------------------------------------------------------------------------------

def test_latest_last_and_quiet(prl):
    world(prl)
    ids = prl.out("ps", "-a", "-q").split()
    assert len(ids) == 4 and all(re.fullmatch(r"[0-9a-f]{12}", i) for i in ids)
    assert prl.out("ps", "-q") == ids[0] + "\n"
    assert names(prl, "-l") == ["up"]
    assert names(prl, "-n", "2") == ["up", "failed"]            # -n includes every state
    assert names(prl, "-n", "3", "-f", "status=exited") == ["failed", "ok"]
    assert names(prl, "-l", "-n", "3") == ["up", "failed", "ok"]  # -n wins over -l
    full = prl.out("ps", "-a", "-q", "--no-trunc").split()
    assert [f[:12] for f in full] == ids and all(len(f) == 64 for f in full)
    proc = prl("ps", "-a", "-q", "--format", "{{.Names}}")
    assert proc.stdout.decode().split() == ids
    assert proc.stderr == b"WARNING: Ignoring custom format, because both --format and --quiet are set.\n"


def test_size_of_the_writable_layer(prl):
    prl("run", "--name", "wrote", "--storage-driver", "overlay", "busybox", "sh", "-c",
        "head -c 12345 /dev/zero > /written")
    prl("run", "--name", "copied", "--storage-driver", "copy", "busybox", "true")
    image = int(prl.out("image", "inspect", "--format", "{{.Size}}", "busybox"))
    header, *rows = prl.out("ps", "-a", "-s").splitlines()
    assert header.endswith("   SIZE")
    sizes = {r[-2]: r[-1] for r in table("\n".join(rows))}
    assert sizes["wrote"] == "12.3kB (virtual %s)" % human_size(12345 + image)
    copied = re.fullmatch(r"([\d.]+)MB \(virtual ([\d.]+)MB\)", sizes["copied"])  # the copy holds the image
    assert copied and float(copied.group(1)) > 1 and float(copied.group(2)) > float(copied.group(1))
    assert prl.out("ps", "-a", "--format", "{{.Names}} {{.Size}}", "-f", "name=wrote") == \
        "wrote 12.3kB (virtual %s)\n" % human_size(12345 + image)   # .Size in a template measures too
    assert json.loads(prl.out("ps", "-a", "-f", "name=wrote", "--format", "json"))["Size"] == "0B"


# -- --format -------------------------------------------------------------------------------------

def test_formats(prl):
    prl("run", "--name", "labelled", "-l", "team=hpc", "-l", "bare", "busybox", "true")
    row = json.loads(prl.out("ps", "-a", "--format", "json"))
    assert sorted(row) == ["Command", "CreatedAt", "ID", "Image", "Labels", "LocalVolumes", "Mounts", "Names",
                           "Networks", "Platform", "Ports", "RunningFor", "Size", "State", "Status"]
    assert (row["Names"], row["Labels"], row["State"], row["Command"]) == ("labelled", "bare=,team=hpc", "exited", '"true"')
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} \S+", row["CreatedAt"])
    out = prl.out("ps", "-a", "--format", '{{.Names}} {{.Label "team"}} {{json .Labels}} {{.Ports}}|{{.Mounts}}|')
    assert out == 'labelled hpc "bare=,team=hpc" ||\n'
    out = prl.out("ps", "-a", "--format", "table {{.Names}}\\t{{.Label \"team\"}}\\t{{.State}}")
    assert out.splitlines() == ["NAMES      team      STATE", "labelled   hpc       exited"]
    # Two listings a moment apart: their CREATED and STATUS ("Less than a second ago", "1
    # second ago") may cross a second between them; the same second twice settles it.
    pairs = [(prl.out("ps", "-a", "--format", "table"), prl.out("ps", "-a")) for _ in range(3)]
    assert any(table == plain for table, plain in pairs), pairs
    assert prl.out("ps", "--format", "table {{.ID}}") == "CONTAINER ID\n"  # the header even for none
    assert prl.out("ps", "--format", "{{.ID}}") == ""


# -- rename ---------------------------------------------------------------------------------------

def test_rename_and_its_errors(prl):
    cid = prl.out("create", "--name", "first", "busybox", "true").strip()
    prl("create", "--name", "taken", "busybox", "true")
    assert prl.out("rename", "first", "second") == ""
    assert names(prl, "-a", "-f", "id=" + cid) == ["second"]
    prl("container", "rename", cid[:12], "/third")
    assert names(prl, "-a", "-f", "id=" + cid) == ["third"]
    for args, message in (
            (("third", "third"), "Renaming a container with the same name as its current name"),
            (("third", "taken"), 'Error when allocating new name: Conflict. The container name "/taken" is '
                                 'already in use by container "'),
            (("third", "no way"), "Error when allocating new name: Invalid container name (/no way), only "
                                  "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"),
            (("nobody", "x2"), "No such container: nobody"),
            (("third", " "), "Neither old nor new names may be empty")):
        proc = prl("rename", *args, check=False)
        assert proc.returncode == 125 and message in proc.stderr.decode(), (args, proc.stderr)
    assert sorted(names(prl, "-a")) == ["taken", "third"]
    # The old name is free again.
    prl("create", "--name", "first", "busybox", "true")


def test_rename_a_running_container_sticks_after_it_ends(prl):
    proc = start_sleeper(prl, "runner", "sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done")
    prl("rename", "runner", "renamed")
    assert names(prl) == ["renamed"]
    proc.send_signal(signal.SIGTERM)  # forwarded to the container, which ends: run saves its record
    proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert prl.out("ps", "-a", "--format", "{{.Names}} {{.State}}") == "renamed exited\n"


# -- container prune ------------------------------------------------------------------------------

def test_prune_asks_and_no_answer_is_no(prl):
    world(prl)
    for answer in (b"", b"n\n", b"yes\n"):  # only y is yes, as Docker's prompt
        proc = prl("container", "prune", input=answer)
        assert proc.stdout == b"WARNING! This will remove all stopped containers.\n" \
                              b"Are you sure you want to continue? [y/N] "
    assert len(names(prl, "-a")) == 4
    full = dict(line.split() for line in prl.out("ps", "-a", "--no-trunc", "--format", "{{.Names}} {{.ID}}").splitlines())
    proc = prl("container", "prune", input=b"y\n")
    text = proc.stdout.decode()
    prompt, _, rest = text.partition("[y/N] ")
    assert rest.startswith("Deleted Containers:\n")
    deleted, _, total = rest[len("Deleted Containers:\n"):].partition("\n\n")
    assert sorted(deleted.split("\n")) == sorted([full["failed"], full["ok"], full["made"]])
    assert re.fullmatch(r"Total reclaimed space: \d[\d.]*k?B\n", total)
    assert names(prl, "-a") == ["up"]  # the running one stays
    assert prl.out("container", "prune", "-f") == "Total reclaimed space: 0B\n"


def test_prune_filters_and_reclaimed_space(prl):
    prl("run", "--name", "big", "--storage-driver", "overlay", "-l", "keep=no", "busybox", "sh", "-c",
        "head -c 1234567 /dev/zero > /f")
    prl("run", "--name", "kept", "-l", "keep=yes", "busybox", "true")
    assert prl.out("container", "prune", "-f", "--filter", "until=1h") == "Total reclaimed space: 0B\n"
    out = prl.out("container", "prune", "-f", "--filter", "label=keep=no")
    assert out.endswith("\n\nTotal reclaimed space: 1.235MB\n")  # go-units' HumanSize: 4 digits
    assert names(prl, "-a") == ["kept"]
    assert prl.out("container", "prune", "-f", "--filter", "label!=keep=yes") == "Total reclaimed space: 0B\n"
    out = prl.out("container", "prune", "-f", "--filter", "until=%d" % (time.time() + 60))
    assert out.startswith("Deleted Containers:\n") and names(prl, "-a") == []
    for args, message in ((["--filter", "status=exited"], "invalid filter 'status'"),
                          (["--filter", "until=1h", "--filter", "until=2h"], "more than one until filter specified"),
                          (["--filter", "until=soon"], 'failed to parse value as time or duration: "soon"')):
        proc = prl("container", "prune", "-f", *args, check=False)
        assert proc.returncode == 125 and message in proc.stderr.decode()
