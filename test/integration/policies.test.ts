/**
 * What the daemon does to containers over time, through the real docker CLI
 * against a real berthd: restart policies (back-off, retry counts, stop and
 * rm during the back-off, unless-stopped across a daemon restart),
 * healthchecks (status, streaks, events, ps and filters), docker update
 * (limits land in the cgroup files of a running container) and docker
 * commit (the container's changes become an image that runs).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import { TestDaemon, eventually } from '../helpers/daemon.js';

interface State {
  Status: string;
  Running: boolean;
  Restarting: boolean;
  ExitCode: number;
  Pid: number;
  Health?: { Status: string; FailingStreak: number; Log: { ExitCode: number; Output: string }[] };
}

describe('restart policies, healthchecks, update, commit', () => {
  let d: TestDaemon;
  before(async () => {
    d = await TestDaemon.start();
  });
  after(async () => {
    await d.cleanup();
  });

  const ok = (args: string[], input?: Buffer): Promise<string> => d.ok(args, input);
  const fails = (args: string[], message: RegExp): Promise<void> => d.fails(args, message);
  const state = async (name: string): Promise<State> => JSON.parse(await ok(['inspect', '-f', '{{json .State}}', name]));
  const restartCount = async (name: string): Promise<number> => Number(await ok(['inspect', '-f', '{{.RestartCount}}', name]));

  test('on-failure:N restarts a failing container N times, then leaves it exited with its code', async () => {
    await ok(['run', '-d', '--name', 'fails', '--restart', 'on-failure:2', 'busybox', 'sh', '-c', 'echo attempt; exit 3']);
    await eventually(async () => (await restartCount('fails')) === 2 && (await state('fails')).Status === 'exited', 15_000, 'two restarts then exited');
    const s = await state('fails');
    assert.equal(s.ExitCode, 3);
    assert.equal(s.Restarting, false);
    assert.equal((await ok(['logs', 'fails'])).split('\n').filter((l) => l === 'attempt').length, 3, 'one run and two restarts');
    // a clean exit is not a failure: no restart
    await ok(['run', '-d', '--name', 'succeeds', '--restart', 'on-failure', 'busybox', 'true']);
    await eventually(async () => (await state('succeeds')).Status === 'exited', 5000, 'exited');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await restartCount('succeeds'), 0);
    await ok(['rm', 'fails', 'succeeds']);
  });

  test('always restarts with a growing back-off; stop and rm -f end it; kill is a manual stop', async () => {
    const events = d.docker(['events', '--filter', 'container=looper', '--filter', 'event=start', '--since', '0', '--until', String(Math.floor(Date.now() / 1000) + 6)]);
    await ok(['run', '-d', '--name', 'looper', '--restart', 'always', 'busybox', 'sh', '-c', 'exit 1']);
    await eventually(async () => (await restartCount('looper')) >= 3, 10_000, 'three restarts');
    // the back-off doubles (100, 200, 400, 800 ms...): the 5 s window holds a handful of starts, not hundreds
    const starts = (await events).stdout.trim().split('\n').filter(Boolean).length;
    assert.ok(starts >= 4 && starts <= 9, `starts in 5 s: ${starts}`);
    // stop during the back-off ends the loop
    await ok(['stop', 'looper']);
    const s = await state('looper');
    assert.equal(s.Status, 'exited');
    const count = await restartCount('looper');
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await restartCount('looper'), count, 'no restart after stop');
    assert.equal((await state('looper')).Status, 'exited');

    // docker kill: the policy leaves the container alone
    await ok(['run', '-d', '--name', 'killed', '--restart', 'always', 'busybox', 'sleep', '1000']);
    await ok(['kill', 'killed']);
    await new Promise((r) => setTimeout(r, 800));
    assert.equal((await state('killed')).Status, 'exited');

    // rm without -f refuses a restarting container; rm -f removes it
    await ok(['run', '-d', '--name', 'flapping', '--restart', 'always', 'busybox', 'sh', '-c', 'sleep 0.05; exit 1']);
    await eventually(async () => (await restartCount('flapping')) >= 4, 15_000, 'restarts with a longer back-off');
    await ok(['rm', '-f', 'flapping']);
    assert.equal((await d.docker(['inspect', 'flapping'])).code, 1);
    await ok(['rm', 'looper', 'killed']);
  });

  test('unless-stopped comes back after a daemon restart unless it was stopped; always does too', async () => {
    await ok(['run', '-d', '--name', 'us-running', '--restart', 'unless-stopped', 'busybox', 'sleep', '1000']);
    await ok(['run', '-d', '--name', 'us-stopped', '--restart', 'unless-stopped', 'busybox', 'sleep', '1000']);
    await ok(['run', '-d', '--name', 'always-exited', '--restart', 'always', 'busybox', 'sleep', '1000']);
    await ok(['stop', '-t', '0', 'us-stopped', 'always-exited']);
    await d.restartDaemon('SIGTERM');
    assert.equal((await state('us-running')).Status, 'running', 'kept running through the restart');
    assert.equal((await state('us-stopped')).Status, 'exited');
    // Docker starts "always" containers at daemon start even after docker stop
    await eventually(async () => (await state('always-exited')).Status === 'running', 10_000, 'always container started at daemon start');
    await ok(['rm', '-f', 'us-running', 'us-stopped', 'always-exited']);
  });

  test('a restart policy with --rm, or a retry count without on-failure, is refused', async () => {
    await fails(['run', '--rm', '--restart', 'always', 'busybox', 'true'], /conflicting options|AutoRemove|cannot be used/i);
    const r = await d.client.raw('POST', '/containers/create', {
      body: { Image: 'busybox', Cmd: ['true'], HostConfig: { RestartPolicy: { Name: 'always', MaximumRetryCount: 3 } } },
    });
    assert.equal(r.statusCode, 400);
    r.resume();
    const bad = await d.client.raw('POST', '/containers/create', { body: { Image: 'busybox', HostConfig: { RestartPolicy: { Name: 'sometimes' } } } });
    assert.equal(bad.statusCode, 400);
    bad.resume();
  });

  test('healthchecks: starting, healthy, unhealthy after the retries, events, ps and filters', async () => {
    const since = Math.floor(Date.now() / 1000);
    await ok([
      'run', '-d', '--name', 'checked', '--health-cmd', 'test -f /tmp/ok', '--health-interval', '200ms', '--health-retries', '2',
      '--health-start-period', '0s', 'busybox', 'sh', '-c', 'touch /tmp/ok; sleep 1000',
    ]);
    await eventually(async () => (await state('checked')).Health?.Status === 'healthy', 10_000, 'healthy');
    assert.match(await ok(['ps', '--filter', 'name=checked', '--format', '{{.Status}}']), /\(healthy\)$/);
    assert.equal(await ok(['ps', '-q', '--filter', 'health=healthy', '--filter', 'name=checked']), (await ok(['inspect', '-f', '{{.Id}}', 'checked'])).slice(0, 12));
    await ok(['exec', 'checked', 'rm', '/tmp/ok']);
    await eventually(async () => (await state('checked')).Health?.Status === 'unhealthy', 10_000, 'unhealthy after two failures');
    const h = (await state('checked')).Health!;
    assert.ok(h.FailingStreak >= 2);
    assert.ok(h.Log.length > 0 && h.Log.length <= 5, 'the last five results are kept');
    assert.equal(h.Log.at(-1)!.ExitCode, 1);
    const events = await ok(['events', '--since', String(since), '--until', String(Math.floor(Date.now() / 1000) + 1), '--filter', 'container=checked', '--filter', 'event=health_status', '--format', '{{.Action}}']);
    assert.match(events, /health_status: healthy/);
    assert.match(events, /health_status: unhealthy/);
    // the exec'd probes do not show up as exec sessions in inspect, and stop ends them
    await ok(['stop', '-t', '1', 'checked']);
    await new Promise((r) => setTimeout(r, 600));
    assert.equal((await state('checked')).Health?.Status, 'unhealthy', 'the last status is kept while stopped');
    await ok(['rm', 'checked']);

    // an image HEALTHCHECK NONE equivalent: --no-healthcheck; and invalid intervals are refused
    await ok(['run', '-d', '--name', 'unchecked', '--no-healthcheck', 'busybox', 'sleep', '1000']);
    assert.equal((await state('unchecked')).Health, undefined);
    await ok(['rm', '-f', 'unchecked']);
    const r = await d.client.raw('POST', '/containers/create', {
      body: { Image: 'busybox', Healthcheck: { Test: ['CMD', 'true'], Interval: 1000 } },
    });
    assert.equal(r.statusCode, 400);
    r.resume();
  });

  test('docker update: limits land in the cgroup files of the running container; restart policy changes', async () => {
    await ok(['run', '-d', '--name', 'updated', '--memory', '64m', 'busybox', 'sleep', '1000']);
    const pid = (await state('updated')).Pid;
    const cgroupOf = async (controller: string): Promise<string> => {
      const line = (await fsp.readFile(`/proc/${pid}/cgroup`, 'utf8')).split('\n').find((l) => l.split(':')[1]?.split(',').includes(controller));
      assert.ok(line, `${controller} cgroup`);
      return `/sys/fs/cgroup/${controller}${line.split(':')[2]}`;
    };
    await ok(['update', '--memory', '96m', '--memory-swap', '192m', '--cpus', '0.5', '--pids-limit', '50', '--cpu-shares', '512', 'updated']);
    const mem = await cgroupOf('memory');
    assert.equal((await fsp.readFile(`${mem}/memory.limit_in_bytes`, 'utf8')).trim(), String(96 * 1024 * 1024));
    const cpu = await cgroupOf('cpu');
    assert.equal((await fsp.readFile(`${cpu}/cpu.cfs_quota_us`, 'utf8')).trim(), '50000');
    assert.equal((await fsp.readFile(`${cpu}/cpu.shares`, 'utf8')).trim(), '512');
    const pids = await cgroupOf('pids');
    assert.equal((await fsp.readFile(`${pids}/pids.max`, 'utf8')).trim(), '50');
    const hc = JSON.parse(await ok(['inspect', '-f', '{{json .HostConfig}}', 'updated']));
    assert.equal(hc.Memory, 96 * 1024 * 1024);
    assert.equal(hc.NanoCpus, 5e8);
    assert.equal(hc.PidsLimit, 50);

    await ok(['update', '--restart', 'on-failure:3', 'updated']);
    assert.deepEqual(JSON.parse(await ok(['inspect', '-f', '{{json .HostConfig.RestartPolicy}}', 'updated'])), { Name: 'on-failure', MaximumRetryCount: 3 });
    // the new limits hold after a restart too
    await ok(['restart', '-t', '0', 'updated']);
    const pid2 = (await state('updated')).Pid;
    const line = (await fsp.readFile(`/proc/${pid2}/cgroup`, 'utf8')).split('\n').find((l) => l.split(':')[1]?.split(',').includes('memory'))!;
    assert.equal((await fsp.readFile(`/sys/fs/cgroup/memory${line.split(':')[2]}/memory.limit_in_bytes`, 'utf8')).trim(), String(96 * 1024 * 1024));

    // bad input changes nothing
    await fails(['update', '--memory', '8m', '--memory-swap', '4m', 'updated'], /swap.*larger than memory|Minimum memoryswap/i);
    assert.equal(JSON.parse(await ok(['inspect', '-f', '{{json .HostConfig.Memory}}', 'updated'])), 96 * 1024 * 1024);
    await fails(['update', '--memory', '96m', 'no-such-container'], /No such container/);
    await ok(['rm', '-f', 'updated']);
    await ok(['run', '-d', '--rm', '--name', 'autoremoved', 'busybox', 'sleep', '1000']);
    await fails(['update', '--restart', 'always', 'autoremoved'], /AutoRemove/);
    await ok(['rm', '-f', 'autoremoved']);
  });

  test('docker commit: changes, deletions and --change become an image that runs; history and config', async () => {
    await ok(['run', '--name', 'tocommit', '-e', 'FROM_RUN=1', 'busybox', 'sh', '-c', 'echo committed > /hello; mkdir -p /data/sub; echo x > /data/sub/f; rm /etc/group; ln -s /hello /link']);
    const id = await ok(['commit', '-m', 'my message', '-a', 'Berth Tester', '-c', 'CMD ["cat", "/hello"]', '-c', 'ENV COMMITTED=yes', '-c', 'EXPOSE 8080', 'tocommit', 'committed:v1']);
    assert.match(id, /^sha256:[0-9a-f]{64}$/);
    assert.equal(await ok(['run', '--rm', 'committed:v1']), 'committed');
    assert.equal(await ok(['run', '--rm', 'committed:v1', 'sh', '-c', 'cat /data/sub/f; readlink /link; test -e /etc/group && echo group-present || echo group-gone; echo $FROM_RUN $COMMITTED']), 'x\n/hello\ngroup-gone\n1 yes');
    const img = JSON.parse(await ok(['image', 'inspect', 'committed:v1']))[0];
    assert.equal(img.Id, id);
    assert.equal(img.Comment, 'my message');
    assert.equal(img.Author, 'Berth Tester');
    assert.deepEqual(img.Config.Cmd, ['cat', '/hello']);
    assert.ok(img.Config.ExposedPorts['8080/tcp']);
    assert.equal(img.RootFS.Layers.length, 2, 'one layer on top of busybox');
    const busyboxId = await ok(['image', 'inspect', '-f', '{{.Id}}', 'busybox']);
    assert.equal(img.Parent, busyboxId);
    const history = await ok(['history', '--no-trunc', '--format', '{{.CreatedBy}}|{{.Comment}}', 'committed:v1']);
    assert.match(history.split('\n')[0], /^sh -c echo committed.*\|my message$/);
    // the daemon's own mount points (/etc/hosts...) are not part of the layer
    const files = await ok(['run', '--rm', 'committed:v1', 'sh', '-c', 'ls -a /']);
    assert.ok(!files.split('\n').includes('.dockerenv'));

    // committing a running container pauses it and leaves it running; no changes → no new layer
    await ok(['run', '-d', '--name', 'live', 'busybox', 'sleep', '1000']);
    const liveId = await ok(['commit', 'live']);
    assert.equal((await state('live')).Status, 'running');
    const live = JSON.parse(await ok(['image', 'inspect', liveId]))[0];
    assert.equal(live.RootFS.Layers.length, 1, 'an unchanged container adds no layer');
    assert.deepEqual(live.RepoTags, []);
    await ok(['rm', '-f', 'live', 'tocommit']);
    await ok(['rmi', liveId]);

    // the event, and bad input
    const events = await ok(['events', '--since', '0', '--until', String(Math.floor(Date.now() / 1000) + 1), '--filter', 'event=commit', '--format', '{{.Actor.Attributes.comment}}']);
    assert.match(events, /my message/);
    await fails(['commit', 'no-such-container'], /No such container/);
    await ok(['create', '--name', 'cc', 'busybox', 'true']);
    await fails(['commit', '-c', 'RUN echo hi', 'cc'], /not a valid change command/);
    await fails(['commit', 'cc', 'Bad:Name'], /invalid reference format/);
    await ok(['rm', 'cc']);
    await ok(['rmi', 'committed:v1']);
  });

  test('berth update and berth commit work too', async () => {
    await ok(['run', '-d', '--name', 'bcommit', 'busybox', 'sh', '-c', 'echo via-berth > /mark; sleep 1000']);
    await eventually(async () => (await d.docker(['exec', 'bcommit', 'cat', '/mark'])).stdout.trim() === 'via-berth', 5000, 'file written');
    // as in Docker, a first memory limit needs a swap limit with it (the current swap limit is 0)
    const refused = await d.berth(['update', '--memory', '80m', 'bcommit']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /smaller than already set memoryswap limit/);
    const u = await d.berth(['update', '--memory', '80m', '--memory-swap', '160m', 'bcommit']);
    assert.equal(u.code, 0, u.stderr);
    assert.equal(JSON.parse(await ok(['inspect', '-f', '{{json .HostConfig.Memory}}', 'bcommit'])), 80 * 1024 * 1024);
    const c = await d.berth(['commit', '--change', 'CMD cat /mark', 'bcommit', 'bcommitted']);
    assert.equal(c.code, 0, c.stderr);
    assert.equal(await ok(['run', '--rm', 'bcommitted']), 'via-berth');
    await ok(['rm', '-f', 'bcommit']);
    await ok(['rmi', 'bcommitted']);
  });
});
