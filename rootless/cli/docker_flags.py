"""Docker's command-line flags, per command (generated: do not edit).

Written by scripts/docker-flags from the help of the Docker 28.2.2 client. rootless
reads it only after argparse has refused a command line (cli/usage.py), to tell a Docker
flag it lacks ("--volume is not supported yet") from a typo. A flag rootless has is
never reported from here: what is unsupported is this table minus the verb's parser.
"""

DOCKER_VERSION = '28.2.2'

# Command path ("" for the global options) -> its flags: "-s --long", with "=" after
# the name when the flag takes a value.
COMMANDS = {
    '': (
        '--config=', '-c --context=', '-D --debug', '-H --host=', '-l --log-level=', '--tls',
        '--tlscacert=', '--tlscert=', '--tlskey=', '--tlsverify', '-v --version',
    ),
    'builder': (),
    'builder prune': (
        '-a --all', '--filter=', '-f --force', '--keep-storage=',
    ),
    'checkpoint': (),
    'checkpoint create': (
        '--checkpoint-dir=', '--leave-running',
    ),
    'checkpoint ls': (
        '--checkpoint-dir=',
    ),
    'checkpoint rm': (
        '--checkpoint-dir=',
    ),
    'config': (),
    'config create': (
        '-l --label=', '--template-driver=',
    ),
    'config inspect': (
        '-f --format=', '--pretty',
    ),
    'config ls': (
        '-f --filter=', '--format=', '-q --quiet',
    ),
    'config rm': (),
    'container': (),
    'container attach': (
        '--detach-keys=', '--no-stdin', '--sig-proxy',
    ),
    'container commit': (
        '-a --author=', '-c --change=', '-m --message=', '-p --pause',
    ),
    'container cp': (
        '-a --archive', '-L --follow-link', '-q --quiet',
    ),
    'container create': (
        '--add-host=', '--annotation=', '-a --attach=', '--blkio-weight=',
        '--blkio-weight-device=', '--cap-add=', '--cap-drop=', '--cgroup-parent=', '--cgroupns=',
        '--cidfile=', '--cpu-count=', '--cpu-percent=', '--cpu-period=', '--cpu-quota=',
        '--cpu-rt-period=', '--cpu-rt-runtime=', '-c --cpu-shares=', '--cpus=', '--cpuset-cpus=',
        '--cpuset-mems=', '--device=', '--device-cgroup-rule=', '--device-read-bps=',
        '--device-read-iops=', '--device-write-bps=', '--device-write-iops=',
        '--disable-content-trust', '--dns=', '--dns-option=', '--dns-search=', '--domainname=',
        '--entrypoint=', '-e --env=', '--env-file=', '--expose=', '--gpus=', '--group-add=',
        '--health-cmd=', '--health-interval=', '--health-retries=', '--health-start-interval=',
        '--health-start-period=', '--health-timeout=', '--help', '-h --hostname=', '--init',
        '-i --interactive', '--io-maxbandwidth=', '--io-maxiops=', '--ip=', '--ip6=', '--ipc=',
        '--isolation=', '--kernel-memory=', '-l --label=', '--label-file=', '--link=',
        '--link-local-ip=', '--log-driver=', '--log-opt=', '--mac-address=', '-m --memory=',
        '--memory-reservation=', '--memory-swap=', '--memory-swappiness=', '--mount=', '--name=',
        '--network=', '--network-alias=', '--no-healthcheck', '--oom-kill-disable',
        '--oom-score-adj=', '--pid=', '--pids-limit=', '--platform=', '--privileged',
        '-p --publish=', '-P --publish-all', '--pull=', '-q --quiet', '--read-only', '--restart=',
        '--rm', '--runtime=', '--security-opt=', '--shm-size=', '--stop-signal=',
        '--stop-timeout=', '--storage-opt=', '--sysctl=', '--tmpfs=', '-t --tty', '--ulimit=',
        '--use-api-socket', '-u --user=', '--userns=', '--uts=', '-v --volume=',
        '--volume-driver=', '--volumes-from=', '-w --workdir=',
    ),
    'container diff': (),
    'container exec': (
        '-d --detach', '--detach-keys=', '-e --env=', '--env-file=', '-i --interactive',
        '--privileged', '-t --tty', '-u --user=', '-w --workdir=',
    ),
    'container export': (
        '-o --output=',
    ),
    'container inspect': (
        '-f --format=', '-s --size',
    ),
    'container kill': (
        '-s --signal=',
    ),
    'container logs': (
        '--details', '-f --follow', '--since=', '-n --tail=', '-t --timestamps', '--until=',
    ),
    'container ls': (
        '-a --all', '-f --filter=', '--format=', '-n --last=', '-l --latest', '--no-trunc',
        '-q --quiet', '-s --size',
    ),
    'container pause': (),
    'container port': (),
    'container prune': (
        '--filter=', '-f --force',
    ),
    'container rename': (),
    'container restart': (
        '-s --signal=', '-t --timeout=',
    ),
    'container rm': (
        '-f --force', '-l --link', '-v --volumes',
    ),
    'container run': (
        '--add-host=', '--annotation=', '-a --attach=', '--blkio-weight=',
        '--blkio-weight-device=', '--cap-add=', '--cap-drop=', '--cgroup-parent=', '--cgroupns=',
        '--cidfile=', '--cpu-count=', '--cpu-percent=', '--cpu-period=', '--cpu-quota=',
        '--cpu-rt-period=', '--cpu-rt-runtime=', '-c --cpu-shares=', '--cpus=', '--cpuset-cpus=',
        '--cpuset-mems=', '-d --detach', '--detach-keys=', '--device=', '--device-cgroup-rule=',
        '--device-read-bps=', '--device-read-iops=', '--device-write-bps=', '--device-write-iops=',
        '--disable-content-trust', '--dns=', '--dns-option=', '--dns-search=', '--domainname=',
        '--entrypoint=', '-e --env=', '--env-file=', '--expose=', '--gpus=', '--group-add=',
        '--health-cmd=', '--health-interval=', '--health-retries=', '--health-start-interval=',
        '--health-start-period=', '--health-timeout=', '--help', '-h --hostname=', '--init',
        '-i --interactive', '--io-maxbandwidth=', '--io-maxiops=', '--ip=', '--ip6=', '--ipc=',
        '--isolation=', '--kernel-memory=', '-l --label=', '--label-file=', '--link=',
        '--link-local-ip=', '--log-driver=', '--log-opt=', '--mac-address=', '-m --memory=',
        '--memory-reservation=', '--memory-swap=', '--memory-swappiness=', '--mount=', '--name=',
        '--network=', '--network-alias=', '--no-healthcheck', '--oom-kill-disable',
        '--oom-score-adj=', '--pid=', '--pids-limit=', '--platform=', '--privileged',
        '-p --publish=', '-P --publish-all', '--pull=', '-q --quiet', '--read-only', '--restart=',
        '--rm', '--runtime=', '--security-opt=', '--shm-size=', '--sig-proxy', '--stop-signal=',
        '--stop-timeout=', '--storage-opt=', '--sysctl=', '--tmpfs=', '-t --tty', '--ulimit=',
        '--use-api-socket', '-u --user=', '--userns=', '--uts=', '-v --volume=',
        '--volume-driver=', '--volumes-from=', '-w --workdir=',
    ),
    'container start': (
        '-a --attach', '--checkpoint=', '--checkpoint-dir=', '--detach-keys=', '-i --interactive',
    ),
    'container stats': (
        '-a --all', '--format=', '--no-stream', '--no-trunc',
    ),
    'container stop': (
        '-s --signal=', '-t --timeout=',
    ),
    'container top': (),
    'container unpause': (),
    'container update': (
        '--blkio-weight=', '--cpu-period=', '--cpu-quota=', '--cpu-rt-period=',
        '--cpu-rt-runtime=', '-c --cpu-shares=', '--cpus=', '--cpuset-cpus=', '--cpuset-mems=',
        '-m --memory=', '--memory-reservation=', '--memory-swap=', '--pids-limit=', '--restart=',
    ),
    'container wait': (),
    'context': (),
    'context create': (
        '--description=', '--docker=', '--from=',
    ),
    'context export': (),
    'context import': (),
    'context inspect': (
        '-f --format=',
    ),
    'context ls': (
        '--format=', '-q --quiet',
    ),
    'context rm': (
        '-f --force',
    ),
    'context show': (),
    'context update': (
        '--description=', '--docker=',
    ),
    'context use': (),
    'image': (),
    'image build': (
        '--add-host=', '--build-arg=', '--cache-from=', '--cgroup-parent=', '--compress',
        '--cpu-period=', '--cpu-quota=', '-c --cpu-shares=', '--cpuset-cpus=', '--cpuset-mems=',
        '--disable-content-trust', '-f --file=', '--force-rm', '--iidfile=', '--isolation=',
        '--label=', '-m --memory=', '--memory-swap=', '--network=', '--no-cache', '--platform=',
        '--pull', '-q --quiet', '--rm', '--security-opt=', '--shm-size=', '--squash', '-t --tag=',
        '--target=', '--ulimit=',
    ),
    'image history': (
        '--format=', '-H --human', '--no-trunc', '--platform=', '-q --quiet',
    ),
    'image import': (
        '-c --change=', '-m --message=', '--platform=',
    ),
    'image inspect': (
        '-f --format=', '--platform=',
    ),
    'image load': (
        '-i --input=', '--platform=', '-q --quiet',
    ),
    'image ls': (
        '-a --all', '--digests', '-f --filter=', '--format=', '--no-trunc', '-q --quiet', '--tree',
    ),
    'image prune': (
        '-a --all', '--filter=', '-f --force',
    ),
    'image pull': (
        '-a --all-tags', '--disable-content-trust', '--platform=', '-q --quiet',
    ),
    'image push': (
        '-a --all-tags', '--disable-content-trust', '--platform=', '-q --quiet',
    ),
    'image rm': (
        '-f --force', '--no-prune', '--platform=',
    ),
    'image save': (
        '-o --output=', '--platform=',
    ),
    'image tag': (),
    'inspect': (
        '-f --format=', '-s --size', '--type=',
    ),
    'login': (
        '-p --password=', '--password-stdin', '-u --username=',
    ),
    'logout': (),
    'manifest': (),
    'manifest annotate': (
        '--arch=', '--os=', '--os-features=', '--os-version=', '--variant=',
    ),
    'manifest create': (
        '-a --amend', '--insecure',
    ),
    'manifest inspect': (
        '--insecure', '-v --verbose',
    ),
    'manifest push': (
        '--insecure', '-p --purge',
    ),
    'manifest rm': (),
    'network': (),
    'network connect': (
        '--alias=', '--driver-opt=', '--gw-priority=', '--ip=', '--ip6=', '--link=',
        '--link-local-ip=',
    ),
    'network create': (
        '--attachable', '--aux-address=', '--config-from=', '--config-only', '-d --driver=',
        '--gateway=', '--ingress', '--internal', '--ip-range=', '--ipam-driver=', '--ipam-opt=',
        '--ipv4', '--ipv6', '--label=', '-o --opt=', '--scope=', '--subnet=',
    ),
    'network disconnect': (
        '-f --force',
    ),
    'network inspect': (
        '-f --format=', '-v --verbose',
    ),
    'network ls': (
        '-f --filter=', '--format=', '--no-trunc', '-q --quiet',
    ),
    'network prune': (
        '--filter=', '-f --force',
    ),
    'network rm': (
        '-f --force',
    ),
    'node': (),
    'node demote': (),
    'node inspect': (
        '-f --format=', '--pretty',
    ),
    'node ls': (
        '-f --filter=', '--format=', '-q --quiet',
    ),
    'node promote': (),
    'node ps': (
        '-f --filter=', '--format=', '--no-resolve', '--no-trunc', '-q --quiet',
    ),
    'node rm': (
        '-f --force',
    ),
    'node update': (
        '--availability=', '--label-add=', '--label-rm=', '--role=',
    ),
    'plugin': (),
    'plugin create': (
        '--compress',
    ),
    'plugin disable': (
        '-f --force',
    ),
    'plugin enable': (
        '--timeout=',
    ),
    'plugin inspect': (
        '-f --format=',
    ),
    'plugin install': (
        '--alias=', '--disable', '--disable-content-trust', '--grant-all-permissions',
    ),
    'plugin ls': (
        '-f --filter=', '--format=', '--no-trunc', '-q --quiet',
    ),
    'plugin push': (
        '--disable-content-trust',
    ),
    'plugin rm': (
        '-f --force',
    ),
    'plugin set': (),
    'plugin upgrade': (
        '--disable-content-trust', '--grant-all-permissions', '--skip-remote-check',
    ),
    'search': (
        '-f --filter=', '--format=', '--limit=', '--no-trunc',
    ),
    'secret': (),
    'secret create': (
        '-d --driver=', '-l --label=', '--template-driver=',
    ),
    'secret inspect': (
        '-f --format=', '--pretty',
    ),
    'secret ls': (
        '-f --filter=', '--format=', '-q --quiet',
    ),
    'secret rm': (),
    'service': (),
    'service create': (
        '--cap-add=', '--cap-drop=', '--config=', '--constraint=', '--container-label=',
        '--credential-spec=', '-d --detach', '--dns=', '--dns-option=', '--dns-search=',
        '--endpoint-mode=', '--entrypoint=', '-e --env=', '--env-file=', '--generic-resource=',
        '--group=', '--health-cmd=', '--health-interval=', '--health-retries=',
        '--health-start-interval=', '--health-start-period=', '--health-timeout=', '--host=',
        '--hostname=', '--init', '--isolation=', '-l --label=', '--limit-cpu=', '--limit-memory=',
        '--limit-pids=', '--log-driver=', '--log-opt=', '--max-concurrent=', '--mode=', '--mount=',
        '--name=', '--network=', '--no-healthcheck', '--no-resolve-image', '--oom-score-adj=',
        '--placement-pref=', '-p --publish=', '-q --quiet', '--read-only', '--replicas=',
        '--replicas-max-per-node=', '--reserve-cpu=', '--reserve-memory=', '--restart-condition=',
        '--restart-delay=', '--restart-max-attempts=', '--restart-window=', '--rollback-delay=',
        '--rollback-failure-action=', '--rollback-max-failure-ratio=', '--rollback-monitor=',
        '--rollback-order=', '--rollback-parallelism=', '--secret=', '--stop-grace-period=',
        '--stop-signal=', '--sysctl=', '-t --tty', '--ulimit=', '--update-delay=',
        '--update-failure-action=', '--update-max-failure-ratio=', '--update-monitor=',
        '--update-order=', '--update-parallelism=', '-u --user=', '--with-registry-auth',
        '-w --workdir=',
    ),
    'service inspect': (
        '-f --format=', '--pretty',
    ),
    'service logs': (
        '--details', '-f --follow', '--no-resolve', '--no-task-ids', '--no-trunc', '--raw',
        '--since=', '-n --tail=', '-t --timestamps',
    ),
    'service ls': (
        '-f --filter=', '--format=', '-q --quiet',
    ),
    'service ps': (
        '-f --filter=', '--format=', '--no-resolve', '--no-trunc', '-q --quiet',
    ),
    'service rm': (),
    'service rollback': (
        '-d --detach', '-q --quiet',
    ),
    'service scale': (
        '-d --detach',
    ),
    'service update': (
        '--args=', '--cap-add=', '--cap-drop=', '--config-add=', '--config-rm=',
        '--constraint-add=', '--constraint-rm=', '--container-label-add=', '--container-label-rm=',
        '--credential-spec=', '-d --detach', '--dns-add=', '--dns-option-add=', '--dns-option-rm=',
        '--dns-rm=', '--dns-search-add=', '--dns-search-rm=', '--endpoint-mode=', '--entrypoint=',
        '--env-add=', '--env-rm=', '--force', '--generic-resource-add=', '--generic-resource-rm=',
        '--group-add=', '--group-rm=', '--health-cmd=', '--health-interval=', '--health-retries=',
        '--health-start-interval=', '--health-start-period=', '--health-timeout=', '--host-add=',
        '--host-rm=', '--hostname=', '--image=', '--init', '--isolation=', '--label-add=',
        '--label-rm=', '--limit-cpu=', '--limit-memory=', '--limit-pids=', '--log-driver=',
        '--log-opt=', '--max-concurrent=', '--mount-add=', '--mount-rm=', '--network-add=',
        '--network-rm=', '--no-healthcheck', '--no-resolve-image', '--oom-score-adj=',
        '--placement-pref-add=', '--placement-pref-rm=', '--publish-add=', '--publish-rm=',
        '-q --quiet', '--read-only', '--replicas=', '--replicas-max-per-node=', '--reserve-cpu=',
        '--reserve-memory=', '--restart-condition=', '--restart-delay=', '--restart-max-attempts=',
        '--restart-window=', '--rollback', '--rollback-delay=', '--rollback-failure-action=',
        '--rollback-max-failure-ratio=', '--rollback-monitor=', '--rollback-order=',
        '--rollback-parallelism=', '--secret-add=', '--secret-rm=', '--stop-grace-period=',
        '--stop-signal=', '--sysctl-add=', '--sysctl-rm=', '-t --tty', '--ulimit-add=',
        '--ulimit-rm=', '--update-delay=', '--update-failure-action=',
        '--update-max-failure-ratio=', '--update-monitor=', '--update-order=',
        '--update-parallelism=', '-u --user=', '--with-registry-auth', '-w --workdir=',
    ),
    'stack': (),
    'stack config': (
        '-c --compose-file=', '--skip-interpolation',
    ),
    'stack deploy': (
        '-c --compose-file=', '-d --detach', '--prune', '-q --quiet', '--resolve-image=',
        '--with-registry-auth',
    ),
    'stack ls': (
        '--format=',
    ),
    'stack ps': (
        '-f --filter=', '--format=', '--no-resolve', '--no-trunc', '-q --quiet',
    ),
    'stack rm': (
        '-d --detach',
    ),
    'stack services': (
        '-f --filter=', '--format=', '-q --quiet',
    ),
    'swarm': (),
    'swarm ca': (
        '--ca-cert=', '--ca-key=', '--cert-expiry=', '-d --detach', '--external-ca=', '-q --quiet',
        '--rotate',
    ),
    'swarm init': (
        '--advertise-addr=', '--autolock', '--availability=', '--cert-expiry=',
        '--data-path-addr=', '--data-path-port=', '--default-addr-pool=',
        '--default-addr-pool-mask-length=', '--dispatcher-heartbeat=', '--external-ca=',
        '--force-new-cluster', '--listen-addr=', '--max-snapshots=', '--snapshot-interval=',
        '--task-history-limit=',
    ),
    'swarm join': (
        '--advertise-addr=', '--availability=', '--data-path-addr=', '--listen-addr=', '--token=',
    ),
    'swarm join-token': (
        '-q --quiet', '--rotate',
    ),
    'swarm leave': (
        '-f --force',
    ),
    'swarm unlock': (),
    'swarm unlock-key': (
        '-q --quiet', '--rotate',
    ),
    'swarm update': (
        '--autolock', '--cert-expiry=', '--dispatcher-heartbeat=', '--external-ca=',
        '--max-snapshots=', '--snapshot-interval=', '--task-history-limit=',
    ),
    'system': (),
    'system df': (
        '--format=', '-v --verbose',
    ),
    'system events': (
        '-f --filter=', '--format=', '--since=', '--until=',
    ),
    'system info': (
        '-f --format=',
    ),
    'system prune': (
        '-a --all', '--filter=', '-f --force', '--volumes',
    ),
    'trust': (),
    'trust inspect': (
        '--pretty',
    ),
    'trust key': (),
    'trust key generate': (
        '--dir=',
    ),
    'trust key load': (
        '--name=',
    ),
    'trust revoke': (
        '-y --yes',
    ),
    'trust sign': (
        '--local',
    ),
    'trust signer': (),
    'trust signer add': (
        '--key=',
    ),
    'trust signer remove': (
        '-f --force',
    ),
    'version': (
        '-f --format=',
    ),
    'volume': (),
    'volume create': (
        '--availability=', '-d --driver=', '--group=', '--label=', '--limit-bytes=', '-o --opt=',
        '--required-bytes=', '--scope=', '--secret=', '--sharing=', '--topology-preferred=',
        '--topology-required=', '--type=',
    ),
    'volume inspect': (
        '-f --format=',
    ),
    'volume ls': (
        '--cluster', '-f --filter=', '--format=', '-q --quiet',
    ),
    'volume prune': (
        '-a --all', '--filter=', '-f --force',
    ),
    'volume rm': (
        '-f --force',
    ),
    'volume update': (
        '--availability=',
    ),
}

# Other names of a command ("ps" is "container ls").
ALIASES = {
    'attach': 'container attach',
    'build': 'image build',
    'builder build': 'image build',
    'checkpoint list': 'checkpoint ls',
    'checkpoint remove': 'checkpoint rm',
    'commit': 'container commit',
    'config list': 'config ls',
    'config remove': 'config rm',
    'container list': 'container ls',
    'container ps': 'container ls',
    'container remove': 'container rm',
    'context list': 'context ls',
    'context remove': 'context rm',
    'cp': 'container cp',
    'create': 'container create',
    'diff': 'container diff',
    'events': 'system events',
    'exec': 'container exec',
    'export': 'container export',
    'history': 'image history',
    'image list': 'image ls',
    'image remove': 'image rm',
    'images': 'image ls',
    'import': 'image import',
    'info': 'system info',
    'kill': 'container kill',
    'load': 'image load',
    'logs': 'container logs',
    'network list': 'network ls',
    'network remove': 'network rm',
    'node list': 'node ls',
    'node remove': 'node rm',
    'pause': 'container pause',
    'plugin list': 'plugin ls',
    'plugin remove': 'plugin rm',
    'port': 'container port',
    'ps': 'container ls',
    'pull': 'image pull',
    'push': 'image push',
    'rename': 'container rename',
    'restart': 'container restart',
    'rm': 'container rm',
    'rmi': 'image rm',
    'run': 'container run',
    'save': 'image save',
    'secret list': 'secret ls',
    'secret remove': 'secret rm',
    'service list': 'service ls',
    'service remove': 'service rm',
    'stack down': 'stack rm',
    'stack list': 'stack ls',
    'stack remove': 'stack rm',
    'stack up': 'stack deploy',
    'start': 'container start',
    'stats': 'container stats',
    'stop': 'container stop',
    'tag': 'image tag',
    'top': 'container top',
    'unpause': 'container unpause',
    'update': 'container update',
    'volume list': 'volume ls',
    'volume remove': 'volume rm',
    'wait': 'container wait',
}
