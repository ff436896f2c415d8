/**
 * The berth CLI: global flags (-H, BERTH_HOST, DOCKER_HOST), the command
 * table (Docker's names, including `container ...` and `image ...` forms),
 * and one way of printing errors and choosing exit codes.
 */
import { ApiError, EngineClient } from '../client/client.js';
import { BERTH_VERSION } from '../api/version.js';
import { FlagError, type FlagSpec, type Flags, flagHelp, parseFlags } from './flags.js';
import { UsageError } from './run-options.js';

export const DEFAULT_HOST = 'unix:///run/berth/berth.sock';

export interface CliContext {
  client(): EngineClient;
  out(text: string): void;
  err(text: string): void;
}

export interface Command {
  name: string;
  usage: string;
  description: string;
  flags: FlagSpec[];
  /** false: flags stop at the first argument (run, create, exec). */
  interspersed?: boolean;
  minArgs?: number;
  maxArgs?: number;
  /** Exit code for daemon errors (run uses 125). */
  errorCode?: number;
  run(ctx: CliContext, f: Flags): Promise<number>;
}

export class CommandFailed extends Error {
  constructor(
    message: string,
    readonly code = 1,
  ) {
    super(message);
  }
}

const GLOBAL_FLAGS: FlagSpec[] = [
  { name: 'host', short: 'H', type: 'strings', description: 'Daemon socket to connect to' },
  { name: 'debug', short: 'D', type: 'bool', description: 'Enable debug mode' },
  { name: 'log-level', short: 'l', type: 'string', default: 'info', description: 'Set the logging level' },
  { name: 'config', type: 'string', description: 'Location of client config files' },
  { name: 'context', short: 'c', type: 'string', description: 'Name of the context to use' },
  { name: 'version', short: 'v', type: 'bool', description: 'Print version information and quit' },
  { name: 'help', type: 'bool', description: 'Print usage' },
];

/** Which module holds each command, so a command loads only its own code. */
const COMMAND_MODULES: Record<string, () => Promise<{ commands: Command[] }>> = {
  run: () => import('./commands/run.js'),
  create: () => import('./commands/run.js'),
  start: () => import('./commands/run.js'),
  attach: () => import('./commands/run.js'),
  exec: () => import('./commands/run.js'),
  build: () => import('./commands/build.js'),
  'builder prune': () => import('./commands/build.js'),
  update: () => import('./commands/modify.js'),
  commit: () => import('./commands/modify.js'),
  images: () => import('./commands/images.js'),
  import: () => import('./commands/images.js'),
  tag: () => import('./commands/images.js'),
  rmi: () => import('./commands/images.js'),
  history: () => import('./commands/images.js'),
  'image prune': () => import('./commands/images.js'),
  pull: () => import('./commands/distribution.js'),
  push: () => import('./commands/distribution.js'),
  login: () => import('./commands/distribution.js'),
  logout: () => import('./commands/distribution.js'),
  save: () => import('./commands/distribution.js'),
  load: () => import('./commands/distribution.js'),
  export: () => import('./commands/distribution.js'),
  version: () => import('./commands/system.js'),
  info: () => import('./commands/system.js'),
  events: () => import('./commands/system.js'),
  'system df': () => import('./commands/system.js'),
  'network create': () => import('./commands/network.js'),
  'network ls': () => import('./commands/network.js'),
  'network inspect': () => import('./commands/network.js'),
  'network rm': () => import('./commands/network.js'),
  'network prune': () => import('./commands/network.js'),
  'network connect': () => import('./commands/network.js'),
  'network disconnect': () => import('./commands/network.js'),
  port: () => import('./commands/network.js'),
  'volume create': () => import('./commands/volume.js'),
  'volume ls': () => import('./commands/volume.js'),
  'volume inspect': () => import('./commands/volume.js'),
  'volume rm': () => import('./commands/volume.js'),
  'volume prune': () => import('./commands/volume.js'),
  cp: () => import('./commands/files.js'),
  top: () => import('./commands/files.js'),
  diff: () => import('./commands/files.js'),
  stats: () => import('./commands/files.js'),
};

async function loadCommand(name: string): Promise<Command | undefined> {
  const load = COMMAND_MODULES[name] ?? (() => import('./commands/lifecycle.js'));
  return (await load()).commands.find((c) => c.name === name);
}

/** `container ls` and friends map onto the top-level commands. */
const MANAGEMENT: Record<string, Record<string, string>> = {
  container: {
    port: 'port',
    ls: 'ps', list: 'ps', ps: 'ps', run: 'run', create: 'create', start: 'start', stop: 'stop', restart: 'restart',
    kill: 'kill', rm: 'rm', remove: 'rm', logs: 'logs', inspect: 'container inspect', wait: 'wait', rename: 'rename',
    pause: 'pause', unpause: 'unpause', prune: 'container prune', attach: 'attach', export: 'export', top: 'top', exec: 'exec',
    update: 'update', commit: 'commit', cp: 'cp', diff: 'diff', stats: 'stats',
  },
  image: {
    ls: 'images', list: 'images', rm: 'rmi', remove: 'rmi', tag: 'tag', history: 'history', import: 'import',
    inspect: 'image inspect', prune: 'image prune', build: 'build', pull: 'pull', push: 'push', save: 'save', load: 'load',
  },
  system: { info: 'info', df: 'system df', events: 'events' },
  builder: { prune: 'builder prune', build: 'build' },
  volume: {
    create: 'volume create', ls: 'volume ls', list: 'volume ls', inspect: 'volume inspect', rm: 'volume rm', remove: 'volume rm',
    prune: 'volume prune',
  },
  network: {
    create: 'network create', ls: 'network ls', list: 'network ls', inspect: 'network inspect', rm: 'network rm',
    remove: 'network rm', prune: 'network prune', connect: 'network connect', disconnect: 'network disconnect',
  },
};

const TOP_USAGE = `Usage:  berth [OPTIONS] COMMAND

A container engine with Docker's commands

Common Commands:
  run         Create and run a new container from an image
  ps          List containers
  build       Build an image from a Dockerfile
  images      List images
  pull        Download an image from a registry
  push        Upload an image to a registry
  import      Import the contents from a tarball to create a filesystem image
  version     Show the Berth version information
  info        Display system-wide information

Management Commands:
  container   Manage containers
  builder     Manage builds
  image       Manage images
  network     Manage networks
  volume      Manage volumes
  registry    Run an OCI registry server
  system      Manage Berth

Commands:
  create      Create a new container
  start       Start one or more stopped containers
  stop        Stop one or more running containers
  restart     Restart one or more containers
  kill        Kill one or more running containers
  rm          Remove one or more containers
  logs        Fetch the logs of a container
  inspect     Return low-level information on Berth objects
  wait        Block until one or more containers stop, then print their exit codes
  rename      Rename a container
  pause       Pause all processes within one or more containers
  unpause     Unpause all processes within one or more containers
  attach      Attach local standard input, output, and error streams to a running container
  exec        Execute a command in a running container
  port        List port mappings or a specific mapping for the container
  update      Update configuration of one or more containers
  commit      Create a new image from a container's changes
  cp          Copy files/folders between a container and the local filesystem
  top         Display the running processes of a container
  diff        Inspect changes to files or directories on a container's filesystem
  stats       Display a live stream of container(s) resource usage statistics
  tag         Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
  rmi         Remove one or more images
  history     Show the history of an image
  events      Get real time events from the server
  login       Log in to a registry
  logout      Log out from a registry
  save        Save one or more images to a tar archive
  load        Load an image from a tar archive or STDIN
  export      Export a container's filesystem as a tar archive

Global Options:
${flagHelp(GLOBAL_FLAGS)}

Run 'berth COMMAND --help' for more information on a command.
`;

function commandHelp(c: Command): string {
  return `Usage:  berth ${c.usage}\n\n${c.description}\n\nOptions:\n${flagHelp(c.flags)}\n`;
}

export async function runCli(argv: string[]): Promise<number> {
  let globals: Flags;
  try {
    globals = parseFlags(argv, GLOBAL_FLAGS, false);
  } catch (err) {
    process.stderr.write(`berth: ${(err as Error).message}\nSee 'berth --help'.\n`);
    return 125;
  }
  if (globals.bool('version')) {
    process.stdout.write(`Berth version ${BERTH_VERSION}\n`);
    return 0;
  }
  let args = globals.args;
  if (globals.bool('help') || args.length === 0 || args[0] === 'help') {
    process.stdout.write(TOP_USAGE);
    return 0;
  }
  let name = args[0];
  args = args.slice(1);
  const group = MANAGEMENT[name];
  if (group) {
    const sub = args[0];
    if (!sub || sub === '--help') {
      process.stdout.write(`Usage:  berth ${name} COMMAND\n\nCommands:\n${Object.keys(group).map((k) => `  ${k}`).join('\n')}\n`);
      return sub ? 0 : 1;
    }
    const target = group[sub];
    if (!target) {
      process.stderr.write(`berth: '${name} ${sub}' is not a berth command.\nSee 'berth ${name} --help'\n`);
      return 1;
    }
    name = target;
    args = args.slice(1);
  }
  if (name === 'ls' || name === 'list') name = 'ps';
  const cmd = await loadCommand(name);
  if (!cmd) {
    process.stderr.write(`berth: '${name}' is not a berth command.\nSee 'berth --help'\n`);
    return 1;
  }

  const hosts = globals.strings('host');
  const host = hosts[hosts.length - 1] || process.env.BERTH_HOST || process.env.DOCKER_HOST || DEFAULT_HOST;
  let client: EngineClient | undefined;
  const ctx: CliContext = {
    client: () => (client ??= new EngineClient(host)),
    out: (t) => process.stdout.write(t.endsWith('\n') || t === '' ? t : t + '\n'),
    err: (t) => process.stderr.write(t.endsWith('\n') ? t : t + '\n'),
  };
  try {
    const f = parseFlags(args, [...cmd.flags, ...(cmd.flags.some((s) => s.name === 'help') ? [] : [{ name: 'help', type: 'bool' as const, description: 'Print usage' }])], cmd.interspersed ?? true);
    if (f.bool('help')) {
      process.stdout.write(commandHelp(cmd));
      return 0;
    }
    if ((cmd.minArgs !== undefined && f.args.length < cmd.minArgs) || (cmd.maxArgs !== undefined && f.args.length > cmd.maxArgs)) {
      const need =
        cmd.minArgs === cmd.maxArgs
          ? `exactly ${cmd.minArgs} argument${cmd.minArgs === 1 ? '' : 's'}`
          : f.args.length < (cmd.minArgs ?? 0)
            ? `at least ${cmd.minArgs} argument${cmd.minArgs === 1 ? '' : 's'}`
            : `at most ${cmd.maxArgs} argument${cmd.maxArgs === 1 ? '' : 's'}`;
      process.stderr.write(`berth: '${name}' requires ${need}.\nSee 'berth ${name} --help'.\n\nUsage:  berth ${cmd.usage}\n\n${cmd.description}\n`);
      return 1;
    }
    return await cmd.run(ctx, f);
  } catch (err) {
    return reportError(err, cmd);
  } finally {
    client?.close();
  }
}

function reportError(err: unknown, cmd: Command): number {
  if (err instanceof FlagError || err instanceof UsageError) {
    process.stderr.write(`berth: ${err.message}\nSee 'berth ${cmd.name} --help'.\n`);
    return 125;
  }
  if (err instanceof Error && err.name === 'TemplateError') {
    process.stderr.write(`template parsing error: ${err.message}\n`);
    return 1;
  }
  if (err instanceof CommandFailed) {
    if (err.message) process.stderr.write(err.message.endsWith('\n') ? err.message : `${err.message}\n`);
    return err.code;
  }
  if (err instanceof ApiError) {
    const prefix = cmd.errorCode === 125 ? 'berth: ' : '';
    process.stderr.write(`${prefix}Error response from daemon: ${err.message}\n`);
    return cmd.errorCode ?? 1;
  }
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'EACCES') {
    const address = (err as { address?: string }).address ?? '';
    process.stderr.write(
      `Cannot connect to the Berth daemon at unix://${address}. Is the berth daemon running?\n`,
    );
    return cmd.errorCode ?? 1;
  }
  process.stderr.write(`berth: ${(err as Error).message ?? String(err)}\n`);
  return cmd.errorCode ?? 1;
}
