/**
 * berth build: Docker's flags; the context directory is sent as a tar with
 * .dockerignore applied (the Dockerfile and .dockerignore always go, as the
 * docker CLI does), a Dockerfile outside the context or from stdin is added
 * under a private name. Progress shows each step once with its duration and
 * whether the cache answered it.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import tar from 'tar-stream';
import type { Command } from '../cli.js';
import { CommandFailed } from '../cli.js';
import type { Flags } from '../flags.js';
import { UsageError, parseSize } from '../run-options.js';
import { dockerignoreMatcher, type IgnoreMatcher } from '../../util/dockerignore.js';
import { detectCompression } from '../../engine/archive/compression.js';
import { forEachJsonLine } from '../../client/json-lines.js';

/** Reads all of stdin. */
async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function isArchive(data: Buffer): boolean {
  return detectCompression(data.subarray(0, 8)) !== 'none' || (data.length >= 262 && data.subarray(257, 262).toString('latin1') === 'ustar');
}

/** The context directory as a tar stream; extra files (a Dockerfile from elsewhere) appended. */
function packContext(dir: string, ignore: IgnoreMatcher | undefined, keep: Set<string>, extra: { name: string; data: Buffer }[]): Readable {
  const pack = tar.pack();
  const hasExceptions = ignore !== undefined;
  const entry = (h: Partial<tar.Header> & { name: string }, body?: Buffer): Promise<void> =>
    new Promise((resolve, reject) => pack.entry(h as tar.Header, body ?? '', (err) => (err ? reject(err) : resolve())));
  const fileEntry = (h: Partial<tar.Header> & { name: string }, file: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const stream = pack.entry(h as tar.Header, (err) => (err ? reject(err) : resolve()));
      const src = fs.createReadStream(file);
      src.on('error', reject);
      src.pipe(stream);
    });
  const walk = async (rel: string): Promise<void> => {
    const names = (await fsp.readdir(path.join(dir, rel))).sort();
    for (const name of names) {
      const childRel = rel ? `${rel}/${name}` : name;
      const abs = path.join(dir, childRel);
      const st = await fsp.lstat(abs);
      const ignored = ignore?.ignores(childRel) && !keep.has(childRel);
      if (st.isDirectory()) {
        if (!ignored) await entry({ name: `${childRel}/`, type: 'directory', mode: st.mode & 0o7777, mtime: st.mtime, uid: 0, gid: 0 });
        // an ignored directory may still hold "!exception" files
        if (!ignored || hasExceptions) await walk(childRel);
        continue;
      }
      if (ignored) continue;
      const base = { name: childRel, mode: st.mode & 0o7777, mtime: st.mtime, uid: 0, gid: 0 };
      if (st.isSymbolicLink()) await entry({ ...base, type: 'symlink', linkname: await fsp.readlink(abs) });
      else if (st.isFile()) await fileEntry({ ...base, type: 'file', size: st.size }, abs);
    }
  };
  walk('')
    .then(async () => {
      for (const e of extra) await entry({ name: e.name, type: 'file', mode: 0o644, size: e.data.length, mtime: new Date(), uid: 0, gid: 0 }, e.data);
      pack.finalize();
    })
    .catch((err: Error) => pack.destroy(err));
  return pack as unknown as Readable;
}

interface Prepared {
  body: Readable;
  dockerfile: string;
}

async function prepareContext(f: Flags): Promise<Prepared> {
  const arg = f.args[0];
  const fileFlag = f.string('file');
  if (/^(https?|git):\/\//.test(arg) || arg.startsWith('git@')) {
    throw new CommandFailed('remote build contexts (URLs, git repositories) are not supported: clone or download it and build from a directory', 1);
  }
  if (arg === '-') {
    if (fileFlag === '-') throw new UsageError('invalid argument: can\'t use stdin for both build context and dockerfile');
    const data = await readStdin();
    if (isArchive(data)) {
      const body = new PassThrough();
      body.end(data);
      return { body, dockerfile: fileFlag };
    }
    // a Dockerfile alone: the context is just that file
    return { body: packContext(await emptyDir(), undefined, new Set(), [{ name: 'Dockerfile', data }]), dockerfile: 'Dockerfile' };
  }
  const dir = path.resolve(arg);
  const st = await fsp.stat(dir).catch(() => undefined);
  if (!st?.isDirectory()) throw new CommandFailed(`unable to prepare context: path "${arg}" not found`, 1);
  const ignoreText = await fsp.readFile(path.join(dir, '.dockerignore'), 'utf8').catch(() => undefined);
  const ignore = ignoreText !== undefined ? dockerignoreMatcher(ignoreText) : undefined;
  const extra: { name: string; data: Buffer }[] = [];
  let dockerfile = 'Dockerfile';
  if (fileFlag === '-') {
    dockerfile = `.dockerfile.${crypto.randomBytes(10).toString('hex')}`;
    extra.push({ name: dockerfile, data: await readStdin() });
  } else if (fileFlag) {
    // -f is relative to the current directory, as with the docker CLI
    const abs = path.resolve(fileFlag);
    const rel = path.relative(dir, abs);
    if (!fs.existsSync(abs)) throw new CommandFailed(`unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat ${abs}: no such file or directory`, 1);
    if (rel.startsWith('..') || path.isAbsolute(rel)) {
      dockerfile = `.dockerfile.${crypto.randomBytes(10).toString('hex')}`;
      extra.push({ name: dockerfile, data: await fsp.readFile(abs) });
    } else {
      dockerfile = rel.split(path.sep).join('/');
    }
  } else if (!fs.existsSync(path.join(dir, 'Dockerfile')) && fs.existsSync(path.join(dir, 'dockerfile'))) {
    dockerfile = 'dockerfile';
  }
  const keep = new Set(['.dockerignore', dockerfile]);
  return { body: packContext(dir, ignore, keep, extra), dockerfile };
}

async function emptyDir(): Promise<string> {
  const dir = await fsp.mkdtemp('/tmp/berth-build-');
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function keyValues(list: string[], what: string): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const item of list) {
    const i = item.indexOf('=');
    if (i === 0) throw new UsageError(`invalid ${what}: ${item}`);
    if (i < 0) out[item] = process.env[item] ?? null; // as the docker CLI: the value comes from the environment
    else out[item.slice(0, i)] = item.slice(i + 1);
  }
  return out;
}

/** Prints steps with their duration and cache status. */
class StepPrinter {
  private started = 0;
  private cached = false;
  private atLineStart = true;

  private write(text: string): void {
    process.stdout.write(text);
  }

  handle(text: string): void {
    const step = /^Step (\d+)\/(\d+) : ([\s\S]*?)\n?$/.exec(text);
    if (step) {
      this.finishStep();
      this.write(`[${step[1]}/${step[2]}] ${step[3]}\n`);
      this.started = performance.now();
      this.cached = false;
      return;
    }
    if (text === ' ---> Using cache\n') {
      this.cached = true;
      return;
    }
    const id = /^ ---> ([0-9a-f]{12})?\n$/.exec(text);
    if (id) {
      const seconds = ((performance.now() - this.started) / 1000).toFixed(2);
      if (!this.atLineStart) this.write('\n');
      this.write(`      => ${id[1] ?? 'scratch'}  ${this.cached ? 'cached' : `${seconds}s`}\n`);
      this.atLineStart = true;
      return;
    }
    if (/^ ---> Running in /.test(text) || /^Removing intermediate container /.test(text)) return;
    if (/^Successfully (built|tagged) /.test(text)) {
      this.finishStep();
      this.write(text);
      return;
    }
    // a RUN step's output, indented under its step
    const lines = text.split('\n');
    const out = lines.map((l, i) => (i === lines.length - 1 ? l : l + '\n'));
    for (const piece of out) {
      if (!piece) continue;
      this.write((this.atLineStart ? '      | ' : '') + piece);
      this.atLineStart = piece.endsWith('\n');
    }
  }

  private finishStep(): void {
    if (!this.atLineStart) {
      this.write('\n');
      this.atLineStart = true;
    }
  }
}

const build: Command = {
  name: 'build',
  usage: 'build [OPTIONS] PATH | URL | -',
  description: 'Build an image from a Dockerfile',
  flags: [
    { name: 'tag', short: 't', type: 'strings', description: 'Name and optionally a tag in the "name:tag" format' },
    { name: 'file', short: 'f', type: 'string', description: "Name of the Dockerfile (Default is 'PATH/Dockerfile')" },
    { name: 'build-arg', type: 'strings', description: 'Set build-time variables' },
    { name: 'label', type: 'strings', description: 'Set metadata for an image' },
    { name: 'no-cache', type: 'bool', description: 'Do not use cache when building the image' },
    { name: 'pull', type: 'bool', description: 'Always attempt to pull a newer version of the image' },
    { name: 'target', type: 'string', description: 'Set the target build stage to build.' },
    { name: 'quiet', short: 'q', type: 'bool', description: 'Suppress the build output and print image ID on success' },
    { name: 'iidfile', type: 'string', description: 'Write the image ID to the file' },
    { name: 'network', type: 'string', description: 'Set the networking mode for the RUN instructions during build' },
    { name: 'rm', type: 'bool', default: true, description: 'Remove intermediate containers after a successful build' },
    { name: 'force-rm', type: 'bool', description: 'Always remove intermediate containers' },
    { name: 'platform', type: 'string', description: 'Set platform if server is multi-platform capable' },
    { name: 'add-host', type: 'strings', description: 'Add a custom host-to-IP mapping (host:ip)' },
    { name: 'memory', short: 'm', type: 'string', description: 'Memory limit' },
    { name: 'memory-swap', type: 'string', description: "Swap limit equal to memory plus swap: '-1' to enable unlimited swap" },
    { name: 'cpu-shares', short: 'c', type: 'int', description: 'CPU shares (relative weight)' },
    { name: 'cpuset-cpus', type: 'string', description: 'CPUs in which to allow execution (0-3, 0,1)' },
    { name: 'shm-size', type: 'string', description: 'Size of /dev/shm' },
  ],
  minArgs: 1,
  maxArgs: 1,
  async run(ctx, f) {
    const { body, dockerfile } = await prepareContext(f);
    const labels = keyValues(f.strings('label'), 'label');
    const query: Record<string, string | string[] | boolean | number | undefined> = {
      t: f.strings('tag'),
      dockerfile,
      buildargs: JSON.stringify(keyValues(f.strings('build-arg'), 'build-arg')),
      labels: JSON.stringify(labels),
      nocache: f.bool('no-cache') || undefined,
      pull: f.bool('pull') || undefined,
      target: f.string('target') || undefined,
      q: f.bool('quiet') || undefined,
      rm: f.bool('rm'),
      forcerm: f.bool('force-rm') || undefined,
      networkmode: f.string('network') || undefined,
      platform: f.string('platform') || undefined,
      extrahosts: f.strings('add-host').join(',') || undefined,
      memory: f.changed('memory') ? parseSize(f.string('memory'), 'memory') : undefined,
      memswap: f.changed('memory-swap') ? (f.string('memory-swap') === '-1' ? -1 : parseSize(f.string('memory-swap'), 'memory-swap')) : undefined,
      cpushares: f.changed('cpu-shares') ? f.int('cpu-shares') : undefined,
      cpusetcpus: f.string('cpuset-cpus') || undefined,
      shmsize: f.changed('shm-size') ? parseSize(f.string('shm-size'), 'shm-size') : undefined,
    };
    const res = await ctx.client().stream('POST', '/build', { query, rawBody: body, headers: { 'Content-Type': 'application/x-tar' } });
    const printer = new StepPrinter();
    let imageId: string | undefined;
    let failure: { message: string; code: number } | undefined;
    const t0 = performance.now();
    type BuildMessage = { stream?: string; aux?: { ID?: string }; error?: string; errorDetail?: { message?: string; code?: number }; status?: string; id?: string };
    const handle = (m: BuildMessage): void => {
      if (m.errorDetail || m.error) {
        failure = { message: m.errorDetail?.message ?? m.error ?? 'build failed', code: m.errorDetail?.code || 1 };
      } else if (m.aux?.ID) {
        imageId = m.aux.ID;
      } else if (m.stream !== undefined && !f.bool('quiet')) {
        printer.handle(m.stream);
      } else if (m.status && !f.bool('quiet')) {
        // pull progress of a base image: one line per layer event
        if (!/^(Downloading|Extracting|Waiting)/.test(m.status)) process.stdout.write(`      ${m.id ? `${m.id}: ` : ''}${m.status}\n`);
      }
    };
    await forEachJsonLine(res, handle);
    if (failure) {
      ctx.err(failure.message);
      return failure.code;
    }
    if (!imageId) throw new CommandFailed('the daemon ended the build without an image ID', 1);
    if (f.string('iidfile')) await fsp.writeFile(f.string('iidfile'), imageId);
    if (f.bool('quiet')) ctx.out(imageId);
    else ctx.out(`Built ${imageId} in ${((performance.now() - t0) / 1000).toFixed(2)}s`);
    return 0;
  },
};

const builderPrune: Command = {
  name: 'builder prune',
  usage: 'builder prune [OPTIONS]',
  description: 'Remove build cache',
  flags: [
    { name: 'force', short: 'f', type: 'bool', description: 'Do not prompt for confirmation' },
    { name: 'all', short: 'a', type: 'bool', description: 'Remove all unused build cache, not just dangling ones' },
  ],
  maxArgs: 0,
  async run(ctx, f) {
    if (!f.bool('force')) {
      const { confirm } = await import('./lifecycle.js');
      if (!(await confirm(ctx, 'WARNING! This will remove all dangling build cache.\nAre you sure you want to continue?'))) return 0;
    }
    const r = await ctx.client().json<{ CachesDeleted: string[] | null; SpaceReclaimed: number }>('POST', '/build/prune', { query: { all: f.bool('all') || undefined } });
    if (r.CachesDeleted?.length) ctx.out(`Deleted build cache objects:\n${r.CachesDeleted.join('\n')}\n`);
    ctx.out(`Total reclaimed space: ${r.SpaceReclaimed}B`);
    return 0;
  },
};

export const commands: Command[] = [build, builderPrune];
