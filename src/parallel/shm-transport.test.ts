import { it } from 'node:test';
import assert from 'node:assert/strict';
import { abortCollectives } from './native-comm.js';
import { shmMesh } from './shm-mesh.case.js';
import { transportSuite } from './transport.case.js';

transportSuite('shm', async (size) => shmMesh(size));

it('abortCollectives() fails a pending shm receive with TESSERA_ERR_RANK_LOST; a mesh made afterwards works', async () => {
  const [a, b] = shmMesh(2);
  const pending = a.receive(1);
  abortCollectives();
  await assert.rejects(pending, { code: 'TESSERA_ERR_RANK_LOST', message: /aborted/ });
  await Promise.all([a.close(), b.close()]);
  const [c, d] = shmMesh(2);
  const [, received] = await Promise.all([c.send(1, Uint8Array.of(7)), d.receive(0)]);
  assert.deepEqual(received, Uint8Array.of(7));
  await Promise.all([c.close(), d.close()]);
});
