/**
 * GET /events through the real docker CLI against berthd: what each object
 * publishes (containers, execs, images, networks, volumes), the attributes
 * clients filter and render on, since/until, every filter, and a live stream.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { TestDaemon } from '../helpers/daemon.js';

interface EventLine {
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  time: number;
  timeNano: number;
}

describe('events', () => {
  let d: TestDaemon;
  let since: number;
  before(async () => {
    d = await TestDaemon.start();
    since = Math.floor(Date.now() / 1000) - 1;
    const ok = async (args: string[]): Promise<void> => {
      const r = await d.docker(args);
      assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
    };
    // one of everything
    await ok(['run', '-d', '--name', 'ev1', '--label', 'team=blue', 'busybox', 'sleep', '300']);
    await ok(['exec', 'ev1', 'true']);
    await ok(['pause', 'ev1']);
    await ok(['unpause', 'ev1']);
    await ok(['rename', 'ev1', 'ev1b']);
    await ok(['kill', '-s', 'USR1', 'ev1b']);
    await ok(['stop', '-t', '0', 'ev1b']);
    await ok(['rm', 'ev1b']);
    await ok(['run', '--name', 'ev2', 'busybox', 'sh', '-c', 'exit 3']).catch(() => {});
    await d.docker(['rm', 'ev2']);
    await ok(['tag', 'busybox', 'evtag:1']);
    await ok(['rmi', 'evtag:1']);
    await ok(['network', 'create', 'evnet']);
    await ok(['run', '--rm', '--network', 'evnet', 'busybox', 'true']);
    await ok(['network', 'rm', 'evnet']);
    await ok(['volume', 'create', 'evvol']);
    await ok(['run', '--rm', '-v', 'evvol:/data', 'busybox', 'true']);
    await ok(['volume', 'rm', 'evvol']);
  });
  after(async () => {
    await d.cleanup();
  });

  const events = async (...filters: string[]): Promise<EventLine[]> => {
    const until = String(Math.floor(Date.now() / 1000) + 1);
    const r = await d.docker(['events', '--since', String(since), '--until', until, '--format', '{{json .}}', ...filters.flatMap((f) => ['--filter', f])]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as EventLine);
  };
  const actions = (list: EventLine[]): string[] => list.map((e) => e.Action);

  test('container lifecycle events carry Docker attributes', async () => {
    const list = await events('type=container', 'label=team=blue');
    const acts = actions(list);
    for (const a of ['create', 'start', 'pause', 'unpause', 'rename', 'kill', 'die', 'stop', 'destroy']) assert.ok(acts.includes(a), `${a} in ${acts}`);
    assert.ok(acts.some((a) => a.startsWith('exec_create: true')), `exec_create in ${acts}`);
    assert.ok(acts.some((a) => a.startsWith('exec_start: true')), `exec_start in ${acts}`);
    const kill = list.find((e) => e.Action === 'kill')!;
    assert.equal(kill.Actor.Attributes.signal, '10');
    const rename = list.find((e) => e.Action === 'rename')!;
    assert.equal(rename.Actor.Attributes.oldName, '/ev1');
    assert.equal(rename.Actor.Attributes.name, 'ev1b');
    assert.equal(list[0].Actor.Attributes.image, 'busybox');
    assert.ok(list.every((e) => e.timeNano >= e.time * 1e9), 'timeNano is in nanoseconds');
    const die = (await events('container=ev2', 'event=die'))[0];
    assert.equal(die.Actor.Attributes.exitCode, '3');
  });

  test('image, network and volume events; filters by type, event, image, network and volume', async () => {
    const images = actions(await events('type=image'));
    for (const a of ['import', 'tag', 'untag']) assert.ok(images.includes(a), `${a} in ${images}`);
    const tagged = await events('image=evtag:1');
    assert.ok(tagged.some((e) => e.Action === 'tag'), 'image filter by name');
    const nets = await events('type=network', 'network=evnet');
    assert.deepEqual([...new Set(actions(nets))].sort(), ['connect', 'create', 'destroy', 'disconnect']);
    const vols = await events('type=volume', 'volume=evvol');
    for (const a of ['create', 'mount', 'unmount', 'destroy']) assert.ok(actions(vols).includes(a), `${a} in ${actions(vols)}`);
    const two = await events('event=pause', 'event=unpause');
    assert.deepEqual(actions(two), ['pause', 'unpause'], 'several values of one filter are OR');
    const none = await events('type=container', 'event=pull');
    assert.equal(none.length, 0, 'filters of different keys are AND');
    const bad = await d.docker(['events', '--since', String(since), '--until', String(since + 1), '--filter', 'bogus=1']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /invalid filter/);
  });

  test('a live stream delivers events as they happen', async () => {
    const child = spawn('docker', ['events', '--filter', 'container=live', '--format', '{{.Action}}'], { env: d.env() });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    try {
      await new Promise((r) => setTimeout(r, 300));
      const r = await d.docker(['run', '--rm', '--name', 'live', 'busybox', 'true']);
      assert.equal(r.code, 0, r.stderr);
      const deadline = Date.now() + 5000;
      while (!out.includes('destroy') && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
      assert.deepEqual(out.trim().split('\n'), ['create', 'attach', 'start', 'die', 'destroy'].filter((a) => out.includes(a)));
      assert.ok(out.includes('start') && out.includes('destroy'), out);
    } finally {
      child.kill('SIGTERM');
    }
  });

  test('berth events renders the same stream, as lines and as JSON', async () => {
    const until = String(Math.floor(Date.now() / 1000) + 1);
    const plain = await d.berth(['events', '--since', String(since), '--until', until, '--filter', 'container=ev2']);
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stdout, /^\S+ container die [0-9a-f]{64} \(.*exitCode=3.*\)$/m);
    const json = await d.berth(['events', '--since', String(since), '--until', until, '--filter', 'type=network', '--format', '{{json .}}']);
    assert.equal(json.code, 0, json.stderr);
    const lines = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as EventLine);
    assert.ok(lines.length > 0 && lines.every((e) => e.Type === 'network'), json.stdout);
  });
});
