/**
 * Builds through the real docker CLI's classic builder (DOCKER_BUILDKIT=0)
 * and through `berth build` against a real berthd: multi-stage builds and
 * --target, the cache (no-op rebuilds, file changes, touched files, build
 * args, --no-cache, across a daemon restart, builder prune), .dockerignore,
 * every instruction's effect on the image and the container that runs it,
 * contexts from stdin, and bad input (syntax errors with line numbers,
 * missing files, failing RUN, hostile contexts).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import tar from 'tar-stream';
import { TestDaemon, exec } from '../helpers/daemon.js';

describe('build', () => {
  let d: TestDaemon;
  let root: string;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    d = await TestDaemon.start();
    root = await fsp.mkdtemp('/tmp/bt-build-');
    env = { ...d.env(), DOCKER_BUILDKIT: '0' };
  });
  after(async () => {
    await d.cleanup();
    await fsp.rm(root, { recursive: true, force: true });
  });

  let n = 0;
  /** A context directory with the given files (paths relative to it). */
  const context = async (files: Record<string, string>): Promise<string> => {
    const dir = path.join(root, `ctx${n++}`);
    for (const [name, content] of Object.entries(files)) {
      await fsp.mkdir(path.dirname(path.join(dir, name)), { recursive: true });
      await fsp.writeFile(path.join(dir, name), content);
    }
    return dir;
  };
  const build = (args: string[], input?: string | Buffer): ReturnType<TestDaemon['docker']> =>
    d.docker(['build', ...args], { env, ...(input !== undefined ? { input } : {}) });
  const ok = async (args: string[], input?: string | Buffer): Promise<string> => {
    const r = await build(args, input);
    assert.equal(r.code, 0, `docker build ${args.join(' ')}:\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  };
  const run = async (args: string[]): Promise<string> => {
    const r = await d.docker(['run', '--rm', ...args]);
    assert.equal(r.code, 0, `docker run ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const imageId = async (name: string): Promise<string> => (await d.docker(['image', 'inspect', '-f', '{{.Id}}', name])).stdout.trim();
  const cachedSteps = (out: string): number => out.split('\n').filter((l) => l === ' ---> Using cache').length;

  test('a Dockerfile with every common instruction: the image runs with its config', async () => {
    const dir = await context({
      'Dockerfile': [
        'ARG BASE=busybox',
        'FROM ${BASE}',
        'LABEL org.example.name="berth test" other=1',
        'ENV APP_HOME=/srv/app \\',
        '    GREETING="hello there"',
        'WORKDIR $APP_HOME',
        'COPY app/ ./',
        'COPY --chown=1000:1000 owned.txt /owned/',
        'RUN echo "$GREETING from $(pwd)" > built.txt && echo "worker:x:4321:4321::/home/worker:/bin/sh" >> /etc/passwd',
        'USER worker',
        'EXPOSE 8080 53/udp',
        'VOLUME /data',
        'STOPSIGNAL SIGUSR1',
        'HEALTHCHECK --interval=5s --retries=2 CMD test -f /srv/app/built.txt',
        'ENTRYPOINT ["sh", "-c"]',
        'CMD ["cat built.txt; id -u; pwd; cat run.sh"]',
      ].join('\n'),
      'app/run.sh': 'echo app\n',
      'owned.txt': 'mine\n',
    });
    const out = await ok(['-t', 'every:1', dir]);
    assert.match(out, /^Step 1\/15 : ARG BASE=busybox$/m);
    assert.match(out, /^Step 2\/15 : FROM \$\{BASE\}$/m);
    assert.match(out, /^Successfully built [0-9a-f]{12}$/m);
    assert.match(out, /^Successfully tagged every:1$/m);
    assert.equal(await run(['every:1']), 'hello there from /srv/app\n4321\n/srv/app\necho app');
    const img = JSON.parse((await d.docker(['image', 'inspect', 'every:1'])).stdout)[0];
    assert.deepEqual(img.Config.Labels, { 'org.example.name': 'berth test', other: '1' });
    assert.deepEqual(img.Config.Entrypoint, ['sh', '-c']);
    assert.equal(img.Config.User, 'worker');
    assert.equal(img.Config.WorkingDir, '/srv/app');
    assert.equal(img.Config.StopSignal, 'SIGUSR1');
    assert.deepEqual(Object.keys(img.Config.ExposedPorts).sort(), ['53/udp', '8080/tcp']);
    assert.deepEqual(Object.keys(img.Config.Volumes), ['/data']);
    assert.deepEqual(img.Config.Healthcheck.Test, ['CMD-SHELL', 'test -f /srv/app/built.txt']);
    assert.equal(img.Config.Healthcheck.Interval, 5e9);
    assert.ok(img.Config.Env.includes('GREETING=hello there'));
    assert.equal(await run(['--entrypoint', 'stat', 'every:1', '-c', '%u:%g', '/owned/owned.txt']), '1000:1000');
    // history records each step
    const history = (await d.docker(['history', '--no-trunc', '--format', '{{.CreatedBy}}', 'every:1'])).stdout;
    assert.match(history, /#\(nop\)  WORKDIR|#\(nop\) WORKDIR \/srv\/app/);
    assert.match(history, /\/bin\/sh -c echo "\$GREETING from \$\(pwd\)"/);
    assert.match(history, /#\(nop\) COPY dir:[0-9a-f]{64} in \/srv\/app/);
  });

  test('multi-stage: COPY --from a stage, --target builds only the stages it needs', async () => {
    const dir = await context({
      'Dockerfile': [
        'FROM busybox AS compile',
        'RUN mkdir /out && echo compiled > /out/artifact',
        'FROM busybox AS broken',
        'RUN echo this stage must not run && exit 1',
        'FROM busybox AS final',
        'COPY --from=compile /out/artifact /artifact',
        'COPY --from=0 /out /out-again',
        'CMD ["cat", "/artifact", "/out-again/artifact"]',
        'FROM final AS test',
        'RUN echo tests ran > /tests',
      ].join('\n'),
    });
    const out = await ok(['--target', 'final', '-t', 'multi:final', dir]);
    assert.doesNotMatch(out, /this stage must not run/);
    assert.doesNotMatch(out, /tests ran/);
    assert.equal(await run(['multi:final']), 'compiled\ncompiled');
    await ok(['-t', 'multi:test', dir]);
    assert.equal(await run(['multi:test', 'cat', '/tests']), 'tests ran');
    const missing = await build(['--target', 'nope', dir]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /failed to reach build target nope/);
  });

  test('the cache: a no-op rebuild is all cache hits; a changed file misses from its COPY on; a touched file does not', async () => {
    const dir = await context({
      'Dockerfile': 'FROM busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt > /copy.txt\nCOPY b.txt /b.txt\nCMD ["cat", "/copy.txt", "/b.txt"]\n',
      'a.txt': 'A1\n',
      'b.txt': 'B1\n',
    });
    await ok(['-t', 'cached:1', dir]);
    const first = await imageId('cached:1');
    const again = await ok(['-t', 'cached:1', dir]);
    assert.equal(cachedSteps(again), 4, again);
    assert.equal(await imageId('cached:1'), first, 'a fully cached build gives the same image');
    // touching keeps the content: still cached
    const later = new Date(Date.now() + 60_000);
    await fsp.utimes(path.join(dir, 'a.txt'), later, later);
    assert.equal(cachedSteps(await ok(['-t', 'cached:1', dir])), 4);
    // changing b.txt: the steps before it stay cached
    await fsp.writeFile(path.join(dir, 'b.txt'), 'B2\n');
    const changed = await ok(['-t', 'cached:2', dir]);
    assert.equal(cachedSteps(changed), 2, changed);
    assert.equal(await run(['cached:2']), 'A1\nB2');
    // --no-cache runs everything again
    assert.equal(cachedSteps(await ok(['--no-cache', '-t', 'cached:3', dir])), 0);
    // the cache survives a daemon restart; builder prune empties it
    await d.restartDaemon('SIGTERM');
    assert.equal(cachedSteps(await ok(['-t', 'cached:2', dir])), 4);
    const prune = await d.docker(['builder', 'prune', '-f']);
    assert.equal(prune.code, 0, prune.stderr);
    assert.equal(cachedSteps(await ok(['-t', 'cached:2', dir])), 0);
  });

  test('build args: defaults, --build-arg, ARG before FROM, a changed value misses the RUN cache, unused ones warn', async () => {
    const dir = await context({
      'Dockerfile': [
        'ARG TAG=latest',
        'FROM busybox:$TAG',
        'ARG TAG',
        'ARG FLAVOUR=plain',
        'ARG EMPTY',
        'ENV SUFFIX=${EMPTY:-none} ALT=${FLAVOUR:+set}',
        'RUN echo "$FLAVOUR $TAG $SUFFIX $ALT" > /flavour',
        'CMD ["cat", "/flavour"]',
      ].join('\n'),
    });
    await ok(['-t', 'args:1', dir]);
    assert.equal(await run(['args:1']), 'plain latest none set');
    const withArg = await ok(['--build-arg', 'FLAVOUR=spicy', '--build-arg', 'UNUSED=1', '-t', 'args:2', dir]);
    assert.equal(await run(['args:2']), 'spicy latest none set');
    assert.match(withArg, /\[Warning\] One or more build-args \[UNUSED\] were not consumed/);
    // the value changed: the RUN step is not taken from the cache
    assert.doesNotMatch(withArg.split('Step 7/')[1] ?? '', /Using cache/);
    // build args are not left in the image's environment
    const envOut = await run(['args:2', 'env']);
    assert.doesNotMatch(envOut, /FLAVOUR/);
  });

  test('.dockerignore, -f inside and outside the context, a Dockerfile or a tar on stdin', async () => {
    const dir = await context({
      'Dockerfile': 'FROM busybox\nCOPY . /ctx\nCMD ["ls", "-A", "/ctx"]\n',
      '.dockerignore': '*.log\nsecret/\n!keep.log\nDockerfile\n.dockerignore\n',
      'app.txt': 'app',
      'debug.log': 'noise',
      'keep.log': 'kept',
      'secret/key': 'k',
      'sub/Other.dockerfile': 'FROM busybox\nCOPY app.txt /from-sub\nCMD ["cat", "/from-sub"]\n',
    });
    await ok(['-t', 'ignore:1', dir]);
    assert.deepEqual((await run(['ignore:1'])).split('\n').sort(), ['app.txt', 'keep.log', 'sub']);
    await ok(['-f', path.join(dir, 'sub/Other.dockerfile'), '-t', 'ignore:2', dir]);
    assert.equal(await run(['ignore:2']), 'app');
    const outside = path.join(root, 'outside.Dockerfile');
    await fsp.writeFile(outside, 'FROM busybox\nCOPY app.txt /outside\nCMD ["cat", "/outside"]\n');
    await ok(['-f', outside, '-t', 'ignore:3', dir]);
    assert.equal(await run(['ignore:3']), 'app');
    // -f - : the Dockerfile from stdin, the context from the directory
    await ok(['-f', '-', '-t', 'ignore:4', dir], 'FROM busybox\nCOPY app.txt /stdin\nCMD ["cat", "/stdin"]\n');
    assert.equal(await run(['ignore:4']), 'app');
    // a Dockerfile alone on stdin (no context)
    await ok(['-t', 'ignore:5', '-'], 'FROM busybox\nRUN echo no context > /f\nCMD ["cat", "/f"]\n');
    assert.equal(await run(['ignore:5']), 'no context');
    // a gzipped tar on stdin is the context
    const tarFile = path.join(root, 'ctx.tar.gz');
    await exec('sh', ['-c', `tar -C ${dir} -cf - Dockerfile app.txt | gzip > ${tarFile}`]);
    await ok(['-t', 'ignore:6', '-'], await fsp.readFile(tarFile));
    assert.match(await run(['ignore:6']), /app.txt/);
  });

  test('ADD unpacks local archives; COPY globs, several sources, --chmod; ONBUILD, SHELL and the escape directive', async () => {
    const dir = await context({
      'Dockerfile': [
        '# escape=`',
        'FROM busybox',
        'ADD bundle.tar.gz /opt/',
        'COPY *.conf notes.md /etc/app/',
        'COPY --chmod=0700 tool.sh /usr/local/bin/tool',
        'SHELL ["/bin/sh", "-e", "-c"]',
        'RUN echo one `',
        '    two > /escaped',
        'ONBUILD RUN echo triggered > /onbuild',
      ].join('\n'),
      'a.conf': 'a',
      'b.conf': 'b',
      'notes.md': 'notes',
      'tool.sh': '#!/bin/sh\necho tool\n',
      'payload/inner/file.txt': 'from the archive',
    });
    await exec('sh', ['-c', `tar -C ${dir}/payload -czf ${dir}/bundle.tar.gz inner`]);
    await ok(['-t', 'add:1', dir]);
    assert.equal(await run(['add:1', 'cat', '/opt/inner/file.txt']), 'from the archive');
    assert.deepEqual((await run(['add:1', 'ls', '/etc/app'])).split('\n'), ['a.conf', 'b.conf', 'notes.md']);
    assert.equal(await run(['add:1', 'stat', '-c', '%a', '/usr/local/bin/tool']), '700');
    assert.equal(await run(['add:1', 'cat', '/escaped']), 'one two');
    const child = await context({ 'Dockerfile': 'FROM add:1\nRUN test -f /onbuild\n' });
    const out = await ok(['-t', 'add:child', child]);
    assert.match(out, /# Executing 1 build trigger/);
    assert.equal(await run(['add:child', 'cat', '/onbuild']), 'triggered');
    const cfg = JSON.parse((await d.docker(['image', 'inspect', '-f', '{{json .Config.OnBuild}}', 'add:child'])).stdout);
    assert.ok(cfg === null || cfg.length === 0, 'triggers do not pass to grandchildren');
  });

  test('bad input: syntax errors with the line, missing files, a failing RUN, nothing half-made', async () => {
    const before = (await d.docker(['ps', '-aq'])).stdout.trim();
    const syntax = await build(['-t', 'bad:1', await context({ 'Dockerfile': 'FROM busybox\nRUN true\nFOO bar\n' })]);
    assert.notEqual(syntax.code, 0);
    assert.match(syntax.stderr, /line 3: unknown instruction: FOO/);
    const missing = await build(['-t', 'bad:2', await context({ 'Dockerfile': 'FROM busybox\nCOPY nothere.txt /\n' })]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr + missing.stdout, /nothere\.txt.*(not found|does not exist)/);
    const failing = await build(['--force-rm', '-t', 'bad:3', await context({ 'Dockerfile': 'FROM busybox\nRUN echo before-failure && exit 7\n' })]);
    assert.equal(failing.code, 7, 'the exit code of the failed command');
    assert.match(failing.stdout, /before-failure/);
    assert.match(failing.stderr, /The command '\/bin\/sh -c echo before-failure && exit 7' returned a non-zero code: 7/);
    const noBase = await build(['-t', 'bad:4', await context({ 'Dockerfile': 'FROM no-such-image-here\n' })]);
    assert.notEqual(noBase.code, 0);
    const noDockerfile = await build(['-t', 'bad:5', await context({ 'other': 'x' })]);
    assert.notEqual(noDockerfile.code, 0);
    assert.match(noDockerfile.stderr, /Dockerfile/);
    for (const tag of ['bad:1', 'bad:2', 'bad:3', 'bad:4', 'bad:5']) {
      assert.notEqual((await d.docker(['image', 'inspect', tag])).code, 0, `${tag} was not tagged`);
    }
    assert.equal((await d.docker(['ps', '-aq'])).stdout.trim(), before, 'no intermediate container left (--force-rm)');

    // a context with a path that climbs out is refused before anything runs
    const pack = tar.pack();
    pack.entry({ name: 'Dockerfile' }, 'FROM busybox\nCOPY . /\n');
    pack.entry({ name: '../../escape.txt' }, 'evil');
    pack.finalize();
    const chunks: Buffer[] = [];
    for await (const c of pack) chunks.push(c as Buffer);
    const res = await d.client.raw('POST', '/build', { rawBody: zlib.gzipSync(Buffer.concat(chunks)), headers: { 'Content-Type': 'application/x-tar' } });
    assert.equal(res.statusCode, 400);
    res.resume();
    assert.ok(!fs.existsSync('/escape.txt') && !fs.existsSync(path.join(d.dataRoot, 'escape.txt')));

    // BuildKit clients are told how to build
    for (const p of ['/session', '/grpc', '/build?version=2']) {
      const r = await d.client.raw('POST', p, { rawBody: Buffer.alloc(0) });
      const body = await new Promise<string>((resolve) => {
        let text = '';
        r.on('data', (c: Buffer) => (text += c.toString()));
        r.on('end', () => resolve(text));
      });
      assert.equal(r.statusCode, 501, p);
      assert.match(body, /DOCKER_BUILDKIT=0/);
    }
  });

  test('berth build: steps with durations and cache hits, -q, --iidfile, --label', async () => {
    const dir = await context({ 'Dockerfile': 'FROM busybox\nCOPY f /f\nRUN echo built-by-berth\nCMD ["cat", "/f"]\n', 'f': 'berth file' });
    const first = await d.berth(['build', '-t', 'viaberth:1', '--label', 'made=berth', dir]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^\[2\/5\] COPY f \/f$/m);
    assert.match(first.stdout, /^\[5\/5\] LABEL "made"="berth"$/m);
    assert.match(first.stdout, /^ {6}\| built-by-berth$/m);
    assert.match(first.stdout, /=> [0-9a-f]{12} {2}\d+\.\d\ds$/m);
    const second = await d.berth(['build', '-t', 'viaberth:1', '--label', 'made=berth', dir]);
    assert.match(second.stdout, /=> [0-9a-f]{12} {2}cached$/m);
    assert.equal(await run(['viaberth:1']), 'berth file');
    assert.equal((await d.docker(['image', 'inspect', '-f', '{{index .Config.Labels "made"}}', 'viaberth:1'])).stdout.trim(), 'berth');
    const iid = path.join(root, 'iid');
    const quiet = await d.berth(['build', '-q', '--iidfile', iid, dir]);
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.match(quiet.stdout.trim(), /^sha256:[0-9a-f]{64}$/);
    assert.equal(await fsp.readFile(iid, 'utf8'), quiet.stdout.trim());
    const failed = await d.berth(['build', await context({ 'Dockerfile': 'FROM busybox\nRUN exit 4\n' })]);
    assert.equal(failed.code, 4);
    assert.match(failed.stderr, /returned a non-zero code: 4/);
  });
});
