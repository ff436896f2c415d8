/**
 * `berth registry ...`: `serve` runs the OCI Distribution registry until
 * SIGTERM/SIGINT; `gc` collects garbage, through the serving process when
 * one owns the root (online, no read-only window), else directly.
 */
import path from 'node:path';
import { BerthError, errorMessage } from '../core/errdefs/index.js';
import { Logger } from '../util/log.js';
import { DEFAULT_CONFIG, type RegistryConfig, loadConfigFile, parseDuration, parseSize } from './config.js';
import { GarbageCollector, type GcReport } from './gc.js';
import { Registry } from './registry.js';
import { RootLock, requestOwner } from './root-lock.js';

const USAGE = `Usage: berth registry COMMAND

Commands:
  serve   Run the registry server
  gc      Remove unreferenced blobs and untagged manifests

berth registry serve --root DIR [--addr HOST:PORT] [options]
  --root DIR                 storage root (created if missing)
  --addr HOST:PORT           listen address (default 127.0.0.1:5000; port 0 picks one)
  --config FILE              JSON config file; flags override it
  --htpasswd FILE            bcrypt htpasswd file: enables Basic auth
  --token-auth               serve /token and challenge with Bearer (needs --htpasswd)
  --token-realm URL          token endpoint URL to advertise (default: from the request's Host)
  --token-service NAME       service name in tokens (default berth-registry)
  --token-expiry DURATION    access token lifetime (default 5m)
  --anonymous-pull           allow pulls without credentials
  --tls-cert FILE --tls-key FILE   serve HTTPS
  --disable-delete           refuse DELETE of manifests, tags and blobs (405)
  --max-manifest-size SIZE   largest manifest accepted (default 4m; 413 above)
  --gc-interval DURATION     collect garbage periodically while serving (default off)
  --gc-grace DURATION        keep unreferenced content younger than this (default 1h)
  --gc-keep-untagged         do not collect untagged manifests
  --upload-purge-after DURATION   remove uploads abandoned this long (default 24h)
  --log-level LEVEL          debug, info, warn, error (default info)

berth registry gc --root DIR [--dry-run] [--grace DURATION] [--keep-untagged] [--json] [--config FILE]
`;

class UsageError extends Error {}

interface ParsedArgs {
  flags: Map<string, string>;
  switches: Set<string>;
}

const VALUE_FLAGS = new Set([
  'root', 'addr', 'config', 'htpasswd', 'token-realm', 'token-service', 'token-expiry', 'tls-cert', 'tls-key',
  'max-manifest-size', 'gc-interval', 'gc-grace', 'grace', 'upload-purge-after', 'log-level',
]);

function parseArgs(argv: string[], allowed: Set<string>): ParsedArgs {
  const flags = new Map<string, string>();
  const switches = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h') {
      switches.add('help');
      continue;
    }
    if (!arg.startsWith('--')) throw new UsageError(`unexpected argument ${JSON.stringify(arg)}`);
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    if (!allowed.has(name)) throw new UsageError(`unknown flag --${name}`);
    if (VALUE_FLAGS.has(name)) {
      const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
      if (value === undefined || value === '') throw new UsageError(`flag --${name} needs a value`);
      flags.set(name, value);
    } else {
      if (eq >= 0) throw new UsageError(`flag --${name} takes no value`);
      switches.add(name);
    }
  }
  return { flags, switches };
}

async function buildConfig(args: ParsedArgs): Promise<RegistryConfig> {
  const file = args.flags.get('config');
  const fromFile: Partial<RegistryConfig> = file === undefined ? {} : await loadConfigFile(file);
  const f = args.flags;
  const root = f.get('root') ?? fromFile.root;
  if (root === undefined) throw new UsageError('--root is required');
  const config: RegistryConfig = {
    ...DEFAULT_CONFIG,
    ...fromFile,
    root: path.resolve(root),
    gc: { ...DEFAULT_CONFIG.gc, ...fromFile.gc },
    auth: { ...DEFAULT_CONFIG.auth, ...fromFile.auth },
  };
  if (f.has('addr')) config.addr = f.get('addr')!;
  if (f.has('log-level')) config.logLevel = f.get('log-level')!;
  if (f.has('htpasswd')) config.auth.htpasswd = path.resolve(f.get('htpasswd')!);
  if (args.switches.has('anonymous-pull')) config.auth.anonymousPull = true;
  if (args.switches.has('token-auth') || f.has('token-realm') || f.has('token-service') || f.has('token-expiry')) {
    config.auth.token = {
      service: 'berth-registry',
      issuer: 'berth-registry',
      expirySeconds: 300,
      refreshExpirySeconds: 30 * 86400,
      ...config.auth.token,
    };
    if (f.has('token-realm')) config.auth.token.realm = f.get('token-realm')!;
    if (f.has('token-service')) config.auth.token.service = f.get('token-service')!;
    if (f.has('token-expiry')) config.auth.token.expirySeconds = Math.round(parseDuration(f.get('token-expiry')!, '--token-expiry') / 1000);
  }
  const cert = f.get('tls-cert');
  const key = f.get('tls-key');
  if ((cert === undefined) !== (key === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
  if (cert !== undefined && key !== undefined) config.tls = { cert, key };
  if (args.switches.has('disable-delete')) config.deleteEnabled = false;
  if (f.has('max-manifest-size')) config.maxManifestBytes = parseSize(f.get('max-manifest-size')!, '--max-manifest-size');
  if (f.has('gc-interval')) config.gc.intervalMs = parseDuration(f.get('gc-interval')!, '--gc-interval');
  if (f.has('gc-grace')) config.gc.graceMs = parseDuration(f.get('gc-grace')!, '--gc-grace');
  if (f.has('grace')) config.gc.graceMs = parseDuration(f.get('grace')!, '--grace');
  if (args.switches.has('gc-keep-untagged') || args.switches.has('keep-untagged')) config.gc.deleteUntagged = false;
  if (f.has('upload-purge-after')) config.uploadPurgeAfterMs = parseDuration(f.get('upload-purge-after')!, '--upload-purge-after');
  return config;
}

async function serve(argv: string[]): Promise<number> {
  const args = parseArgs(argv, new Set([...VALUE_FLAGS].filter((n) => n !== 'grace').concat(['token-auth', 'anonymous-pull', 'disable-delete', 'gc-keep-untagged', 'help'])));
  if (args.switches.has('help')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const config = await buildConfig(args);
  const log = new Logger(Logger.parseLevel(config.logLevel), { component: 'registry' });
  const { RegistryServer } = await import('./server.js');
  const server = await RegistryServer.start(config, log);
  await new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      log.info('signal received, stopping', { signal });
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      resolve();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  await server.stop();
  return 0;
}

function printReport(report: GcReport, json: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify(report) + '\n');
    return;
  }
  const verb = report.dryRun ? 'would delete' : 'deleted';
  for (const m of report.manifestsDeleted) process.stdout.write(`${verb} manifest ${m.repository}@${m.digest}\n`);
  for (const b of report.blobsDeleted) process.stdout.write(`${verb} blob ${b}\n`);
  process.stdout.write(
    `${report.dryRun ? 'dry run: ' : ''}${report.manifestsDeleted.length} manifests, ${report.blobsDeleted.length} blobs (${report.bytesFreed} bytes), ` +
      `${report.blobLinksDeleted} blob links, ${report.uploadsPurged} abandoned uploads; ${report.keptInUse} kept because in use\n`,
  );
}

async function gc(argv: string[]): Promise<number> {
  const args = parseArgs(argv, new Set(['root', 'config', 'grace', 'keep-untagged', 'dry-run', 'json', 'help', 'log-level', 'upload-purge-after']));
  if (args.switches.has('help')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const config = await buildConfig(args);
  const dryRun = args.switches.has('dry-run');
  const json = args.switches.has('json');
  const log = new Logger(Logger.parseLevel(config.logLevel), { component: 'registry-gc' });
  // A serving registry owns the root: it collects online, with its own grace settings.
  const remote = await requestOwner(config.root, 'gc', dryRun);
  if (remote !== undefined) {
    printReport(remote as GcReport, json);
    return 0;
  }
  const registry = new Registry({ root: config.root, maxManifestBytes: config.maxManifestBytes, deleteEnabled: true });
  let lock: RootLock;
  try {
    lock = await RootLock.acquire(config.root);
  } catch (err) {
    // A server started in between: ask it instead.
    const again = await requestOwner(config.root, 'gc', dryRun);
    if (again === undefined) throw err;
    printReport(again as GcReport, json);
    return 0;
  }
  try {
    await registry.init();
    const collector = new GarbageCollector(
      registry,
      { graceMs: config.gc.graceMs, deleteUntagged: config.gc.deleteUntagged, uploadPurgeAfterMs: config.uploadPurgeAfterMs },
      log,
    );
    printReport(await collector.run(dryRun), json);
  } finally {
    await lock.release();
  }
  return 0;
}

export async function registryMain(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'serve':
        return await serve(rest);
      case 'gc':
        return await gc(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return command === undefined ? 1 : 0;
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`berth registry: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    const prefix = err instanceof BerthError ? '' : 'unexpected error: ';
    process.stderr.write(`berth registry: ${prefix}${errorMessage(err)}\n`);
    return 1;
  }
}
