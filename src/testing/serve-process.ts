/** `tessera serve` (or `tessera router`) as a user starts it, in a child process, for tests. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { projectRoot } from './fixtures.js';

export interface ServeProcess {
  /** Where it serves, from its "serving … on URL" line. */
  url: string;
  /** Everything it wrote to stderr so far. */
  stderr(): string;
  /** Its exit code, once it exits. */
  exited: Promise<number | null>;
  pid: number;
}

/** Starts `tessera serve ARGS` and resolves once it says where it serves; rejects if it exits first. */
export async function startServeProcess(args: readonly string[]): Promise<ServeProcess & { kill(signal: NodeJS.Signals): void }> {
  return startTesseraProcess('serve', args);
}

/** Starts `tessera COMMAND ARGS` (serve or router) and resolves once it says where it serves. */
export async function startTesseraProcess(command: 'serve' | 'router', args: readonly string[]): Promise<ServeProcess & { kill(signal: NodeJS.Signals): void }> {
  const child = spawn(process.execPath, [join(projectRoot, 'bin', 'tessera.js'), command, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text: string) => {
      stderr += text;
      const match = stderr.match(/^serving "[^"]+" on (http:\/\/\S+) /m);
      if (match) resolve(match[1]);
    });
    child.on('exit', () => reject(new Error(`${command} exited early:\n${stderr}`)));
  });
  return { url, stderr: () => stderr, exited, pid: child.pid!, kill: (signal) => child.kill(signal) };
}
