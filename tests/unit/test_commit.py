"""The pure halves of ``diff``, ``commit`` and ``top``: the comparison of a container's side
with its image's layers (on plain directories: fuse-overlayfs's file forms of whiteouts
need no device nodes), the layer tar, the config and ``--change`` instructions, and the
reading and layout of ``ps`` output."""

import io
import os
import tarfile

import pytest

from rootless.errors import UsageError
from rootless.image import commit
from rootless.runtime import changes, processes

T = 1700000000


def tree(base, spec):
    """Make files (str content) and directories (dict) under ``base``, all with mtime T."""
    os.makedirs(base, exist_ok=True)
    for name, value in spec.items():
        path = os.path.join(base, name)
        if isinstance(value, dict):
            tree(path, value)
        else:
            with open(path, "w") as f:
                f.write(value)
            os.utime(path, (T, T))
    os.utime(base, (T, T))


def test_copy_rootfs_compared_with_two_layers(tmp_path):
    lower, upper_layer, rootfs = (str(tmp_path / n) for n in ("l1", "l2", "rootfs"))
    tree(lower, {"bin": {"ls": "ls", "sh": "sh"}, "etc": {"group": "g", "passwd": "p"}, "gone": {"x": "1"}})
    tree(upper_layer, {"etc": {"extra": "e"}})
    layers = [(lower, {}), (upper_layer, {"whiteouts": ["gone"]})]
    tree(rootfs, {"bin": {"sh": "sh"}, "etc": {"group": "g", "passwd": "changed", "extra": "e"},
                  "new": {"f": "1"}, "proc": {}})
    # /proc is a mount point the runtime made (the image has none): not a change.
    found = changes.container_changes(rootfs, layers, upper=False)
    assert changes.lines(found) == ["C /bin", "D /bin/ls", "C /etc", "C /etc/passwd", "A /new", "A /new/f"]


def test_upper_dir_with_file_whiteouts_and_an_opaque_marker(tmp_path):
    lower, upper = str(tmp_path / "lower"), str(tmp_path / "upper")
    tree(lower, {"usr": {"bin": {"a": "a"}, "lib": {"b": "b"}}, "etc": {"hosts": "h"}})
    tree(upper, {"usr": {".wh..wh..opq": "", "new": "n"}, "etc": {".wh.hosts": ""}})
    found = changes.container_changes(upper, [(lower, {})], upper=True)
    assert changes.lines(found) == ["C /etc", "D /etc/hosts", "C /usr", "D /usr/bin", "D /usr/lib", "A /usr/new"]
    usr = [c for c in found if c.rel == "usr"][0]
    assert usr.opaque and all(c.covered for c in found if c.rel.startswith("usr/") and c.kind == "D")
    out = str(tmp_path / "layer.tar")
    changes.write_layer(upper, found, out)
    with tarfile.open(out) as tar:
        names = tar.getnames()
    assert names == ["etc", "etc/.wh.hosts", "usr", "usr/.wh..wh..opq", "usr/new"]


def test_an_entry_equal_to_the_image_is_no_change(tmp_path):
    lower, upper = str(tmp_path / "lower"), str(tmp_path / "upper")
    tree(lower, {"etc": {"owned": "x"}})
    tree(upper, {"etc": {"owned": "x"}})  # a copy-up that changed nothing (an owner applied)
    assert changes.container_changes(upper, [(lower, {})], upper=True) == []
    os.utime(os.path.join(upper, "etc", "owned"), (T + 1, T + 1))
    assert changes.lines(changes.container_changes(upper, [(lower, {})], upper=True)) == ["C /etc", "C /etc/owned"]


def test_image_view_honours_records_without_marks(tmp_path):
    l1, l2 = str(tmp_path / "l1"), str(tmp_path / "l2")
    tree(l1, {"a": {"x": "1", "y": "2"}, "b": "file"})
    tree(l2, {"a": {"z": "3"}})
    view = changes.ImageView([(l1, {}), (l2, {"opaque_dirs": ["a"], "whiteouts": ["b"]})])
    assert view.children("") == ["a"]
    assert view.children("a") == ["z"]
    assert view.lookup("a/x") is None and view.lookup("b") is None


def test_layer_tar_keeps_hardlinks_and_modes(tmp_path):
    top = str(tmp_path / "top")
    tree(top, {"d": {"f": "content"}})
    os.link(os.path.join(top, "d", "f"), os.path.join(top, "d", "g"))
    os.chmod(os.path.join(top, "d", "f"), 0o4755)
    found = [changes.Change("A", "d"), changes.Change("A", "d/f"), changes.Change("A", "d/g")]
    out = str(tmp_path / "t.tar")
    size = changes.write_layer(top, found, out)
    assert size == os.path.getsize(out)
    with tarfile.open(out) as tar:
        f, g = tar.getmember("d/f"), tar.getmember("d/g")
        assert f.isreg() and f.mode == 0o4755 and f.mtime == T
        assert g.islnk() and g.linkname == "d/f"
        assert tar.extractfile(f).read() == b"content"


# -- config -----------------------------------------------------------------------------------

def test_container_config_splits_the_command_back():
    image = {"Entrypoint": ["/entry"], "Cmd": ["default"], "Env": ["PATH=/bin"]}
    config = commit.container_config(image, ["/entry", "arg"], ["PATH=/bin", "HOSTNAME=abc", "HOME=/root", "X=1"],
                                     "/", {"k": "v"})
    assert config["Entrypoint"] == ["/entry"] and config["Cmd"] == ["arg"]
    assert config["Env"] == ["PATH=/bin", "X=1"]
    assert config["Labels"] == {"k": "v"}
    other = commit.container_config(image, ["/other", "x"], [], "/", {})
    assert other["Entrypoint"] == ["/other"] and other["Cmd"] == ["x"]


def test_changes_in_json_and_shell_forms():
    config = commit.apply_changes({"Cmd": ["sh"], "Env": ["A=0", "B=2"], "WorkingDir": "/srv"}, [
        'CMD ["echo","hi"]', "ENV A=1 C='two words'", "ENV D old form", "LABEL a=b", "EXPOSE 80 53/udp 8000-8001",
        'VOLUME ["/data"]', "VOLUME /v1 /v2", "WORKDIR app", "USER 1000:1000", "STOPSIGNAL SIGINT",
        "ONBUILD run echo x"])
    assert config["Cmd"] == ["echo", "hi"]
    assert config["Env"] == ["A=1", "B=2", "C=two words", "D=old form"]
    assert config["Labels"] == {"a": "b"}
    assert sorted(config["ExposedPorts"]) == ["53/udp", "80/tcp", "8000/tcp", "8001/tcp"]
    assert sorted(config["Volumes"]) == ["/data", "/v1", "/v2"]
    assert config["WorkingDir"] == "/srv/app"
    assert (config["User"], config["StopSignal"], config["OnBuild"]) == ("1000:1000", "SIGINT", ["RUN echo x"])
    shell = commit.apply_changes({"Cmd": ["old"]}, ["ENTRYPOINT exec server --port 1"])
    assert shell["Entrypoint"] == ["/bin/sh", "-c", "exec server --port 1"] and shell["Cmd"] is None


def test_changes_expand_variables_as_a_dockerfile():
    config = commit.apply_changes({"Env": ["PATH=/bin", "A=1"]}, [
        "ENV PATH=$PATH:/x B=\"a $A ${A}b\" C='$A' D=\\$A", "WORKDIR /w/$A", "LABEL l=$A"])
    assert config["Env"] == ["PATH=/bin:/x", "A=1", "B=a 1 1b", "C=$A", "D=$A"]
    assert config["WorkingDir"] == "/w/1" and config["Labels"] == {"l": "1"}
    with pytest.raises(UsageError, match="matching"):
        commit.apply_changes({}, ["ENV A='open"])


def test_healthcheck_changes():
    assert commit.apply_changes({}, ["HEALTHCHECK NONE"])["Healthcheck"] == {"Test": ["NONE"]}
    check = commit.apply_changes({}, ["HEALTHCHECK --interval=1m30s --retries=3 CMD curl -f http://x/ || exit 1"])
    assert check["Healthcheck"] == {"Interval": 90 * 10 ** 9, "Retries": 3,
                                    "Test": ["CMD-SHELL", "curl -f http://x/ || exit 1"]}
    assert commit.apply_changes({}, ['HEALTHCHECK CMD ["true"]'])["Healthcheck"] == {"Test": ["CMD", "true"]}


@pytest.mark.parametrize("change, message", [
    ("RUN echo x", "run is not a valid change command"),
    ("FROM busybox", "from is not a valid change command"),
    ("CMD", "CMD requires at least one argument"),
    ("ONBUILD ONBUILD RUN x", "ONBUILD isn't allowed as an ONBUILD trigger"),
    ("ENV A", "ENV must have two arguments"),
])
def test_changes_docker_refuses(change, message):
    with pytest.raises(UsageError) as e:
        commit.apply_changes({}, [change])
    assert str(e.value) == message


def test_image_config_adds_the_layer_and_history():
    base = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ["sha256:a"]},
            "history": [{"created": "then"}], "container_config": {}, "author": "old"}
    new = commit.image_config(base, {"Cmd": ["x"]}, "sha256:b", "now", "x", "me", "msg")
    assert new["rootfs"]["diff_ids"] == ["sha256:a", "sha256:b"]
    assert new["history"][-1] == {"created": "now", "created_by": "x", "author": "me", "comment": "msg"}
    assert (new["author"], new["comment"], new["created"]) == ("me", "msg", "now")
    assert "container_config" not in new
    empty = commit.image_config(base, {}, None, "now", "x", "", "")
    assert empty["rootfs"]["diff_ids"] == ["sha256:a"] and empty["history"][-1]["empty_layer"] is True
    assert "author" not in empty


# -- top --------------------------------------------------------------------------------------

PS = """UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 05:40 ?        00:00:01 /sbin/init
user        4242       1  0 06:00 ?        00:00:00 sleep 100 with words
user        4243    4242  0 06:00 ?        00:00:00 cat
"""


def test_ps_rows_of_the_container_only():
    titles, rows = processes.parse_ps(PS, [4242])
    assert titles == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert rows == [["user", "4242", "1", "0", "06:00", "?", "00:00:00", "sleep 100 with words"]]


def test_ps_thread_rows_follow_their_process():
    output = "PID TID CMD\n10 - a\n- 10 a\n- 11 a\n20 - b\n- 20 b\n"
    assert processes.parse_ps(output, [10])[1] == [["10", "-", "a"], ["-", "10", "a"], ["-", "11", "a"]]


def test_ps_without_pid_column_and_renamed_pid():
    with pytest.raises(Exception, match="Couldn't find PID field in ps output"):
        processes.parse_ps("USER CMD\nroot x\n", [1])
    with pytest.raises(UsageError, match='specifying "user=PID" is not allowed'):
        processes.check_ps_args("-o user=PID")
    processes.check_ps_args("-o pid=PID")


def test_table_is_dockers_tabwriter():
    text = processes.table(["PID", "CMD"], [["1", "sleep 5"], ["123456789012345678901", "x"]])
    assert text.splitlines() == ["PID" + " " * 21 + "CMD", "1" + " " * 23 + "sleep 5", "123456789012345678901   x"]


def test_own_ps_reads_this_process():
    titles, rows = processes.own_ps([os.getpid()])
    assert titles[1] == "PID" and rows[0][1] == str(os.getpid())
    assert io.StringIO(processes.table(titles, rows)).read().startswith("UID")


def test_layer_never_reads_through_a_directory_swapped_for_a_link(tmp_path):
    """A running container may replace a directory by a symlink to the host's files after
    the walk saw it: the tar refuses to go through it instead of archiving the host's."""
    top, outside = str(tmp_path / "top"), str(tmp_path / "outside")
    tree(top, {"d": {"secret": "mine"}})
    tree(outside, {"secret": "host"})
    found = changes.container_changes(top, [(str(tmp_path / "empty"), {})], upper=True)
    assert changes.lines(found) == ["A /d", "A /d/secret"]
    os.rename(os.path.join(top, "d"), str(tmp_path / "moved"))
    os.symlink(outside, os.path.join(top, "d"))
    with pytest.raises(OSError):
        changes.write_layer(top, found, str(tmp_path / "t.tar"))
