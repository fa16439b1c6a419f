import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { MeshListener, connectMesh } from './socket-transport.js';

describe('connectMesh', () => {
  it('connects when a peer dials before this rank starts connecting (its connection waits in the listener)', { timeout: 20_000 }, async () => {
    const listeners = await Promise.all([MeshListener.open('unix'), MeshListener.open('unix')]);
    const addresses = listeners.map((listener) => listener.address);
    const first = connectMesh(0, addresses, listeners[0], 'token');
    // Rank 1 learns the addresses late, as a forked worker under load may: rank 0 has already dialed it.
    while ((await new Promise<number>((resolve) => listeners[1].server.getConnections((_, count) => resolve(count)))) === 0) await sleep(5);
    const [a, b] = await Promise.all([first, connectMesh(1, addresses, listeners[1], 'token')]);
    try {
      const message = Uint8Array.of(1, 2, 3);
      const [, received] = await Promise.all([a.send(1, message), b.receive(0)]);
      assert.deepEqual(received, message);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
