/** run, create, start and attach: the commands that bring a container to life. */
import { ApiError, type EngineClient } from '../../client/client.js';
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

export const commands: Command[] = [runCommand, createCommand, startCommand, attachCommand];
