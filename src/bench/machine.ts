/** What a benchmark ran on, recorded beside its figures. */
import { cpus, loadavg, platform, release, totalmem } from 'node:os';

export interface MachineDescription {
  cpuModel: string;
  logicalCores: number;
  memoryGiB: number;
  os: string;
  node: string;
  /** 1-minute load average when the run started: figures from a busy machine are noisy. */
  loadAverage: number;
}

export function describeMachine(): MachineDescription {
  return {
    cpuModel: cpus()[0]?.model ?? 'unknown',
    logicalCores: cpus().length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${platform()} ${release()}`,
    node: process.version,
    loadAverage: loadavg()[0],
  };
}
