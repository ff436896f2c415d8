/**
 * Turning a create request into a container's stored config: defaults,
 * validation with Docker's messages, and the merge with the image config
 * (Env by key, Cmd/Entrypoint rules, Labels, ExposedPorts, Volumes, ...).
 */
import os from 'node:os';
import { invalidArgument } from '../../core/errdefs/index.js';
import type { ImageRunConfig } from '../../core/images/types.js';
import { type ContainerConfig, type CreateContainerBody, type HostConfig, defaultHostConfig } from '../../api/types.js';
import { CONTAINER_NAME_RE } from '../../core/containers/types.js';
import { parseRamBytes } from '../../util/units.js';

export const MIN_MEMORY = 6 * 1024 * 1024;
export const FILE_LOG_DRIVERS = new Set(['json-file', 'local', 'k8s-file', '']);
export const DEFAULT_LOG_MAX_SIZE = 20 * 1024 * 1024;
export const DEFAULT_LOG_MAX_FILES = 5;

export function validateName(name: string): string {
  if (!CONTAINER_NAME_RE.test(name)) {
    throw invalidArgument(`Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  }
  return name.startsWith('/') ? name.slice(1) : name;
}

function envKey(e: string): string {
  const i = e.indexOf('=');
  return i === -1 ? e : e.slice(0, i);
}

/** Image env first, then the container's, later keys replacing earlier ones. */
export function mergeEnv(base: readonly string[], overrides: readonly string[]): string[] {
  const out = [...base];
  for (const e of overrides) {
    const k = envKey(e);
    const i = out.findIndex((x) => envKey(x) === k);
    if (i >= 0) out[i] = e;
    else out.push(e);
  }
  return out;
}

export function mergeConfig(user: CreateContainerBody, image: ImageRunConfig, imageName: string): ContainerConfig {
  const config: ContainerConfig = {
    Hostname: user.Hostname ?? '',
    Domainname: user.Domainname ?? '',
    User: user.User || image.User || '',
    AttachStdin: user.AttachStdin ?? false,
    AttachStdout: user.AttachStdout ?? false,
    AttachStderr: user.AttachStderr ?? false,
    Tty: user.Tty ?? false,
    OpenStdin: user.OpenStdin ?? false,
    StdinOnce: user.StdinOnce ?? false,
    Env: mergeEnv(image.Env ?? [], user.Env ?? []),
    Cmd: user.Cmd ?? null,
    Image: imageName,
    Volumes: null,
    WorkingDir: user.WorkingDir || image.WorkingDir || '',
    Entrypoint: user.Entrypoint ?? null,
    OnBuild: null,
    Labels: { ...(image.Labels ?? {}), ...(user.Labels ?? {}) },
  };
  // Docker's merge: the image's Cmd and Entrypoint apply only when the
  // user did not set an entrypoint of their own.
  if (!user.Entrypoint || user.Entrypoint.length === 0) {
    if (!config.Cmd || config.Cmd.length === 0) config.Cmd = image.Cmd ?? null;
    if (user.Entrypoint === undefined || user.Entrypoint === null) config.Entrypoint = image.Entrypoint ?? null;
  }
  if (config.Entrypoint && config.Entrypoint.length === 1 && config.Entrypoint[0] === '') config.Entrypoint = null;
  const exposed = { ...(image.ExposedPorts ?? {}), ...(user.ExposedPorts ?? {}) };
  if (Object.keys(exposed).length) config.ExposedPorts = exposed;
  const volumes = { ...(image.Volumes ?? {}), ...(user.Volumes ?? {}) };
  if (Object.keys(volumes).length) config.Volumes = volumes;
  const stopSignal = user.StopSignal || image.StopSignal;
  if (stopSignal) config.StopSignal = stopSignal;
  if (user.StopTimeout !== undefined) config.StopTimeout = user.StopTimeout;
  const health = user.Healthcheck ?? image.Healthcheck;
  if (health) config.Healthcheck = { ...(image.Healthcheck ?? {}), ...(user.Healthcheck ?? {}) };
  if (user.Shell ?? image.Shell) config.Shell = user.Shell ?? image.Shell;
  if (user.MacAddress) config.MacAddress = user.MacAddress;
  if (user.NetworkDisabled) config.NetworkDisabled = true;
  return config;
}

/** The process to run: entrypoint + cmd; Path is the first word. */
export function commandOf(config: ContainerConfig): { path: string; args: string[] } {
  const argv = [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])];
  if (argv.length === 0) throw invalidArgument('No command specified');
  return { path: argv[0], args: argv.slice(1) };
}

const RESTART_POLICIES = new Set(['', 'no', 'always', 'on-failure', 'unless-stopped']);

export function buildHostConfig(input: Partial<HostConfig> | undefined): HostConfig {
  const hc: HostConfig = { ...defaultHostConfig(), ...stripUndefined(input ?? {}) };
  if (!hc.LogConfig || !hc.LogConfig.Type) hc.LogConfig = { Type: 'json-file', Config: hc.LogConfig?.Config ?? {} };
  hc.LogConfig.Config = hc.LogConfig.Config ?? {};
  if (!hc.RestartPolicy) hc.RestartPolicy = { Name: 'no', MaximumRetryCount: 0 };
  if (!hc.NetworkMode) hc.NetworkMode = 'default';
  if (!hc.PortBindings) hc.PortBindings = {};
  validateHostConfig(hc);
  // Docker: a memory limit without a swap setting allows as much swap again.
  if (hc.Memory > 0 && hc.MemorySwap === 0) hc.MemorySwap = hc.Memory * 2;
  return hc;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export function validateHostConfig(hc: HostConfig): void {
  const rp = hc.RestartPolicy;
  if (!RESTART_POLICIES.has(rp.Name)) throw invalidArgument(`invalid restart policy '${rp.Name}'`);
  if (rp.MaximumRetryCount < 0) throw invalidArgument('invalid restart policy: maximum retry count cannot be negative');
  if (rp.MaximumRetryCount > 0 && rp.Name !== 'on-failure') {
    throw invalidArgument(`invalid restart policy: maximum retry count can only be used with 'on-failure'`);
  }
  if (hc.AutoRemove && rp.Name !== '' && rp.Name !== 'no') {
    throw invalidArgument(`conflicting options: cannot specify both --restart and --rm`);
  }
  if (hc.Memory < 0) throw invalidArgument('invalid memory limit: must be a positive value');
  if (hc.Memory > 0 && hc.Memory < MIN_MEMORY) throw invalidArgument('Minimum memory limit allowed is 6MB');
  if (hc.Memory > 0 && hc.MemorySwap > 0 && hc.MemorySwap < hc.Memory) {
    throw invalidArgument('Minimum memoryswap limit should be larger than memory limit, see usage');
  }
  if (hc.Memory === 0 && hc.MemorySwap > 0) {
    throw invalidArgument('You should always set the Memory limit when using Memoryswap limit, see usage');
  }
  if (hc.MemoryReservation < 0) throw invalidArgument('invalid memory reservation: must be a positive value');
  if (hc.MemorySwappiness !== null && hc.MemorySwappiness !== undefined && (hc.MemorySwappiness < -1 || hc.MemorySwappiness > 100)) {
    throw invalidArgument(`Invalid value: ${hc.MemorySwappiness}, valid memory swappiness range is 0-100`);
  }
  if (hc.NanoCpus < 0) throw invalidArgument('invalid CPU count: must be a positive value');
  if (hc.NanoCpus > 0 && (hc.CpuPeriod > 0 || hc.CpuQuota > 0)) {
    throw invalidArgument('Conflicting options: Nano CPUs and CPU Period cannot both be set');
  }
  const ncpu = os.availableParallelism();
  if (hc.NanoCpus > 0 && (hc.NanoCpus < 1e7 || hc.NanoCpus > ncpu * 1e9)) {
    throw invalidArgument(`Range of CPUs is from 0.01 to ${ncpu.toFixed(2)}, as there are only ${ncpu} CPUs available`);
  }
  if (hc.CpuShares < 0) throw invalidArgument('invalid CPU shares: must be a positive value');
  if (hc.CpuPeriod !== 0 && (hc.CpuPeriod < 1000 || hc.CpuPeriod > 1000000)) {
    throw invalidArgument('CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)');
  }
  if (hc.CpuQuota !== 0 && hc.CpuQuota !== -1 && hc.CpuQuota < 1000) {
    throw invalidArgument('CPU cfs quota can not be less than 1ms (i.e. 1000)');
  }
  if (hc.PidsLimit !== null && hc.PidsLimit !== undefined && !Number.isInteger(hc.PidsLimit)) {
    throw invalidArgument('invalid pids limit');
  }
  if (hc.ShmSize < 0) throw invalidArgument('SHM size can not be less than 0');
  if (hc.OomScoreAdj < -1000 || hc.OomScoreAdj > 1000) {
    throw invalidArgument(`Invalid value ${hc.OomScoreAdj}, range for oom score adj is [-1000, 1000]`);
  }
  if (!FILE_LOG_DRIVERS.has(hc.LogConfig.Type) && hc.LogConfig.Type !== 'none') {
    throw invalidArgument(`logging driver "${hc.LogConfig.Type}" is not supported: use json-file, local or none`);
  }
  logLimits(hc);
  const mode = hc.NetworkMode;
  if (!['default', 'bridge', 'none', 'host'].includes(mode) && !mode.startsWith('container:')) {
    // user-defined networks are checked by the network service
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(mode)) throw invalidArgument(`invalid network mode: ${mode}`);
  }
  for (const [, v] of Object.entries(hc.Sysctls ?? {})) if (typeof v !== 'string') throw invalidArgument('invalid sysctl value');
}

/** max-size and max-file from LogConfig, with Berth's bounded defaults. */
export function logLimits(hc: HostConfig): { maxSize: number; maxFiles: number } {
  const cfg = hc.LogConfig.Config ?? {};
  for (const key of Object.keys(cfg)) {
    if (!['max-size', 'max-file', 'compress', 'mode', 'max-buffer-size', 'labels', 'env', 'tag'].includes(key)) {
      throw invalidArgument(`unknown log opt '${key}' for ${hc.LogConfig.Type || 'json-file'} log driver`);
    }
  }
  let maxSize = DEFAULT_LOG_MAX_SIZE;
  let maxFiles = DEFAULT_LOG_MAX_FILES;
  if (cfg['max-size'] !== undefined) {
    if (cfg['max-size'] === '-1') maxSize = 0;
    else {
      try {
        maxSize = parseRamBytes(cfg['max-size']);
      } catch {
        throw invalidArgument(`invalid log opt max-size: ${cfg['max-size']}`);
      }
      if (maxSize <= 0) throw invalidArgument(`invalid log opt max-size: ${cfg['max-size']}`);
    }
  }
  if (cfg['max-file'] !== undefined) {
    maxFiles = Number(cfg['max-file']);
    if (!Number.isInteger(maxFiles) || maxFiles < 1) throw invalidArgument('max-file cannot be less than 1');
    if (cfg['max-size'] === undefined && maxFiles > 1 && maxSize === 0) {
      throw invalidArgument('max-file cannot be set without max-size');
    }
  }
  return { maxSize, maxFiles };
}
