/**
 * Sealed frames of the TypeScript mesh links (frame-seal.ts) on real tcp
 * sockets, with a man in the middle: rank 0 dials rank 1 through a proxy
 * that records what rank 1 sends it, or flips one byte of rank 1's first
 * frame after the greeting. Recorded: the messages arrive whole, and a known
 * plaintext is nowhere in the capture (clear frames, the control, show it).
 * Flipped — in the ciphertext or in the length header: rank 0 refuses the
 * frame with TESSERA_ERR_PROTOCOL and logs it, drops the link, and rank 1
 * sees rank 0 lost; nobody hangs or crashes. Ranks that disagree about
 * sealing are refused at the greeting, saying so.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:net';
import { tcpRelay } from '../testing/tcp-relay.js';
import { test } from 'node:test';
import { MeshListener, connectMesh, type SocketAddress, type SocketTransport } from './socket-transport.js';

/** A proxy in front of `target` recording what the target sends; with `flip`, it xors that byte of the target's first frame after the greeting's answer. */
async function middleman(target: SocketAddress, flip?: { offset: number; mask: number }): Promise<{ server: Server; address: SocketAddress; captured: () => Buffer }> {
  const chunks: Buffer[] = [];
  const { server, port } = await tcpRelay(target as { host: string; port: number }, () => {
    let seen = 0;
    let flipAt = -1;
    return {
      fromTarget: (chunk) => {
        // The answer's length is the stream's first 4 bytes (they come in one write).
        if (seen === 0 && flip) flipAt = 4 + chunk.readUInt32LE(0) + flip.offset;
        if (flipAt >= seen && flipAt < seen + chunk.length) chunk[flipAt - seen] ^= flip!.mask;
        seen += chunk.length;
        chunks.push(Buffer.from(chunk));
      },
    };
  });
  const address: SocketAddress = { kind: 'tcp', host: '127.0.0.1', port };
  return { server, address, captured: () => Buffer.concat(chunks) };
}

/** Rank 0 and rank 1 (tcp), rank 0 reaching rank 1 through a middleman; `sealed` per rank. */
async function meshThroughProxy(sealed: [boolean, boolean], flip?: { offset: number; mask: number }) {
  const token = randomBytes(16).toString('hex');
  const listeners = await Promise.all([MeshListener.open('tcp'), MeshListener.open('tcp')]);
  const honest = listeners.map((listener) => listener.address);
  const proxy = await middleman(honest[1]!, flip);
  const connecting = [connectMesh(0, [honest[0]!, proxy.address], listeners[0]!, token, sealed[0]), connectMesh(1, honest, listeners[1]!, token, sealed[1])];
  const close = () => {
    proxy.server.close();
    for (const listener of listeners) listener.close();
  };
  return { connecting, proxy, close };
}

/** Captures this process's stderr while `body` runs. */
async function capturingStderr<T>(body: () => Promise<T>): Promise<{ value: T; log: string }> {
  let log = '';
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
    log += String(chunk);
    return write(chunk, ...rest);
  }) as typeof process.stderr.write;
  try {
    return { value: await body(), log };
  } finally {
    process.stderr.write = write;
  }
}

const known = Buffer.from('hidden state of stage 1, token 42: '.repeat(2000));

for (const sealed of [true, false]) {
  test(`${sealed ? 'sealed frames show an eavesdropper no plaintext' : 'clear frames (the control) carry the plaintext as it is'}, and arrive whole`, { timeout: 30_000 }, async () => {
    const { connecting, proxy, close } = await meshThroughProxy([sealed, sealed]);
    const [a, b] = (await Promise.all(connecting)) as SocketTransport[];
    try {
      const into = new Uint8Array(known.length);
      await Promise.all([b.send(0, known), b.send(0, known), a.receiveInto(1, into), a.receive(1).then((m) => assert.deepEqual(m, new Uint8Array(known)))]);
      assert.deepEqual(into, new Uint8Array(known));
      const captured = proxy.captured();
      assert.ok(captured.length > 2 * known.length, `the proxy carried the frames (${captured.length} bytes)`);
      const probe = known.subarray(1000, 1064);
      if (sealed) assert.equal(captured.indexOf(probe), -1, 'a known plaintext crossed in clear');
      else assert.notEqual(captured.indexOf(probe), -1, 'the control: clear frames carry the plaintext');
    } finally {
      await Promise.all([a!.close(), b!.close()]);
      close();
    }
  });
}

for (const [where, flip] of [['ciphertext', { offset: 4 + 10, mask: 0xff }], ['length header', { offset: 0, mask: 0x01 }]] as const) {
  test(`a byte flipped in a sealed frame's ${where} is refused with TESSERA_ERR_PROTOCOL, logged, and the peer sees its rank lost`, { timeout: 30_000 }, async () => {
    const { connecting, close } = await meshThroughProxy([true, true], flip);
    const [a, b] = (await Promise.all(connecting)) as SocketTransport[];
    try {
      const { log } = await capturingStderr(async () => {
        const message = Buffer.from(known.subarray(0, 100));
        void b.send(0, message).catch(() => undefined);
        void b.send(0, message).catch(() => undefined);
        await assert.rejects(a.receive(1), { code: 'TESSERA_ERR_PROTOCOL' });
        await assert.rejects(a.receive(1), { code: 'TESSERA_ERR_PROTOCOL' });
        await assert.rejects(b.receive(0), { code: 'TESSERA_ERR_RANK_LOST' });
      });
      assert.match(log, /rank 0 dropped its mesh connection with rank 1: TESSERA_ERR_PROTOCOL \(a sealed frame failed authentication/);
    } finally {
      await Promise.all([a!.close(), b!.close()]);
      close();
    }
  });
}

test('ranks that disagree about sealing are refused at the greeting, saying so', { timeout: 30_000 }, async () => {
  const { connecting, close } = await meshThroughProxy([true, false]);
  try {
    const [zero, one] = await Promise.allSettled(connecting);
    for (const outcome of [zero, one]) {
      assert.equal(outcome!.status, 'rejected');
      const reason = (outcome as PromiseRejectedResult).reason as Error & { code?: string };
      assert.equal(reason.code, 'TESSERA_ERR_JOIN_REFUSED');
      assert.match(reason.message, /mesh frames are (sealed|clear) but rank \d's are (sealed|clear); set TESSERA_SEAL_DATA alike on every rank/);
    }
  } finally {
    close();
  }
});
