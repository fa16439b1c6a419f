/** A progress bar on stderr while weights load, only when stderr is a terminal. */
import cliProgress from 'cli-progress';
import type { LoadProgress } from '../model/transformer-weights.js';

export interface ProgressHandle {
  onProgress?: LoadProgress;
  stop(): void;
}

export function loadProgressBar(label: string): ProgressHandle {
  if (!process.stderr.isTTY) return { stop: () => {} };
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: `${label} [{bar}] {percentage}% | {value}/{total} MiB`, hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    onProgress: (loaded, total) => {
      const mib = (bytes: number): number => Math.round(bytes / 2 ** 20);
      if (!started) {
        bar.start(mib(total), 0);
        started = true;
      }
      bar.update(mib(loaded));
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}
