/** pull, push, login, logout, save, load, export: images to and from registries and archives. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command, CliContext } from '../cli.js';
import { CommandFailed } from '../cli.js';
import { authKey, registryAuthHeader, registryOfImage, removeCredentials, storeCredentials } from '../credentials.js';
import { renderProgress } from '../progress.js';

/** Splits "name:tag" / "name@digest" the way the Engine API wants them (fromImage + tag). */
function splitTag(image: string): { name: string; tag?: string } {
  const at = image.indexOf('@');
  if (at >= 0) return { name: image.slice(0, at), tag: image.slice(at + 1) };
  const colon = image.lastIndexOf(':');
  if (colon > image.lastIndexOf('/')) return { name: image.slice(0, colon), tag: image.slice(colon + 1) };
  return { name: image };
}

/** The name Docker prints after a pull: fully qualified. */
function qualified(image: string): string {
  const { name, tag } = splitTag(image);
  let full = name;
  if (registryOfImage(name) === 'docker.io') full = `docker.io/${name.includes('/') ? name : `library/${name}`}`;
  const sep = tag?.startsWith('sha256:') ? '@' : ':';
  return `${full}${sep}${tag ?? 'latest'}`;
}

/** Pulls through the daemon with the stored credentials, rendering the progress. Also used by run/create. */
export async function pull(ctx: CliContext, image: string, o: { quiet?: boolean; platform?: string; out?: NodeJS.WriteStream } = {}): Promise<void> {
  const client = ctx.client();
  const { name, tag } = splitTag(image);
  const res = await client.stream('POST', '/images/create', {
    query: { fromImage: name, tag: tag ?? 'latest', platform: o.platform || undefined },
    headers: { 'X-Registry-Auth': registryAuthHeader(name) },
  });
  await renderProgress(client, res, o.out ?? process.stdout, { quiet: o.quiet });
}

const pullCmd: Command = {
  name: 'pull',
  usage: 'pull [OPTIONS] NAME[:TAG|@DIGEST]',
  description: 'Download an image from a registry',
  flags: [
    { name: 'all-tags', short: 'a', type: 'bool', description: 'Download all tagged images in the repository' },
    { name: 'platform', type: 'string', description: 'Set platform if server is multi-platform capable' },
    { name: 'quiet', short: 'q', type: 'bool', description: 'Suppress verbose output' },
  ],
  minArgs: 1,
  maxArgs: 1,
  async run(ctx, f) {
    if (f.bool('all-tags')) throw new CommandFailed('berth: pull --all-tags is not supported; name each tag', 1);
    const image = f.args[0];
    await pull(ctx, image, { quiet: f.bool('quiet'), platform: f.string('platform') });
    ctx.out(qualified(image));
    return 0;
  },
};

const pushCmd: Command = {
  name: 'push',
  usage: 'push [OPTIONS] NAME[:TAG]',
  description: 'Upload an image to a registry',
  flags: [
    { name: 'all-tags', short: 'a', type: 'bool', description: 'Push all tags of an image to the repository' },
    { name: 'quiet', short: 'q', type: 'bool', description: 'Suppress verbose output' },
  ],
  minArgs: 1,
  maxArgs: 1,
  async run(ctx, f) {
    const { name, tag } = splitTag(f.args[0]);
    if (tag?.startsWith('sha256:')) throw new CommandFailed('berth: cannot push a digest reference', 1);
    if (f.bool('all-tags') && tag) throw new CommandFailed('berth: tag can\'t be used with --all-tags/-a', 1);
    const client = ctx.client();
    const res = await client.stream('POST', `/images/${encodeURIComponent(name)}/push`, {
      query: { tag: f.bool('all-tags') ? undefined : (tag ?? 'latest') },
      headers: { 'X-Registry-Auth': registryAuthHeader(name) },
    });
    const pushed: string[] = [];
    await renderProgress(client, res, process.stdout, { quiet: f.bool('quiet'), onAux: (aux) => pushed.push(String(aux.Tag)) });
    if (f.bool('quiet')) ctx.out(pushed.map((t) => `${name}:${t}`).join('\n'));
    return 0;
  },
};

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

const login: Command = {
  name: 'login',
  usage: 'login [OPTIONS] [SERVER]',
  description: 'Log in to a registry',
  flags: [
    { name: 'username', short: 'u', type: 'string', description: 'Username' },
    { name: 'password', short: 'p', type: 'string', description: 'Password' },
    { name: 'password-stdin', type: 'bool', description: 'Take the password from stdin' },
  ],
  maxArgs: 1,
  async run(ctx, f) {
    const server = f.args[0] ?? 'docker.io';
    const username = f.string('username');
    let password = f.string('password');
    if (f.bool('password-stdin')) {
      if (password) throw new CommandFailed('berth: --password and --password-stdin are mutually exclusive', 1);
      password = await readStdin();
    }
    if (!username || !password) throw new CommandFailed('berth: login needs --username and --password (or --password-stdin)', 1);
    if (f.string('password')) ctx.err('WARNING! Using --password via the CLI is insecure. Use --password-stdin.');
    const r = await ctx.client().json<{ Status: string }>('POST', '/auth', { body: { username, password, serveraddress: authKey(server) } });
    storeCredentials(server, username, password);
    ctx.out(r.Status || 'Login Succeeded');
    return 0;
  },
};

const logout: Command = {
  name: 'logout',
  usage: 'logout [SERVER]',
  description: 'Log out from a registry',
  flags: [],
  maxArgs: 1,
  async run(ctx, f) {
    const server = f.args[0] ?? 'docker.io';
    if (removeCredentials(server)) ctx.out(`Removing login credentials for ${authKey(server)}`);
    else ctx.out(`Not logged in to ${authKey(server)}`);
    return 0;
  },
};

/** Writes a download to -o atomically (temp file + rename), or to stdout unless it is a terminal. */
async function writeOutput(res: Readable, output: string | undefined, what: string): Promise<void> {
  if (!output) {
    if (process.stdout.isTTY) throw new CommandFailed(`berth: cowardly refusing to write the ${what} to a terminal; use -o or redirect`, 1);
    await pipeline(res, process.stdout);
    return;
  }
  const tmp = path.join(path.dirname(path.resolve(output)), `.${path.basename(output)}.${crypto.randomBytes(4).toString('hex')}`);
  try {
    await pipeline(res, fs.createWriteStream(tmp, { mode: 0o644 }));
    fs.renameSync(tmp, output);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw new CommandFailed(`berth: writing ${output} failed: ${(err as Error).message} (the daemon may have hit an error: see its log)`, 1);
  }
}

const save: Command = {
  name: 'save',
  usage: 'save [OPTIONS] IMAGE [IMAGE...]',
  description: 'Save one or more images to a tar archive (streamed to STDOUT by default)',
  flags: [{ name: 'output', short: 'o', type: 'string', description: 'Write to a file, instead of STDOUT' }],
  minArgs: 1,
  async run(ctx, f) {
    const res = await ctx.client().stream('GET', '/images/get', { query: { names: f.args } });
    await writeOutput(res, f.string('output') || undefined, 'archive');
    return 0;
  },
};

const load: Command = {
  name: 'load',
  usage: 'load [OPTIONS]',
  description: 'Load an image from a tar archive or STDIN',
  flags: [
    { name: 'input', short: 'i', type: 'string', description: 'Read from tar archive file, instead of STDIN' },
    { name: 'quiet', short: 'q', type: 'bool', description: 'Suppress the load output' },
  ],
  maxArgs: 0,
  async run(ctx, f) {
    const input = f.string('input');
    if (!input && process.stdin.isTTY) throw new CommandFailed('berth: requested load from stdin, but stdin is empty', 1);
    if (input && !fs.existsSync(input)) throw new CommandFailed(`open ${input}: no such file or directory`, 1);
    const body = input ? fs.createReadStream(input) : process.stdin;
    const client = ctx.client();
    // as the docker CLI: no layer progress unless stdout is a terminal; the names loaded are always printed
    const quiet = f.bool('quiet') || !process.stdout.isTTY;
    const res = await client.stream('POST', '/images/load', { query: { quiet }, rawBody: body as Readable, headers: { 'Content-Type': 'application/x-tar' } });
    await renderProgress(client, res, process.stdout, {});
    return 0;
  },
};

const exportCmd: Command = {
  name: 'export',
  usage: 'export [OPTIONS] CONTAINER',
  description: "Export a container's filesystem as a tar archive",
  flags: [{ name: 'output', short: 'o', type: 'string', description: 'Write to a file, instead of STDOUT' }],
  minArgs: 1,
  maxArgs: 1,
  async run(ctx, f) {
    const res = await ctx.client().stream('GET', `/containers/${encodeURIComponent(f.args[0])}/export`);
    await writeOutput(res, f.string('output') || undefined, 'archive');
    return 0;
  },
};

export const commands: Command[] = [pullCmd, pushCmd, login, logout, save, load, exportCmd];
