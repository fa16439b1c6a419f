/**
 * KvReadPipe: a read resolves only when every rank has answered, a reply's
 * body must be the size its header and the read's rows say, and a lost
 * generation (or a refusal) fails the read.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TesseraError } from '../core/errors.js';
import type { ControlMessage } from './control-message.js';
import { KvReadPipe } from './kv-read-pipe.js';

const HEAD_DIM = 8;

function rows(id: number, layers: [number, number], heads: [number, number], bytes: number): { message: ControlMessage; body: Uint8Array } {
  return { message: { type: 'kv-rows', generation: 1, id, layers, heads, dtype: 'f32' }, body: new Uint8Array(bytes) };
}

test('a KV read resolves once every rank has answered, with every answer', async () => {
  let next = 40;
  const pipe = new KvReadPipe(HEAD_DIM, () => next++);
  const { id, result } = pipe.open(1, 3, 2);
  assert.equal(id, 40, 'ids come from the shared counter');
  let done = false;
  void result.then(() => (done = true));
  // 3 rows × 5 layers × 2 heads × 8 × 4 bytes, keys and values.
  const first = rows(id, [0, 5], [0, 2], 2 * 3 * 5 * 2 * HEAD_DIM * 4);
  assert.equal(pipe.check(first), undefined);
  pipe.answer(id, { layers: [0, 5], heads: [0, 2], dtype: 'f32', body: first.body });
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(done, false, 'one of two ranks answered');
  pipe.answer(id, { layers: [0, 5], heads: [2, 4], dtype: 'f32', body: first.body });
  const parts = await result;
  assert.deepEqual(parts.map((part) => part.heads), [[0, 2], [2, 4]]);
  assert.equal(pipe.size, 0);
});

test('a KV rows body of the wrong size, or with reversed ranges, is a protocol error; an empty replicated part is not', () => {
  const pipe = new KvReadPipe(HEAD_DIM, () => 1);
  const { id } = pipe.open(1, 4, 2);
  assert.match(pipe.check(rows(id, [0, 2], [0, 1], 100))?.message ?? '', /came as 100 bytes; its header and runs say 512/);
  assert.equal(pipe.check(rows(id, [2, 0], [0, 1], 0))?.code, 'TESSERA_ERR_PROTOCOL');
  assert.equal(pipe.check(rows(id, [0, 2], [1, 1], 0)), undefined, 'a rank that leaves its replicated heads to another sends none');
  assert.equal(pipe.check(rows(id + 1, [0, 2], [0, 1], 3)), undefined, 'rows of a read no longer in flight are dropped unread');
});

test('a refusal or a lost generation fails the read; later generations are untouched', async () => {
  let next = 1;
  const pipe = new KvReadPipe(HEAD_DIM, () => next++);
  const refused = pipe.open(1, 1, 2);
  pipe.refuse(refused.id, new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', 'block 99 is outside'));
  await assert.rejects(refused.result, /block 99/);
  const old = pipe.open(3, 1, 1);
  const current = pipe.open(4, 1, 1);
  pipe.failGeneration(3, new TesseraError('TESSERA_ERR_RANK_LOST', 'rank 1 was lost'));
  await assert.rejects(old.result, { code: 'TESSERA_ERR_RANK_LOST' });
  assert.equal(pipe.size, 1);
  pipe.answer(current.id, { layers: [0, 1], heads: [0, 1], dtype: 'f16', body: new Uint8Array(2 * HEAD_DIM * 2) });
  assert.equal((await current.result).length, 1);
});
