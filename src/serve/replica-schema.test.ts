import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeEvent } from './replica-protocol.js';
import { parseReplicaJson, replicaEventSchema, replicaLoadSchema } from './replica-schema.js';

const load = {
  model: 'm',
  vocabSize: 512,
  ready: true,
  status: 'ready',
  code: null,
  draining: false,
  limits: { maxModelLen: 512, numBlocks: 64, blockSize: 16, kvCacheDtype: 'f32', loadMs: 3.5, backend: 'reference' },
  stats: { batchSequences: 1, batchTokens: 4, waiting: 0, running: 1, blocksUsed: 2, blocksFree: 62, prefixQueriedTokens: 0, prefixHitTokens: 0, preemptions: 0 },
  activeSequences: 1,
  maxActiveSequences: 64,
};

describe('replica schema', () => {
  it('reads what replicas write, dropping keys a newer replica adds', () => {
    assert.deepEqual(parseReplicaJson(JSON.stringify({ ...load, future: 1 }), replicaLoadSchema, 'load'), load);
    const event = { type: 'output' as const, ids: [5], logprobs: [{ logprob: Number.NEGATIVE_INFINITY, top: [{ id: 5, logprob: -0.5 }] }], text: 'a', promptTokens: 3, cachedPromptTokens: 0 };
    assert.deepEqual(parseReplicaJson(encodeEvent(event).trim(), replicaEventSchema, 'event'), event);
  });

  it('refuses malformed events and loads with TESSERA_ERR_PROTOCOL naming the field', () => {
    const refused = (text: string, pattern: RegExp): void =>
      assert.throws(() => parseReplicaJson(text, replicaEventSchema, 'event'), (error: Error & { code?: string }) => error.code === 'TESSERA_ERR_PROTOCOL' && pattern.test(error.message));
    refused('{"type":"output","ids":[-1],"text":"","promptTokens":0,"cachedPromptTokens":0}', /event\.ids\[0\]/);
    refused('{"type":"output","ids":[],"text":7,"promptTokens":0,"cachedPromptTokens":0}', /event\.text/);
    refused('{"type":"surprise"}', /event\.type/);
    refused('not json', /not JSON/);
    assert.throws(() => parseReplicaJson(JSON.stringify({ ...load, vocabSize: -3 }), replicaLoadSchema, 'load'), /load\.vocabSize/);
  });

  it('checks KV transfer events and the load report\'s pd figures field by field', () => {
    const endpoints = [{ kind: 'unix', path: '/tmp/tessera-kv-1.sock', hostId: 'h/boot' }, { kind: 'tcp', host: '127.0.0.1', port: 4000 }];
    const events = [
      { type: 'kv-reserved', transfer: 'abcdefgh12', skipPositions: 16, endpoints },
      { type: 'kv-received', transfer: 'abcdefgh12', bytes: 4096, wireMs: 0.5, transferMs: 3 },
      { type: 'handoff', transfer: 'abcdefgh12', bytes: 4096, wireMs: 0.5, link: 'unix', prefillMs: 20, tailMs: 1 },
    ];
    for (const event of events) assert.deepEqual(parseReplicaJson(JSON.stringify({ ...event, future: true }), replicaEventSchema, 'event'), event);
    const pd = { role: 'decode', kvTransfer: true, endpoints };
    assert.deepEqual(parseReplicaJson(JSON.stringify({ ...load, pd }), replicaLoadSchema, 'load'), { ...load, pd });
    const refused = (value: unknown, schema: (value: unknown, path: string) => unknown, pattern: RegExp): void =>
      assert.throws(() => parseReplicaJson(JSON.stringify(value), schema, 'x'), (error: Error & { code?: string }) => error.code === 'TESSERA_ERR_PROTOCOL' && pattern.test(error.message));
    refused({ ...events[0], transfer: 'short' }, replicaEventSchema, /x\.transfer/);
    refused({ ...events[0], endpoints: [{ kind: 'tcp', host: 'h', port: 70000 }] }, replicaEventSchema, /x\.endpoints\[0\]/);
    refused({ ...events[0], endpoints: Array.from({ length: 9 }, () => endpoints[1]) }, replicaEventSchema, /x\.endpoints/);
    refused({ ...events[1], bytes: -1 }, replicaEventSchema, /x\.bytes/);
    refused({ ...events[2], link: 'rdma' }, replicaEventSchema, /x\.link/);
    refused({ ...events[2], wireMs: 1e300 }, replicaEventSchema, /x\.wireMs/);
    refused({ ...load, pd: { ...pd, role: 'leader' } }, replicaLoadSchema, /x\.pd\.role/);
    refused({ ...load, pd: { ...pd, endpoints: [{ kind: 'unix', path: 'p' }] } }, replicaLoadSchema, /x\.pd\.endpoints\[0\]/);
  });
});
