/** run, create, start and attach: the commands that bring a container to life. */
import fs from 'node:fs';
import { ApiError, type EngineClient } from '../../client/client.js';
import { FrameReader } from '../../server/stdcopy.js';
import type { Command, CliContext } from '../cli.js';
import { CommandFailed } from '../cli.js';
import type { Flags } from '../flags.js';
import { CREATE_FLAGS, RUN_ONLY_FLAGS, createBody } from '../run-options.js';
import { attachContainer, followTerminalSize } from '../attach.js';

interface ContainerInfo {
  Id: string;
  Config: { Tty: boolean; OpenStdin: boolean };
  State: { ExitCode: number; Running: boolean };
}

/** The exit code Docker's CLI derives from a start error. */
function startErrorCode(message: string): number {
  if (/executable file not found|no such file or directory/.test(message)) return 127;
  if (/permission denied/.test(message)) return 126;
  return 125;
}

async function createContainer(ctx: CliContext, f: Flags): Promise<{ id: string; image: string }> {
  const [image, ...cmd] = f.args;
  const { body, name } = createBody(f, image, cmd);
  const client = ctx.client();
  const create = (): Promise<{ Id: string; Warnings: string[] | null }> =>
    client.json('POST', '/containers/create', { body, query: { name, platform: f.string('platform') || undefined } });
  let res: { Id: string; Warnings: string[] | null };
  try {
    res = await create();
  } catch (err) {
    if (err instanceof ApiError && err.status === 404 && /No such image/.test(err.message) && f.string('pull') !== 'never') {
      ctx.err(`Unable to find image '${image}' locally`);
      await pullImage(ctx, image, f.bool('quiet'));
      res = await create();
    } else throw err;
  }
  for (const w of res.Warnings ?? []) if (w) ctx.err(`WARNING: ${w}`);
  return { id: res.Id, image };
}

/** Pulls through the daemon (with stored credentials), progress on stderr as docker run does. */
export async function pullImage(ctx: CliContext, image: string, quiet: boolean): Promise<void> {
  const { pull } = await import('./distribution.js');
  await pull(ctx, image, { quiet, out: process.stderr });
}

const runCommand: Command = {
  name: 'run',
  usage: 'run [OPTIONS] IMAGE [COMMAND] [ARG...]',
  description: 'Create and run a new container from an image',
  flags: [...CREATE_FLAGS, ...RUN_ONLY_FLAGS],
  interspersed: false,
  minArgs: 1,
  errorCode: 125,
  async run(ctx, f) {
    const client = ctx.client();
    const detach = f.bool('detach');
    const { id } = await createContainer(ctx, f);
    const tty = f.bool('tty');
    const interactive = f.bool('interactive');
    if (tty && interactive && !process.stdin.isTTY) {
      throw new CommandFailed('berth: the input device is not a TTY', 1);
    }
    if (detach) {
      await startOrFail(client, id);
      ctx.out(id);
      return 0;
    }
    const attachTo = f.strings('attach').map((s) => s.toLowerCase());
    const streams = attachTo.length
      ? { stdin: attachTo.includes('stdin'), stdout: attachTo.includes('stdout'), stderr: attachTo.includes('stderr') }
      : { stdin: interactive, stdout: true, stderr: true };
    const attached = await attachContainer(client, id, { ...streams, tty });
    // The wait goes out before the start so that a fast exit is not missed.
    const waitRes = await client.raw('POST', `/containers/${id}/wait`, { query: { condition: f.bool('rm') ? 'removed' : 'next-exit' } });
    const waitBody = readBody(waitRes);
    const stopProxy = f.bool('sig-proxy') && !tty ? proxySignals(client, id) : () => {};
    try {
      await startOrFail(client, id);
    } catch (err) {
      attached.close();
      stopProxy();
      throw err;
    }
    const stopResize = tty ? followTerminalSize(client, id) : () => {};
    await attached.done;
    stopResize();
    stopProxy();
    const text = await waitBody;
    try {
      const status = JSON.parse(text) as { StatusCode: number; Error?: { Message: string } | null };
      if (status.Error?.Message) ctx.err(`Error waiting for container: ${status.Error.Message}`);
      return status.StatusCode;
    } catch {
      return 125;
    }
  },
};

async function readBody(res: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function startOrFail(client: EngineClient, id: string): Promise<void> {
  try {
    await client.call('POST', `/containers/${id}/start`);
  } catch (err) {
    if (err instanceof ApiError) {
      throw new CommandFailed(`berth: Error response from daemon: ${err.message}.`, startErrorCode(err.message));
    }
    throw err;
  }
}

function proxySignals(client: EngineClient, id: string): () => void {
  const handlers: [NodeJS.Signals, () => void][] = (['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as NodeJS.Signals[]).map(
    (sig) => [sig, () => void client.call('POST', `/containers/${id}/kill`, { query: { signal: sig } }).catch(() => {})],
  );
  for (const [sig, h] of handlers) process.on(sig, h);
  return () => {
    for (const [sig, h] of handlers) process.off(sig, h);
  };
}

const createCommand: Command = {
  name: 'create',
  usage: 'create [OPTIONS] IMAGE [COMMAND] [ARG...]',
  description: 'Create a new container',
  flags: CREATE_FLAGS,
  interspersed: false,
  minArgs: 1,
  errorCode: 125,
  async run(ctx, f) {
    const { id } = await createContainer(ctx, f);
    ctx.out(id);
    return 0;
  },
};

const startCommand: Command = {
  name: 'start',
  usage: 'start [OPTIONS] CONTAINER [CONTAINER...]',
  description: 'Start one or more stopped containers',
  flags: [
    { name: 'attach', short: 'a', type: 'bool', description: 'Attach STDOUT/STDERR and forward signals' },
    { name: 'interactive', short: 'i', type: 'bool', description: "Attach container's STDIN" },
    { name: 'detach-keys', type: 'string', description: 'Override the key sequence for detaching a container' },
  ],
  minArgs: 1,
  async run(ctx, f) {
    const client = ctx.client();
    if (f.bool('attach') || f.bool('interactive')) {
      if (f.args.length > 1) throw new CommandFailed('berth: you cannot start and attach multiple containers at once', 1);
      const info = await client.json<ContainerInfo>('GET', `/containers/${encodeURIComponent(f.args[0])}/json`);
      const tty = info.Config.Tty;
      const attached = await attachContainer(client, info.Id, { stdin: f.bool('interactive') && info.Config.OpenStdin, stdout: true, stderr: true, tty });
      const waitRes = await client.raw('POST', `/containers/${info.Id}/wait`, { query: { condition: 'next-exit' } });
      const waitBody = readBody(waitRes);
      await startOrFail(client, info.Id);
      const stopResize = tty ? followTerminalSize(client, info.Id) : () => {};
      await attached.done;
      stopResize();
      const status = JSON.parse(await waitBody) as { StatusCode: number };
      return status.StatusCode;
    }
    const failed: string[] = [];
    for (const name of f.args) {
      try {
        await client.call('POST', `/containers/${encodeURIComponent(name)}/start`);
        ctx.out(name);
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        failed.push(name);
        ctx.err(`Error response from daemon: ${err.message}`);
      }
    }
    if (failed.length) throw new CommandFailed(`Error: failed to start containers: ${failed.join(', ')}`, 1);
    return 0;
  },
};

const attachCommand: Command = {
  name: 'attach',
  usage: 'attach [OPTIONS] CONTAINER',
  description: 'Attach local standard input, output, and error streams to a running container',
  flags: [
    { name: 'no-stdin', type: 'bool', description: 'Do not attach STDIN' },
    { name: 'sig-proxy', type: 'bool', default: true, description: 'Proxy all received signals to the process' },
    { name: 'detach-keys', type: 'string', description: 'Override the key sequence for detaching a container' },
  ],
  minArgs: 1,
  maxArgs: 1,
  async run(ctx, f) {
    const client = ctx.client();
    const info = await client.json<ContainerInfo>('GET', `/containers/${encodeURIComponent(f.args[0])}/json`);
    if (!info.State.Running) throw new CommandFailed('You cannot attach to a stopped container, start it first', 1);
    const tty = info.Config.Tty;
    const attached = await attachContainer(client, info.Id, {
      stdin: !f.bool('no-stdin') && info.Config.OpenStdin,
      stdout: true,
      stderr: true,
      tty,
    });
    const stopResize = tty ? followTerminalSize(client, info.Id) : () => {};
    const stopProxy = f.bool('sig-proxy') && !tty ? proxySignals(client, info.Id) : () => {};
    await attached.done;
    stopResize();
    stopProxy();
    const after = await client.json<ContainerInfo>('GET', `/containers/${info.Id}/json`).catch(() => undefined);
    return after && !after.State.Running ? after.State.ExitCode : 0;
  },
};

const execCommand: Command = {
  name: 'exec',
  usage: 'exec [OPTIONS] CONTAINER COMMAND [ARG...]',
  description: 'Execute a command in a running container',
  flags: [
    { name: 'detach', short: 'd', type: 'bool', description: 'Detached mode: run command in the background' },
    { name: 'interactive', short: 'i', type: 'bool', description: 'Keep STDIN open even if not attached' },
    { name: 'tty', short: 't', type: 'bool', description: 'Allocate a pseudo-TTY' },
    { name: 'user', short: 'u', type: 'string', description: 'Username or UID (format: "<name|uid>[:<group|gid>]")' },
    { name: 'workdir', short: 'w', type: 'string', description: 'Working directory inside the container' },
    { name: 'env', short: 'e', type: 'strings', description: 'Set environment variables' },
    { name: 'env-file', type: 'strings', description: 'Read in a file of environment variables' },
    { name: 'privileged', type: 'bool', description: 'Give extended privileges to the command' },
    { name: 'detach-keys', type: 'string', description: 'Override the key sequence for detaching a container' },
  ],
  interspersed: false,
  minArgs: 2,
  errorCode: 126,
  async run(ctx, f) {
    const client = ctx.client();
    const [container, ...cmd] = f.args;
    const tty = f.bool('tty');
    const interactive = f.bool('interactive');
    const detach = f.bool('detach');
    const env = [...f.strings('env-file').flatMap((file) => readEnvFile(file)), ...f.strings('env')];
    const size: [number, number] | undefined = tty && process.stdout.isTTY ? [process.stdout.rows ?? 0, process.stdout.columns ?? 0] : undefined;
    const { Id } = await client.json<{ Id: string }>('POST', `/containers/${encodeURIComponent(container)}/exec`, {
      body: {
        AttachStdin: interactive && !detach,
        AttachStdout: !detach,
        AttachStderr: !detach,
        Tty: tty,
        Cmd: cmd,
        Env: env,
        User: f.string('user') || undefined,
        WorkingDir: f.string('workdir') || undefined,
        Privileged: f.bool('privileged'),
        DetachKeys: f.string('detach-keys') || undefined,
        ConsoleSize: size,
      },
    });
    if (detach) {
      await client.call('POST', `/exec/${Id}/start`, { body: { Detach: true, Tty: tty } });
      return 0;
    }
    const { socket, head } = await client.hijack('POST', `/exec/${Id}/start`, { body: { Detach: false, Tty: tty, ConsoleSize: size } });
    const reader = tty ? undefined : new FrameReader((st, d) => (st === 2 ? process.stderr : process.stdout).write(d));
    const onData = (chunk: Buffer): void => {
      if (reader) reader.push(chunk);
      else process.stdout.write(chunk);
    };
    if (head.length) onData(head);
    socket.on('data', onData);
    let restore = (): void => {};
    if (interactive) {
      const stdin = process.stdin;
      const raw = tty && stdin.isTTY;
      if (raw) stdin.setRawMode(true);
      const forward = (b: Buffer): void => void socket.write(b);
      const endInput = (): void => void socket.end();
      stdin.on('data', forward);
      stdin.on('end', endInput);
      stdin.resume();
      restore = () => {
        stdin.off('data', forward);
        stdin.off('end', endInput);
        if (raw) stdin.setRawMode(false);
        stdin.pause();
      };
    } else socket.end();
    let stopResize = (): void => {};
    if (tty && process.stdout.isTTY) {
      const resize = (): void => void client.call('POST', `/exec/${Id}/resize`, { query: { h: process.stdout.rows, w: process.stdout.columns } }).catch(() => {});
      resize();
      process.stdout.on('resize', resize);
      stopResize = () => process.stdout.off('resize', resize);
    }
    await new Promise<void>((resolve) => {
      socket.on('end', resolve);
      socket.on('close', resolve);
      socket.on('error', resolve);
    });
    restore();
    stopResize();
    const info = await client.json<{ ExitCode: number | null; Running: boolean }>('GET', `/exec/${Id}/json`);
    return info.ExitCode ?? 0;
  },
};

function readEnvFile(file: string): string[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.replace(/\r$/, ''))
    .filter((l) => l.trim() && !l.trimStart().startsWith('#'));
}

export const commands: Command[] = [runCommand, createCommand, startCommand, attachCommand, execCommand];
