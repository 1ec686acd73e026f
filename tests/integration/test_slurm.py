"""Containers in Slurm jobs, through the real Slurm: the one-node cluster that .ci/run starts
(scripts/slurm-cluster) in the tests' own network namespace. srun ranks starting the same
image at the same moment, a batch script with no XDG_RUNTIME_DIR, two jobs at once, the
job's variables handed in with ``-e 'SLURM_*'``. As the unprivileged user, as every job is.
"""

import os
import re
import subprocess
import time

import pytest

from conftest import REPO, Rootless, have, loaded_root, need


@pytest.fixture(scope="module")
def cluster():
    need(have("srun") and have("sbatch") and have("sinfo"),
         "Slurm is not installed (bash .ci/run installs slurm-wlm and munge)")
    try:
        up = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        up = None
    need(up is not None and up.returncode == 0 and "idle" in up.stdout.split(),
         "no idle Slurm node: start one as root in this network namespace (scripts/slurm-cluster start)")


@pytest.fixture(scope="module")
def srl(tmp_path_factory, test_images):
    yield from loaded_root(tmp_path_factory, test_images, "slurm")


def job_env():
    """The submitter's environment, as a login node's shell has it here: no XDG_RUNTIME_DIR."""
    env = dict(os.environ)
    env.pop("XDG_RUNTIME_DIR", None)
    return env


def test_srun_ranks_start_the_same_image_at_the_same_moment(cluster, srl):
    proc = subprocess.run(
        ["srun", "-n2", "--time=2"] + srl.base +
        ["run", "--rm", "-e", "SLURM_PROCID", "busybox", "sh", "-c", "echo rank=$SLURM_PROCID host=$(hostname)"],
        capture_output=True, text=True, timeout=120, env=job_env())
    assert proc.returncode == 0, proc.stderr
    lines = sorted(proc.stdout.split("\n")[:-1])
    assert [line.split()[0] for line in lines] == ["rank=0", "rank=1"], proc.stdout
    hosts = {line.split()[1] for line in lines}
    assert len(hosts) == 2 and all(len(h) == len("host=") + 12 for h in hosts), hosts  # two containers
    assert proc.stderr == ""
    assert srl("ps", "-aq").stdout == b""  # both --rm containers gone


def write_job(path, body):
    path.write_text("#!/bin/sh\nset -eu\n" + body)
    path.chmod(0o755)
    return str(path)


def test_a_batch_job_runs_containers_with_its_variables(cluster, srl, tmp_path):
    rootless = " ".join(srl.base)
    script = write_job(tmp_path / "job.sh", (
        "echo host-xdg=${XDG_RUNTIME_DIR:-unset}\n"
        "%s run --rm -q -e 'SLURM_*' busybox sh -c 'echo job=$SLURM_JOB_ID tasks=$SLURM_NTASKS'\n"
        "%s run --rm busybox sh -c 'echo no-slurm=${SLURM_JOB_ID:-none}'\n"
        "cid=$(%s run -d busybox sleep 100)\n"
        "%s exec $cid echo exec-in-job\n"
        "%s rm -f $cid >/dev/null\n" % (rootless, rootless, rootless, rootless, rootless)))
    out = tmp_path / "out.txt"
    proc = subprocess.run(["sbatch", "--wait", "--parsable", "-n1", "--time=2", "-o", str(out), script],
                          capture_output=True, text=True, timeout=180, env=job_env())
    job = proc.stdout.strip().split(";")[0]
    assert proc.returncode == 0, (proc.stderr, out.read_text() if out.exists() else "")
    assert out.read_text().split("\n") == [
        "host-xdg=unset", "job=%s tasks=1" % job, "no-slurm=none", "exec-in-job", ""]
    assert srl("ps", "-aq").stdout == b""


def test_two_jobs_on_one_node_at_once(cluster, srl, tmp_path):
    """Each job waits until the other has started, then both run containers on one store."""
    rootless = " ".join(srl.base)
    jobs = []
    for name, other in (("a", "b"), ("b", "a")):
        script = write_job(tmp_path / (name + ".sh"), (
            "touch %(d)s/started-%(me)s\n"
            "for i in $(seq 300); do [ -e %(d)s/started-%(other)s ] && break; sleep 0.1; done\n"
            "[ -e %(d)s/started-%(other)s ]\n"
            "for i in 1 2 3; do %(rl)s run --rm busybox sh -c \"echo %(me)s\\$0\" $i; done\n"
            % {"d": tmp_path, "me": name, "other": other, "rl": rootless}))
        jobs.append(subprocess.Popen(["sbatch", "--wait", "-n1", "--time=2", "-o", str(tmp_path / (name + ".out")),
                                      script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=job_env()))
    started = time.monotonic()
    for proc in jobs:
        proc.wait(timeout=180)
    assert [p.returncode for p in jobs] == [0, 0], [p.stderr.read() for p in jobs]
    assert (tmp_path / "a.out").read_text() == "a1\na2\na3\n"
    assert (tmp_path / "b.out").read_text() == "b1\nb2\nb3\n"
    assert time.monotonic() - started < 170
    assert srl("ps", "-aq").stdout == b""


def test_the_readmes_batch_script_works_as_it_says(cluster, srl, tmp_path):
    with open(os.path.join(REPO, "README.md")) as f:
        section = f.read().split("## On a Slurm cluster", 1)[1].split("\n## ", 1)[0]
    script = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    assert script.startswith("#!/bin/sh\n#SBATCH -n 2\n") and "python3 rootless.pyz run" in script
    job = tmp_path / "job.sh"
    job.write_text(script.replace("python3 rootless.pyz", " ".join(srl.base)))
    out = tmp_path / "slurm.out"
    proc = subprocess.run(["sbatch", "--wait", "-o", str(out), str(job)], capture_output=True, text=True,
                          timeout=180, env=job_env(), cwd=str(tmp_path))
    assert proc.returncode == 0, (proc.stderr, out.read_text() if out.exists() else "")
    assert sorted(out.read_text().splitlines()) == ["rank 0 of 2", "rank 1 of 2"]


def test_two_jobs_use_a_shared_store_while_a_third_adds_to_it(cluster, test_images, tmp_path):
    """The cluster's shared image store (here prepared by this user, opened to others) read
    by two jobs, each with its own node-local root, while a third job loads an image into
    it; the readers then run the new image from it too."""
    store = tmp_path / "store"
    store.mkdir()
    store.chmod(0o755)
    prep = Rootless(str(store))
    prep("load", "-i", os.path.join(test_images, "busybox-docker.tar"))
    base = prep.base[:-2]  # the command without --root
    roles = {
        "load": "%(rl)s --root %(store)s load -q -i %(archive)s\ntouch %(d)s/loaded\n",
        "r1": "%(reader)s", "r2": "%(reader)s"}
    reader = (  # containers until the load is done (and 3 at least), counting those begun during it
        "n=0 during=0\n"
        "while [ ! -e %(d)s/loaded ] || [ $n -lt 3 ]; do\n"
        "  [ -e %(d)s/loaded ] || during=$((during + 1))\n"
        "  %(rl)s --root %(d)s/own-%(me)s --image-store %(store)s run --rm busybox true\n"
        "  n=$((n + 1))\n"
        "done\n"
        "echo runs-while-loading=$(( during > 0 ))\n"
        "%(rl)s --root %(d)s/own-%(me)s --image-store %(store)s run --rm debian cat /etc/debian_version"
        " >/dev/null && echo new-image-ok\n")
    jobs = {}
    for me, body in roles.items():
        others = [o for o in roles if o != me]
        wait = "".join("for i in $(seq 300); do [ -e %(d)s/started-{0} ] && break; sleep 0.1; done\n"
                       "[ -e %(d)s/started-{0} ]\n".format(o) for o in others)
        text = ("touch %(d)s/started-%(me)s\n" + wait + body) % {
            "d": tmp_path, "me": me, "rl": " ".join(base), "store": store, "reader": reader,
            "archive": os.path.join(test_images, "debian-docker.tar")}
        text = text % {"d": tmp_path, "me": me, "rl": " ".join(base), "store": store}
        script = write_job(tmp_path / (me + ".sh"), text)
        jobs[me] = subprocess.Popen(["sbatch", "--wait", "-n1", "--time=5", "-o", str(tmp_path / (me + ".out")),
                                     script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=job_env())
    for proc in jobs.values():
        proc.wait(timeout=300)
    outs = {me: (tmp_path / (me + ".out")).read_text() for me in jobs}
    assert [p.returncode for p in jobs.values()] == [0, 0, 0], outs
    assert outs["r1"] == outs["r2"] == "runs-while-loading=1\nnew-image-ok\n", outs
    assert sorted(prep.out("images", "--format", "{{.Repository}}").split()) == ["busybox", "debian"]
    for me in ("r1", "r2"):
        assert os.listdir(str(tmp_path / ("own-" + me) / "layers")) == []  # used in place, not copied
    prep("system", "reset", "--force", check=False)


def test_mpi_ranks_in_containers_in_a_batch_job(cluster, test_images, tmp_path):
    """The hybrid model in a job: the batch script holds the node's namespace set in a
    container, and the host's launcher starts one container per rank in it through a
    small wrapper (docs/slurm.md's): Open MPI's mpirun (its slots from the allocation),
    hello world and the ping-pong; then srun's own PMIx (``--mpi=pmix``), where Open MPI
    knows it was started by srun from the step's SLURM_* variables."""
    need(have("mpirun"), "Open MPI's mpirun is not installed (bash .ci/run installs openmpi-bin)")
    need(os.path.exists(os.path.join(test_images, "mpi-docker.tar")), "no mpi test image (scripts/build-test-images)")
    root = Rootless(str(tmp_path / "root"))
    root("load", "-i", os.path.join(test_images, "mpi-docker.tar"))
    rl = " ".join(root.base)
    rank = write_job(tmp_path / "rank.sh", (
        "exec %s run --rm --pid container:$RANKS --network host --ipc host -v \"$TMPDIR:$TMPDIR\" \\\n"
        "  ${PMIX_SERVER_TMPDIR:+-v \"$PMIX_SERVER_TMPDIR:$PMIX_SERVER_TMPDIR\"} \\\n"
        "  -e 'OMPI_*' -e 'PMIX_*' -e 'SLURM_*' mpi \"$@\"\n" % rl))
    script = write_job(tmp_path / "mpi.sh", (
        "export RANKS=ranks-$SLURM_JOB_ID\n"
        "%(rl)s run -d -q --name $RANKS --userns keep-id --network host mpi sleep infinity >/dev/null\n"
        "mpirun -n 2 %(rank)s mpi-hello | sort\n"
        "mpirun -n 2 %(rank)s mpi-pingpong 100 | cut -d' ' -f1\n"
        "srun --mpi=pmix -n 2 %(rank)s mpi-hello | sort\n"
        "%(rl)s rm -f $RANKS >/dev/null\n" % {"rl": rl, "rank": rank}))
    out = tmp_path / "mpi.out"
    proc = subprocess.run(["sbatch", "--wait", "-n2", "--time=5", "-o", str(out), script], capture_output=True,
                          text=True, timeout=300, env=dict(job_env(), TMPDIR="/tmp"))
    text = out.read_text() if out.exists() else ""
    assert proc.returncode == 0, (proc.stderr, text)
    hello = ["hello from rank 0 of 2, 2 on this node", "hello from rank 1 of 2, 2 on this node"]
    assert text.split("\n") == hello + ["8", "1024", "65536", "1048576", "4194304"] + hello + [""], text
    assert root("ps", "-aq").stdout == b""
    root("system", "reset", "--force", check=False)


def test_the_mpi_batch_script_of_docs_slurm_works_as_it_says(cluster, test_images, tmp_path):
    need(have("mpirun"), "Open MPI's mpirun is not installed (bash .ci/run installs openmpi-bin)")
    need(os.path.exists(os.path.join(test_images, "mpi-docker.tar")), "no mpi test image (scripts/build-test-images)")
    with open(os.path.join(REPO, "docs", "slurm.md")) as f:
        section = f.read().split("## MPI ranks in containers", 1)[1].split("\n## ", 1)[0]
    script = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    root = Rootless(str(tmp_path / "root"))
    root("load", "-i", os.path.join(test_images, "mpi-docker.tar"))
    root("tag", "mpi", "lab/solver:2.1")
    job = tmp_path / "job.sh"
    job.write_text(script.replace("python3 rootless.pyz", " ".join(root.base))
                   .replace("solver input.dat", "mpi-hello"))
    out = tmp_path / "slurm.out"
    proc = subprocess.run(["sbatch", "--wait", "-o", str(out), str(job)], capture_output=True, text=True,
                          timeout=300, env=dict(job_env(), TMPDIR="/tmp"), cwd=str(tmp_path))
    assert proc.returncode == 0, (proc.stderr, out.read_text() if out.exists() else "")
    assert sorted(out.read_text().splitlines()) == ["hello from rank 0 of 2, 2 on this node",
                                                    "hello from rank 1 of 2, 2 on this node"]
    assert root("ps", "-aq").stdout == b""
    root("system", "reset", "--force", check=False)
