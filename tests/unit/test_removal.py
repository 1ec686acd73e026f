"""rmi's policy (rootless.image.removal): Docker's conflicts, as a pure function of the
index and of what containers use."""

import pytest

from rootless.errors import Conflict
from rootless.image.removal import Usage, remove, single_reference
from rootless.image.store import ImageRecord, find_image

IMG = "sha256:" + "ab" * 32
LAYER = "sha256:" + "cd" * 32
DIGEST = "sha256:" + "ef" * 32
RUNNING = {"id": "1" * 64, "status": "running", "image_id": IMG, "layers": [LAYER]}
STOPPED = {"id": "2" * 64, "status": "exited", "image_id": IMG, "layers": [LAYER]}


def index(tags=("docker.io/library/busybox:latest",), digests=()):
    return {IMG: ImageRecord(IMG, "sha256:" + "00" * 32, [LAYER], list(tags), list(digests))}


def rmi(images, name, force=False, containers=()):
    return remove(images, find_image(images, name), name, force, Usage(containers))


def test_usage_knows_running_and_stopped_users_and_their_layers():
    paused = dict(RUNNING, id="3" * 64, status="paused")
    usage = Usage([STOPPED, paused, {"id": "4" * 64, "status": "created", "image_id": None, "layers": []}])
    assert IMG in usage and usage.images() == {IMG}
    assert usage.container(IMG) == STOPPED["id"]
    assert usage.container(IMG, running=True) == paused["id"]
    assert usage.container(IMG, running=False) == STOPPED["id"]
    assert usage.layers == {LAYER}
    assert Usage().container(IMG) is None


@pytest.mark.parametrize("user", [RUNNING, STOPPED])
def test_the_last_name_of_an_image_in_use_is_refused_without_force(user):
    images = index()
    with pytest.raises(Conflict) as e:
        rmi(images, "busybox", containers=[user])
    assert str(e.value) == ('conflict: unable to remove repository reference "busybox" (must force) - '
                            "container %s is using its referenced image %s" % (user["id"][:12], "ab" * 6))
    assert images[IMG].repo_tags == ["docker.io/library/busybox:latest"]


@pytest.mark.parametrize("user", [RUNNING, STOPPED])
def test_force_untags_and_keeps_the_image_for_its_containers(user):
    images = index(digests=["docker.io/library/busybox@" + DIGEST])
    assert rmi(images, "busybox", force=True, containers=[user]) == [
        "Untagged: busybox:latest", "Untagged: busybox@" + DIGEST]
    assert IMG in images and images[IMG].repo_tags == [] and images[IMG].repo_digests == []


def test_one_name_of_several_is_untagged_even_with_force():
    images = index(tags=["docker.io/library/busybox:latest", "docker.io/library/busybox:1"])
    assert rmi(images, "busybox:1", force=True) == ["Untagged: busybox:1"]
    assert images[IMG].repo_tags == ["docker.io/library/busybox:latest"]


def test_an_unused_image_goes_with_its_last_name():
    images = index()
    assert rmi(images, "busybox") == ["Untagged: busybox:latest", "Deleted: " + IMG]
    assert images == {}


def test_a_tag_in_another_repository_keeps_the_digest_of_this_one():
    images = index(tags=["docker.io/library/busybox:latest", "docker.io/me/bb:1"],
                   digests=["docker.io/library/busybox@" + DIGEST])
    assert rmi(images, "me/bb:1") == ["Untagged: me/bb:1"]
    assert images[IMG].repo_digests == ["docker.io/library/busybox@" + DIGEST]


@pytest.mark.parametrize("force", [False, True])
def test_an_id_used_by_a_running_container_cannot_be_forced(force):
    images = index()
    with pytest.raises(Conflict) as e:
        rmi(images, IMG[7:19], force=force, containers=[STOPPED, RUNNING])
    assert str(e.value) == ("conflict: unable to delete %s (cannot be forced) - image is being used by "
                            "running container %s" % ("ab" * 6, RUNNING["id"][:12]))
    assert IMG in images


def test_an_id_used_by_a_stopped_container_must_be_forced_and_then_goes():
    images = index()
    with pytest.raises(Conflict) as e:
        rmi(images, IMG, containers=[STOPPED])
    assert str(e.value) == ("conflict: unable to delete %s (must be forced) - image is being used by "
                            "stopped container %s" % ("ab" * 6, STOPPED["id"][:12]))
    assert rmi(images, IMG, force=True, containers=[STOPPED]) == ["Untagged: busybox:latest", "Deleted: " + IMG]
    assert images == {}


def test_an_id_with_names_in_several_repositories_must_be_forced():
    images = index(tags=["docker.io/library/busybox:latest", "docker.io/me/bb:1"])
    with pytest.raises(Conflict) as e:
        rmi(images, IMG[7:19])
    assert str(e.value) == ("conflict: unable to delete %s (must be forced) - image is referenced in "
                            "multiple repositories" % ("ab" * 6))
    assert rmi(images, IMG[7:19], force=True) == ["Untagged: busybox:latest", "Untagged: me/bb:1", "Deleted: " + IMG]


def test_an_unnamed_image_in_use_by_id():
    images = index(tags=())
    with pytest.raises(Conflict):
        rmi(images, IMG[7:19], containers=[STOPPED])
    assert rmi(images, IMG[7:19]) == ["Deleted: " + IMG]


def test_single_reference_is_dockers():
    def rec(tags, digests=()):
        return ImageRecord(IMG, "", [], list(tags), list(digests))
    bb, me = "docker.io/library/busybox", "docker.io/me/bb"
    assert not single_reference(rec([]))
    assert single_reference(rec([bb + ":1"]))
    assert single_reference(rec([bb + ":1"], [bb + "@" + DIGEST]))
    assert not single_reference(rec([bb + ":1", bb + ":2"]))
    assert not single_reference(rec([bb + ":1"], [me + "@" + DIGEST]))
    assert single_reference(rec([], [bb + "@" + DIGEST, bb + "@sha256:" + "11" * 32]))
