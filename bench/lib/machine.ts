import os from 'node:os';

/** What the figures were measured on: absolute times only compare within one machine and run. */
export interface MachineInfo {
  readonly hostname: string;
  readonly platform: string;
  readonly release: string;
  readonly arch: string;
  readonly cpuModel: string;
  readonly cpus: number;
  readonly totalMemoryMb: number;
  readonly node: string;
  readonly v8: string;
  /** 1, 5 and 15 minute load averages when the run started: a busy machine inflates tails. */
  readonly loadAverageAtStart: readonly number[];
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    hostname: os.hostname(),
    platform: os.platform(),
    release: os.release(),
    arch: os.arch(),
    cpuModel: cpus[0]?.model ?? 'unknown',
    cpus: cpus.length,
    totalMemoryMb: Math.round(os.totalmem() / 2 ** 20),
    node: process.version,
    v8: process.versions.v8,
    loadAverageAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}
