/**
 * berthd and the Berth registry together: images pushed by one daemon and
 * pulled by another through `berth registry serve`, with auth off, with
 * htpasswd Basic and with the Bearer token service; `docker login` and
 * `berth login` go through berthd's POST /auth.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestDaemon } from '../helpers/daemon.js';
import { writeHtpasswd } from '../registry/helpers/auth-files.js';
import { type ServerProcess, removeDir, startBerth, tempDir } from '../registry/helpers/procs.js';

const USER = 'bob';
const PASSWORD = 'builder-of-things-7';

describe('berthd with the Berth registry', () => {
  let work: string;
  let open: ServerProcess;
  let basic: ServerProcess;
  let token: ServerProcess;
  let a: TestDaemon;
  let b: TestDaemon;
  before(async () => {
    work = await tempDir('berth-registry');
    const htpasswd = await writeHtpasswd(work, { [USER]: PASSWORD });
    [open, basic, token, a, b] = await Promise.all([
      startBerth(),
      startBerth({ args: ['--htpasswd', htpasswd] }),
      startBerth({ args: ['--htpasswd', htpasswd, '--token-auth'] }),
      TestDaemon.start(),
      TestDaemon.start({ busybox: false }),
    ]);
  });
  after(async () => {
    await Promise.all([a?.cleanup(), b?.cleanup()]);
    for (const s of [open, basic, token]) {
      if (!s) continue;
      await s.stop();
      await removeDir(s.root);
    }
    if (work) await removeDir(work);
  });

  const ok = async (d: TestDaemon, args: string[], input?: string): Promise<string> => {
    const r = await d.docker(args, input !== undefined ? { input } : {});
    assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  test('push from one daemon, pull and run on another (no auth), through docker and berth', async () => {
    const name = `${open.host}/team/busybox:v1`;
    await ok(a, ['tag', 'busybox', name]);
    const pushed = await ok(a, ['push', name]);
    const digest = /digest: (sha256:[0-9a-f]{64})/.exec(pushed)?.[1];
    assert.ok(digest, pushed);
    await ok(b, ['pull', name]);
    assert.equal((await ok(b, ['run', '--rm', name, 'echo', 'from the registry'])).trim(), 'from the registry');
    const repoDigests = JSON.parse(await ok(b, ['image', 'inspect', '-f', '{{json .RepoDigests}}', name]));
    assert.deepEqual(repoDigests, [`${open.host}/team/busybox@${digest}`]);
    // by digest, through berth
    await ok(b, ['rmi', name]);
    const viaBerth = await b.berth(['pull', `${open.host}/team/busybox@${digest}`]);
    assert.equal(viaBerth.code, 0, viaBerth.stderr);
    // a build pushed and pulled back keeps its image ID
    const built = await a.berth(['build', '-q', '-t', `${open.host}/team/built:1`, '-'], { input: 'FROM busybox\nRUN echo layer > /layer\n' });
    assert.equal(built.code, 0, built.stderr);
    await ok(a, ['push', `${open.host}/team/built:1`]);
    await ok(b, ['pull', `${open.host}/team/built:1`]);
    assert.equal((await ok(b, ['image', 'inspect', '-f', '{{.Id}}', `${open.host}/team/built:1`])).trim(), built.stdout.trim());
    assert.equal((await ok(b, ['run', '--rm', `${open.host}/team/built:1`, 'cat', '/layer'])).trim(), 'layer');
  });

  for (const kind of ['basic', 'token'] as const) {
    test(`${kind} auth: refused without login; docker login and berth login through berthd; logout`, async () => {
      const server = kind === 'basic' ? basic : token;
      const name = `${server.host}/private/busybox:1`;
      await ok(a, ['tag', 'busybox', name]);
      const refused = await a.docker(['push', name]);
      assert.notEqual(refused.code, 0, 'push without credentials is refused');
      assert.match(refused.stderr + refused.stdout, /unauthorized|authentication required|no basic auth credentials/i);
      const bad = await a.docker(['login', '-u', USER, '--password-stdin', server.host], { input: 'wrong' });
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /unauthorized|incorrect|invalid/i);
      const login = await a.docker(['login', '-u', USER, '--password-stdin', server.host], { input: PASSWORD });
      assert.equal(login.code, 0, login.stderr);
      assert.match(login.stdout, /Login Succeeded/);
      await ok(a, ['push', name]);
      // the other daemon, through berth login
      const denied = await b.docker(['pull', name]);
      assert.notEqual(denied.code, 0);
      const berthLogin = await b.berth(['login', '-u', USER, '--password-stdin', server.host], { input: PASSWORD });
      assert.equal(berthLogin.code, 0, berthLogin.stderr);
      await ok(b, ['pull', name]);
      await ok(b, ['logout', server.host]);
      await ok(b, ['rmi', name]);
      assert.notEqual((await b.docker(['pull', name])).code, 0, 'logged out: refused again');
      // no password in either daemon's log
      for (const d of [a, b]) assert.ok(!(await d.log()).includes(PASSWORD), 'the password never reaches the log');
    });
  }
});
