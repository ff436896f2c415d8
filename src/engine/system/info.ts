/** GET /info and GET /version: what this daemon is and runs on. */
import fs from 'node:fs';
import os from 'node:os';
import { API_VERSION, BERTH_VERSION, ENGINE_VERSION, MIN_API_VERSION } from '../../api/version.js';
import type { ContainerService } from '../containers/container-service.js';
import type { ImageService } from '../images/image-service.js';

export interface SystemDeps {
  containers: ContainerService;
  images: ImageService;
  dataRoot: string;
  daemonId: string;
  runcVersion: string;
  conmonVersion: string;
  networks?: () => string[];
  warnings?: string[];
}

function osPrettyName(): string {
  try {
    const m = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(fs.readFileSync('/etc/os-release', 'utf8'));
    if (m) return m[1];
  } catch {
    // fall through
  }
  return os.type();
}

function cgroupVersion(): '1' | '2' {
  return fs.existsSync('/sys/fs/cgroup/cgroup.controllers') ? '2' : '1';
}

export function versionInfo(deps: Pick<SystemDeps, 'runcVersion' | 'conmonVersion'>): Record<string, unknown> {
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  return {
    Platform: { Name: 'Berth Engine' },
    Components: [
      {
        Name: 'Engine',
        Version: ENGINE_VERSION,
        Details: {
          ApiVersion: API_VERSION,
          MinAPIVersion: MIN_API_VERSION,
          Arch: arch,
          Os: 'linux',
          KernelVersion: os.release(),
          BuildTime: '',
          GitCommit: '',
          GoVersion: `node${process.versions.node}`,
          Experimental: 'false',
          BerthVersion: BERTH_VERSION,
        },
      },
      { Name: 'runc', Version: deps.runcVersion, Details: { GitCommit: '' } },
      { Name: 'conmon', Version: deps.conmonVersion, Details: { GitCommit: '' } },
      { Name: 'docker-init', Version: 'tini', Details: { GitCommit: '' } },
    ],
    Version: ENGINE_VERSION,
    ApiVersion: API_VERSION,
    MinAPIVersion: MIN_API_VERSION,
    GitCommit: '',
    GoVersion: `node${process.versions.node}`,
    Os: 'linux',
    Arch: arch,
    KernelVersion: os.release(),
    BuildTime: '',
  };
}

export function systemInfo(deps: SystemDeps): Record<string, unknown> {
  const containers = deps.containers.all();
  const running = containers.filter((c) => c.state.Running && !c.state.Paused).length;
  const paused = containers.filter((c) => c.state.Paused).length;
  return {
    ID: deps.daemonId,
    Containers: containers.length,
    ContainersRunning: running,
    ContainersPaused: paused,
    ContainersStopped: containers.length - running - paused,
    Images: deps.images.store.all().length,
    Driver: 'overlay2',
    DriverStatus: [
      ['Backing Filesystem', 'extfs'],
      ['Supports d_type', 'true'],
      ['Using metacopy', 'false'],
      ['Native Overlay Diff', 'true'],
      ['userxattr', 'false'],
    ],
    Plugins: {
      Volume: ['local'],
      Network: ['bridge', 'host', 'null'],
      Authorization: null,
      Log: ['json-file', 'local', 'none'],
    },
    MemoryLimit: true,
    SwapLimit: fs.existsSync('/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes'),
    CpuCfsPeriod: true,
    CpuCfsQuota: true,
    CPUShares: true,
    CPUSet: true,
    PidsLimit: true,
    IPv4Forwarding: readSysctl('/proc/sys/net/ipv4/ip_forward') === '1',
    BridgeNfIptables: false,
    BridgeNfIp6tables: false,
    Debug: false,
    NFd: countFds(),
    OomKillDisable: true,
    NGoroutines: 0,
    SystemTime: new Date().toISOString(),
    LoggingDriver: 'json-file',
    CgroupDriver: 'cgroupfs',
    CgroupVersion: cgroupVersion(),
    NEventsListener: 0,
    KernelVersion: os.release(),
    OperatingSystem: osPrettyName(),
    OSVersion: '',
    OSType: 'linux',
    Architecture: os.machine(),
    IndexServerAddress: 'https://index.docker.io/v1/',
    RegistryConfig: { AllowNondistributableArtifactsCIDRs: null, AllowNondistributableArtifactsHostnames: null, InsecureRegistryCIDRs: ['127.0.0.0/8'], IndexConfigs: {}, Mirrors: [] },
    NCPU: os.availableParallelism(),
    MemTotal: os.totalmem(),
    GenericResources: null,
    DockerRootDir: deps.dataRoot,
    HttpProxy: process.env.HTTP_PROXY ?? '',
    HttpsProxy: process.env.HTTPS_PROXY ?? '',
    NoProxy: process.env.NO_PROXY ?? '',
    Name: os.hostname(),
    Labels: [],
    ExperimentalBuild: false,
    ServerVersion: ENGINE_VERSION,
    Runtimes: { runc: { path: 'runc' } },
    DefaultRuntime: 'runc',
    Swarm: { NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '', RemoteManagers: null },
    LiveRestoreEnabled: true,
    Isolation: '',
    InitBinary: 'docker-init',
    ContainerdCommit: { ID: '' },
    RuncCommit: { ID: deps.runcVersion },
    InitCommit: { ID: '' },
    SecurityOptions: ['name=seccomp,profile=builtin'],
    Warnings: deps.warnings ?? [],
  };
}

function readSysctl(p: string): string {
  try {
    return fs.readFileSync(p, 'utf8').trim();
  } catch {
    return '';
  }
}

function countFds(): number {
  try {
    return fs.readdirSync('/proc/self/fd').length;
  } catch {
    return 0;
  }
}
