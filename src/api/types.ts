/**
 * Engine API wire types for containers (Docker's field names) and the
 * schemas that decode them from request bodies.
 */
import type { FieldType, Schema } from './decode.js';
import type { HealthConfig } from '../core/images/types.js';

export interface ContainerConfig {
  Hostname: string;
  Domainname: string;
  User: string;
  AttachStdin: boolean;
  AttachStdout: boolean;
  AttachStderr: boolean;
  ExposedPorts?: Record<string, object>;
  Tty: boolean;
  OpenStdin: boolean;
  StdinOnce: boolean;
  Env: string[] | null;
  Cmd: string[] | null;
  Healthcheck?: HealthConfig;
  ArgsEscaped?: boolean;
  Image: string;
  Volumes: Record<string, object> | null;
  WorkingDir: string;
  Entrypoint: string[] | null;
  NetworkDisabled?: boolean;
  MacAddress?: string;
  OnBuild: string[] | null;
  Labels: Record<string, string>;
  StopSignal?: string;
  StopTimeout?: number;
  Shell?: string[];
}

export interface RestartPolicy {
  Name: '' | 'no' | 'always' | 'on-failure' | 'unless-stopped';
  MaximumRetryCount: number;
}

export interface PortBinding {
  HostIp: string;
  HostPort: string;
}

export interface MountSpec {
  Type: 'bind' | 'volume' | 'tmpfs' | 'npipe' | 'cluster';
  Source?: string;
  Target: string;
  ReadOnly?: boolean;
  Consistency?: string;
  BindOptions?: { Propagation?: string; NonRecursive?: boolean; CreateMountpoint?: boolean };
  VolumeOptions?: { NoCopy?: boolean; Labels?: Record<string, string>; DriverConfig?: { Name?: string; Options?: Record<string, string> } };
  TmpfsOptions?: { SizeBytes?: number; Mode?: number };
}

export interface Ulimit {
  Name: string;
  Soft: number;
  Hard: number;
}

export interface HostConfig {
  Binds: string[] | null;
  ContainerIDFile: string;
  LogConfig: { Type: string; Config: Record<string, string> };
  NetworkMode: string;
  PortBindings: Record<string, PortBinding[] | null>;
  RestartPolicy: RestartPolicy;
  AutoRemove: boolean;
  VolumeDriver: string;
  VolumesFrom: string[] | null;
  ConsoleSize: [number, number];
  CapAdd: string[] | null;
  CapDrop: string[] | null;
  CgroupnsMode: string;
  Dns: string[];
  DnsOptions: string[];
  DnsSearch: string[];
  ExtraHosts: string[] | null;
  GroupAdd: string[] | null;
  IpcMode: string;
  Cgroup: string;
  Links: string[] | null;
  OomScoreAdj: number;
  PidMode: string;
  Privileged: boolean;
  PublishAllPorts: boolean;
  ReadonlyRootfs: boolean;
  SecurityOpt: string[] | null;
  StorageOpt?: Record<string, string>;
  Tmpfs?: Record<string, string>;
  UTSMode: string;
  UsernsMode: string;
  ShmSize: number;
  Sysctls?: Record<string, string>;
  Runtime: string;
  Isolation: string;
  CpuShares: number;
  Memory: number;
  NanoCpus: number;
  CgroupParent: string;
  BlkioWeight: number;
  BlkioWeightDevice: unknown[];
  BlkioDeviceReadBps: unknown[];
  BlkioDeviceWriteBps: unknown[];
  BlkioDeviceReadIOps: unknown[];
  BlkioDeviceWriteIOps: unknown[];
  CpuPeriod: number;
  CpuQuota: number;
  CpuRealtimePeriod: number;
  CpuRealtimeRuntime: number;
  CpusetCpus: string;
  CpusetMems: string;
  Devices: unknown[];
  DeviceCgroupRules: string[] | null;
  DeviceRequests: unknown[] | null;
  MemoryReservation: number;
  MemorySwap: number;
  MemorySwappiness: number | null;
  OomKillDisable: boolean | null;
  PidsLimit: number | null;
  Ulimits: Ulimit[] | null;
  Init: boolean | null;
  Mounts?: MountSpec[];
  MaskedPaths: string[] | null;
  ReadonlyPaths: string[] | null;
}

export interface EndpointSettings {
  IPAMConfig?: { IPv4Address?: string; IPv6Address?: string } | null;
  Links?: string[] | null;
  Aliases?: string[] | null;
  MacAddress?: string;
  NetworkID?: string;
  EndpointID?: string;
  Gateway?: string;
  IPAddress?: string;
  IPPrefixLen?: number;
  IPv6Gateway?: string;
  GlobalIPv6Address?: string;
  GlobalIPv6PrefixLen?: number;
  DriverOpts?: Record<string, string> | null;
  DNSNames?: string[] | null;
}

export interface NetworkingConfig {
  EndpointsConfig?: Record<string, EndpointSettings>;
}

/** POST /containers/create body. */
export interface CreateContainerBody extends Partial<ContainerConfig> {
  HostConfig?: Partial<HostConfig>;
  NetworkingConfig?: NetworkingConfig;
}

const healthSchema: FieldType = {
  object: { Test: 'strslice', Interval: 'integer', Timeout: 'integer', StartPeriod: 'integer', StartInterval: 'integer', Retries: 'integer' },
};

export const containerConfigSchema: Schema = {
  Hostname: 'string',
  Domainname: 'string',
  User: 'string',
  AttachStdin: 'boolean',
  AttachStdout: 'boolean',
  AttachStderr: 'boolean',
  ExposedPorts: { map: 'object' },
  Tty: 'boolean',
  OpenStdin: 'boolean',
  StdinOnce: 'boolean',
  Env: 'strings',
  Cmd: 'strslice',
  Healthcheck: healthSchema,
  ArgsEscaped: 'boolean',
  Image: 'string',
  Volumes: { map: 'object' },
  WorkingDir: 'string',
  Entrypoint: 'strslice',
  NetworkDisabled: 'boolean',
  MacAddress: 'string',
  OnBuild: 'strings',
  Labels: 'stringMap',
  StopSignal: 'string',
  StopTimeout: 'integer',
  Shell: 'strslice',
};

const mountSchema: FieldType = {
  object: {
    Type: 'string',
    Source: 'string',
    Target: 'string',
    ReadOnly: 'boolean',
    Consistency: 'string',
    BindOptions: { object: { Propagation: 'string', NonRecursive: 'boolean', CreateMountpoint: 'boolean' } },
    VolumeOptions: {
      object: {
        NoCopy: 'boolean',
        Labels: 'stringMap',
        DriverConfig: { object: { Name: 'string', Options: 'stringMap' } },
      },
    },
    TmpfsOptions: { object: { SizeBytes: 'integer', Mode: 'integer' } },
  },
};

export const hostConfigSchema: Schema = {
  Binds: 'strings',
  ContainerIDFile: 'string',
  LogConfig: { object: { Type: 'string', Config: 'stringMap' } },
  NetworkMode: 'string',
  PortBindings: { map: { array: { object: { HostIp: 'string', HostPort: 'string' } } } },
  RestartPolicy: { object: { Name: 'string', MaximumRetryCount: 'integer' } },
  AutoRemove: 'boolean',
  VolumeDriver: 'string',
  VolumesFrom: 'strings',
  ConsoleSize: { array: 'integer' },
  CapAdd: 'strslice',
  CapDrop: 'strslice',
  CgroupnsMode: 'string',
  Dns: 'strings',
  DnsOptions: 'strings',
  DnsSearch: 'strings',
  ExtraHosts: 'strings',
  GroupAdd: 'strings',
  IpcMode: 'string',
  Cgroup: 'string',
  Links: 'strings',
  OomScoreAdj: 'integer',
  PidMode: 'string',
  Privileged: 'boolean',
  PublishAllPorts: 'boolean',
  ReadonlyRootfs: 'boolean',
  SecurityOpt: 'strings',
  StorageOpt: 'stringMap',
  Tmpfs: 'stringMap',
  UTSMode: 'string',
  UsernsMode: 'string',
  ShmSize: 'integer',
  Sysctls: 'stringMap',
  Runtime: 'string',
  Isolation: 'string',
  CpuShares: 'integer',
  Memory: 'integer',
  NanoCpus: 'integer',
  CgroupParent: 'string',
  BlkioWeight: 'integer',
  BlkioWeightDevice: { array: 'object' },
  BlkioDeviceReadBps: { array: 'object' },
  BlkioDeviceWriteBps: { array: 'object' },
  BlkioDeviceReadIOps: { array: 'object' },
  BlkioDeviceWriteIOps: { array: 'object' },
  CpuPeriod: 'integer',
  CpuQuota: 'integer',
  CpuRealtimePeriod: 'integer',
  CpuRealtimeRuntime: 'integer',
  CpusetCpus: 'string',
  CpusetMems: 'string',
  Devices: { array: 'object' },
  DeviceCgroupRules: 'strings',
  DeviceRequests: { array: 'object' },
  MemoryReservation: 'integer',
  MemorySwap: 'integer',
  MemorySwappiness: 'integer',
  OomKillDisable: 'boolean',
  PidsLimit: 'integer',
  Ulimits: { array: { object: { Name: 'string', Soft: 'integer', Hard: 'integer' } } },
  Init: 'boolean',
  Mounts: { array: mountSchema },
  MaskedPaths: 'strings',
  ReadonlyPaths: 'strings',
};

export const endpointSettingsSchema: Schema = {
  IPAMConfig: { object: { IPv4Address: 'string', IPv6Address: 'string', LinkLocalIPs: 'strings' } },
  Links: 'strings',
  Aliases: 'strings',
  MacAddress: 'string',
  NetworkID: 'string',
  EndpointID: 'string',
  Gateway: 'string',
  IPAddress: 'string',
  IPPrefixLen: 'integer',
  DriverOpts: 'stringMap',
  DNSNames: 'strings',
};

export const createContainerSchema: Schema = {
  ...containerConfigSchema,
  HostConfig: { object: hostConfigSchema },
  NetworkingConfig: { object: { EndpointsConfig: { map: { object: endpointSettingsSchema } } } },
};

export function defaultHostConfig(): HostConfig {
  return {
    Binds: null,
    ContainerIDFile: '',
    LogConfig: { Type: 'json-file', Config: {} },
    NetworkMode: 'default',
    PortBindings: {},
    RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
    AutoRemove: false,
    VolumeDriver: '',
    VolumesFrom: null,
    ConsoleSize: [0, 0],
    CapAdd: null,
    CapDrop: null,
    CgroupnsMode: 'host',
    Dns: [],
    DnsOptions: [],
    DnsSearch: [],
    ExtraHosts: null,
    GroupAdd: null,
    IpcMode: 'private',
    Cgroup: '',
    Links: null,
    OomScoreAdj: 0,
    PidMode: '',
    Privileged: false,
    PublishAllPorts: false,
    ReadonlyRootfs: false,
    SecurityOpt: null,
    UTSMode: '',
    UsernsMode: '',
    ShmSize: 67108864,
    Runtime: 'runc',
    Isolation: '',
    CpuShares: 0,
    Memory: 0,
    NanoCpus: 0,
    CgroupParent: '',
    BlkioWeight: 0,
    BlkioWeightDevice: [],
    BlkioDeviceReadBps: [],
    BlkioDeviceWriteBps: [],
    BlkioDeviceReadIOps: [],
    BlkioDeviceWriteIOps: [],
    CpuPeriod: 0,
    CpuQuota: 0,
    CpuRealtimePeriod: 0,
    CpuRealtimeRuntime: 0,
    CpusetCpus: '',
    CpusetMems: '',
    Devices: [],
    DeviceCgroupRules: null,
    DeviceRequests: null,
    MemoryReservation: 0,
    MemorySwap: 0,
    MemorySwappiness: null,
    OomKillDisable: null,
    PidsLimit: null,
    Ulimits: null,
    Init: null,
    MaskedPaths: null,
    ReadonlyPaths: null,
  };
}
