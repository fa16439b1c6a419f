/**
 * A worker's reply to a step with picks is checked against the step before
 * anyone reads it: the logits of exactly the unpicked rows, and an id in the
 * vocabulary for exactly the picked ones (-1 for the others).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ControlMessage, Envelope } from './control-message.js';
import type { StepRequest } from './rank-runner.js';
import { checkBody, StepPipe, stepRows } from './step-pipe.js';

const VOCAB = 100;
const PICK = { temperature: 0, topK: 0, topP: 1, minP: 0, u: 0 };

function request(rows: StepRequest['rows'], tokens: number, pick?: typeof PICK): StepRequest {
  return { blockTable: Int32Array.of(0), ids: new Int32Array(tokens), positions: Int32Array.from({ length: tokens }, (_, i) => i), rows, ...(pick ? { pick } : {}) };
}

function reply(id: number, logitRows: number, ids?: number[]): Envelope {
  const message: ControlMessage = { type: 'logits', generation: 1, id, computeMs: 1, waitMs: 0, ...(ids ? { ids } : {}) };
  return { message, body: new Uint8Array(logitRows * VOCAB * 4) };
}

test('the rows a step expects: all of an all segment, the picked last row, the unpicked one as logits', () => {
  const rows = stepRows([request('all', 2), request('last', 3, PICK), request('none', 4), request('last', 1)], VOCAB);
  assert.deepEqual(Array.from(rows.picked), [0, 0, 1, 0]);
  assert.equal(rows.logitBytes, 3 * VOCAB * 4);
});

test('a reply is refused unless its ids match the picked rows and its body the others', () => {
  const pipe = new StepPipe();
  const { id } = pipe.open(1, stepRows([request('last', 1, PICK), request('last', 1)], VOCAB));
  assert.equal(checkBody(reply(id, 1, [42, -1]), pipe), undefined, 'a good reply');
  const refused = (envelope: Envelope, what: string): void => assert.equal(checkBody(envelope, pipe)?.code, 'TESSERA_ERR_PROTOCOL', what);
  refused(reply(id, 1), 'no ids for a picked row');
  refused(reply(id, 2, [42, -1]), 'logits for a picked row too');
  refused(reply(id, 1, [VOCAB, -1]), 'an id outside the vocabulary');
  refused(reply(id, 1, [-1, -1]), 'a picked row left unpicked');
  refused(reply(id, 1, [42, 7]), 'an id for a row sent as logits');
  refused(reply(id, 1, [42]), 'too few ids');
  const plain = pipe.open(1, stepRows([request('last', 1)], VOCAB)).id;
  assert.equal(checkBody(reply(plain, 1), pipe), undefined, 'a step without picks needs no ids');
});

test('a burst\'s reply is refused unless it carries one id in the vocabulary per row for each later step asked, and no burst comes unasked', () => {
  const pipe = new StepPipe();
  const { id } = pipe.open(1, stepRows([request('last', 1, PICK), request('last', 1, PICK)], VOCAB, 2));
  const burst = (ids: number[]): Envelope => {
    const envelope = reply(id, 0, [42, 43]);
    return { ...envelope, message: { ...envelope.message, burst: ids } as ControlMessage };
  };
  assert.equal(checkBody(burst([1, 2, 3, 4]), pipe), undefined, 'two later steps of two rows');
  const refused = (envelope: Envelope, what: string): void => assert.equal(checkBody(envelope, pipe)?.code, 'TESSERA_ERR_PROTOCOL', what);
  refused(burst([1, 2, 3]), 'a step short');
  refused(burst([1, 2, 3, 4, 5, 6]), 'a step more than asked');
  refused(burst([1, 2, VOCAB, 4]), 'an id outside the vocabulary');
  refused(reply(id, 0, [42, 43]), 'no burst where one was asked');
  const single = pipe.open(1, stepRows([request('last', 1, PICK)], VOCAB)).id;
  refused({ message: { type: 'logits', generation: 1, id: single, computeMs: 1, waitMs: 0, ids: [42], burst: [7] }, body: new Uint8Array(0) }, 'a burst nobody asked for');
});
