/** Networks as berthd keeps them, and the Docker shapes built from them. */
export interface IpamConfig {
  Subnet: string;
  Gateway: string;
  IPRange?: string;
  AuxiliaryAddresses?: Record<string, string>;
}

export interface NetworkRecord {
  id: string;
  name: string;
  driver: 'bridge' | 'host' | 'null';
  created: string;
  internal: boolean;
  attachable: boolean;
  /** Name resolution between containers (user-defined bridges). */
  dns: boolean;
  /** Bridge interface on the host (bridge driver). */
  bridge: string;
  ipam: { Driver: string; Options: Record<string, string>; Config: IpamConfig[] };
  /** Options and labels exactly as the user set them (compose compares them). */
  options: Record<string, string>;
  labels: Record<string, string>;
  /** Predefined networks (bridge, host, none) cannot be removed. */
  builtin: boolean;
}

export const PREDEFINED = ['bridge', 'host', 'none'];
