/** A container as berthd keeps it: Docker's config shapes plus runtime state. */
import type { ContainerConfig, EndpointSettings, HostConfig } from '../../api/types.js';
import type { Digest } from '../images/digest.js';
import type { MountRequest } from '../volumes/mounts.js';

export type ContainerStatus = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';

export interface HealthLogEntry {
  Start: string;
  End: string;
  ExitCode: number;
  Output: string;
}

export interface HealthState {
  Status: 'starting' | 'healthy' | 'unhealthy' | 'none';
  FailingStreak: number;
  Log: HealthLogEntry[];
}

export interface ContainerState {
  Status: ContainerStatus;
  Running: boolean;
  Paused: boolean;
  Restarting: boolean;
  OOMKilled: boolean;
  Dead: boolean;
  Pid: number;
  ExitCode: number;
  Error: string;
  StartedAt: string;
  FinishedAt: string;
  Health?: HealthState;
}

export interface MountPoint {
  Type: 'bind' | 'volume' | 'tmpfs';
  Name?: string;
  Source: string;
  Destination: string;
  Driver?: string;
  Mode: string;
  RW: boolean;
  Propagation: string;
}

export interface NetworkSettings {
  Networks: Record<string, EndpointSettings>;
  Ports: Record<string, { HostIp: string; HostPort: string }[] | null>;
  SandboxKey: string;
}

export interface ContainerRecord {
  id: string;
  /** Without the leading slash. */
  name: string;
  created: string;
  path: string;
  args: string[];
  image: Digest;
  config: ContainerConfig;
  hostConfig: HostConfig;
  state: ContainerState;
  restartCount: number;
  /** Set by `docker stop`/`kill` so restart policies leave the container alone. */
  manuallyStopped: boolean;
  hasBeenStarted: boolean;
  conmonPid: number;
  mounts: MountPoint[];
  /** The mounts as resolved at create (volume names filled in). */
  mountRequests?: MountRequest[];
  networkSettings: NetworkSettings;
  /** Log options resolved at create (bytes, files). */
  logMaxSize: number;
  logMaxFiles: number;
}

export const CONTAINER_NAME_RE = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
