/**
 * The TypeScript mesh links' greeting (mesh-greeting.ts) on real tcp
 * sockets: rank 1 greets rank 0 through a proxy that records what it sends;
 * the token is nowhere in the recording. A second mesh with the same token
 * (the same plan generation, as far as the greeting knows) then gets the
 * recording replayed at rank 0 before its real rank 1: rank 0 answers the
 * replayed offer with a fresh nonce, so the recorded proof fails, the
 * replay is refused and logged, and the real ranks still connect and talk.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { tcpRelay } from '../testing/tcp-relay.js';
import { test } from 'node:test';
import { MeshListener, connectMesh, type SocketAddress } from './socket-transport.js';

/** Captures this process's stderr lines while `body` runs. */
async function capturingStderr<T>(body: () => Promise<T>): Promise<{ value: T; lines: string[] }> {
  const lines: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
    lines.push(String(chunk));
    return write(chunk, ...rest);
  }) as typeof process.stderr.write;
  try {
    return { value: await body(), lines };
  } finally {
    process.stderr.write = write;
  }
}

async function talk(addresses: SocketAddress[][], listeners: MeshListener[], token: string): Promise<void> {
  const [a, b] = await Promise.all([connectMesh(0, addresses[0]!, listeners[0]!, token), connectMesh(1, addresses[1]!, listeners[1]!, token)]);
  try {
    const message = Uint8Array.of(7, 8, 9);
    const [, received] = await Promise.all([b.send(0, message), a.receive(1)]);
    assert.deepEqual(received, message);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
}

test('a TypeScript mesh greeting never sends the token, and a recorded one replayed with the same token is refused', { timeout: 30_000 }, async () => {
  const token = randomBytes(16).toString('hex');
  const first = await Promise.all([MeshListener.open('tcp'), MeshListener.open('tcp')]);
  const target = first[0]!.address as { host: string; port: number };
  const recorded: Buffer[] = [];
  const { server: proxy, port } = await tcpRelay(target, () => ({ fromDialer: (chunk) => recorded.push(chunk) }));
  const viaProxy: SocketAddress = { kind: 'tcp', host: '127.0.0.1', port };
  const honest = first.map((listener) => listener.address);
  try {
    await talk([honest, [viaProxy, honest[1]!]], first, token);
  } finally {
    proxy.close();
  }
  const recording = Buffer.concat(recorded);
  assert.ok(recording.length > 64, 'the proxy saw the greeting');
  assert.equal(recording.indexOf(token), -1, 'the token never crosses');

  const second = await Promise.all([MeshListener.open('tcp'), MeshListener.open('tcp')]);
  const { lines } = await capturingStderr(async () => {
    const replay: Socket = await new Promise((resolve) => {
      const socket = connect(second[0]!.address as { host: string; port: number }, () => socket.write(recording, () => resolve(socket)));
    });
    const refused = new Promise<void>((resolve) => replay.on('close', () => resolve()));
    replay.on('error', () => undefined);
    replay.resume(); // reads rank 0's answer, so its close is seen
    await talk([second.map((listener) => listener.address), second.map((listener) => listener.address)], second, token);
    await refused;
  });
  assert.ok(lines.some((line) => /rank 0 refused a mesh connection .*TESSERA_ERR_JOIN_REFUSED \(a wrong proof of the mesh token from a dialer claiming rank 1/.test(line)), lines.join(''));
});
