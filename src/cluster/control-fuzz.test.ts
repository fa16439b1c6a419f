/**
 * Mutation fuzzing of control frames against a live rank: this test plays
 * the coordinator (over the real TLS join link) of a worker running in this
 * process, and sends it steps and plans with one field replaced by a value
 * of the wrong type, a boundary number, a huge string or array, or an extra
 * key, and step frames with their bytes mutated (header offset included).
 * After each, a well-formed step must still get its logits — or the worker
 * must have dropped the connection with a coded protocol error (and is
 * started again); a rank failing a generation must say why with a code, and
 * never TESSERA_ERR_INTERNAL. Fixed seed and case counts (fuzzSettings);
 * the test reports what it tried and what came back.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { isTesseraError } from '../core/errors.js';
import { encodeControl, type ControlMessage } from './control-message.js';
import { modelIdentityOf } from './model-identity.js';
import { applyMutations, fuzzSettings, mutationsArbitrary, Tally } from '../testing/byte-mutation.js';
import { FakeCoordinator } from '../testing/fake-coordinator.js';
import { applyJsonMutation, jsonMutationArbitrary } from '../testing/json-mutation.js';
import { fixture } from '../testing/fixtures.js';
import { planFor, planOne, prepare, servingRank, validKvRead, validKvWrite, validStep, type LiveRank, type RankModel } from '../testing/rank-driver.js';

const TOKEN = 'control-fuzz-token-5f0c2a';

/** Codes a worker may end with when its coordinator sends it garbage. */
const DROP_CODES = new Set(['TESSERA_ERR_PROTOCOL', 'TESSERA_ERR_FRAME_TOO_LARGE', 'TESSERA_ERR_RATE_LIMITED', 'TESSERA_ERR_LAYOUT_MISMATCH']);

const STEP_PATHS = [
  'generation',
  'id',
  'pool',
  'pool.numBlocks',
  'pool.blockSize',
  'segments',
  'segments[0]',
  'segments[0].blockTable',
  'segments[0].blockTable[0]',
  'segments[0].blockTable[1]',
  'segments[0].ids',
  'segments[0].ids[1]',
  'segments[0].positions',
  'segments[0].positions[2]',
  'segments[0].rows',
  'segments[0].pick',
  'segments[0].pick.temperature',
  'segments[0].pick.topK',
  'segments[0].pick.topP',
  'segments[0].pick.u',
  'type',
  '+extra',
  '+__proto__',
  'segments[0].+constructor',
];
const KV_WRITE_PATHS = ['pool.blockSize', 'blockTable', 'blockTable[0]', 'layer', 'from', 'count', 'heads', 'heads[1]', 'dtype', '+extra'];
const KV_READ_PATHS = ['generation', 'id', 'pool', 'pool.numBlocks', 'runs', 'runs[0]', 'runs[0].blockTable', 'runs[0].blockTable[1]', 'runs[0].from', 'runs[0].count', 'type', '+extra'];
const PLAN_PATHS = ['tp', 'pp', 'ep', 'layers', 'layers[0]', 'layers[0][1]', 'addresses', 'addresses[0]', 'addresses[0].port', 'modelId', 'modelPath', 'meshToken', 'backend', 'threads', 'kvCacheDtype', '+extra'];

class Session {
  private probe = 1_000_000;
  readonly tally = new Tally();

  constructor(
    private live: LiveRank,
    private readonly fake: FakeCoordinator,
    private readonly model: RankModel,
  ) {}

  /**
   * Sends the frame `make` builds for the current generation, then a
   * well-formed step; what happened, as a label. A worker that hung up must
   * have ended with a coded protocol error; it is started again.
   */
  async tryStep(make: (generation: number) => Uint8Array): Promise<string> {
    const probe = this.probe++;
    await this.live.worker.sendRaw(make(this.live.generation)).catch(() => undefined);
    await this.live.worker.send(validStep(this.live.generation, probe)).catch(() => undefined);
    const answers: string[] = [];
    for (;;) {
      const envelope = await this.live.worker.next();
      if (!envelope) return `dropped ${await this.restart()}`;
      const { message, body } = envelope;
      if (message.type === 'logits' && message.id === probe) {
        assert.equal(body.byteLength, 512 * 4, 'the probe step gets one row of logits');
        return answers.length === 0 ? 'ignored' : answers.join('+');
      }
      if (message.type === 'rank-failed') {
        assert.notEqual(message.code, 'TESSERA_ERR_INTERNAL', message.message);
        await planOne(this.live, this.model);
        return `rank-failed ${message.code}`;
      }
      if (message.type === 'kv-refused') assert.notEqual(message.code, 'TESSERA_ERR_INTERNAL', message.message);
      answers.push(message.type === 'step-refused' || message.type === 'kv-refused' ? `refused ${message.code}` : message.type);
    }
  }

  /** Rows written with a kv-write, then read back with a kv-read: the bytes the read returned. */
  async writeThenRead(layer: number, fill: number): Promise<Uint8Array> {
    const write = validKvWrite(this.live.generation, layer, fill);
    await this.live.worker.send(write.message, write.body);
    await this.live.worker.send({ ...validKvRead(this.live.generation, 9), runs: [{ blockTable: [0, 1], from: 0, count: 3 }] });
    for (;;) {
      const envelope = await this.live.worker.next();
      assert.ok(envelope, 'the rank answers the read');
      if (envelope.message.type === 'kv-rows') return envelope.body;
      assert.fail(`the rank answered ${envelope.message.type} to a well-formed write and read`);
    }
  }

  /** A new generation whose plan is `mutate`d; what the rank answered. */
  async tryPlan(mutate: (plan: ControlMessage) => unknown): Promise<string> {
    const address = await prepare(this.live, 0, 1);
    const plan = planFor(this.live, this.model, [address], '0'.repeat(32), [[0, this.model.numLayers]]);
    await this.live.worker.sendRaw(encodeControl(mutate(plan) as ControlMessage));
    for (;;) {
      const envelope = await this.live.worker.next();
      if (!envelope) return `dropped ${await this.restart()}`;
      const { message } = envelope;
      if (message.type === 'ready') return 'ready';
      if (message.type === 'rank-failed') {
        assert.notEqual(message.code, 'TESSERA_ERR_INTERNAL', message.message);
        return `rank-failed ${message.code}`;
      }
    }
  }

  /** The rank serves a well-formed step (after a plan case, on a fresh generation). */
  async serves(): Promise<void> {
    await planOne(this.live, this.model);
    assert.equal(await this.tryStep((generation) => encodeControl(validStep(generation, 0))), 'logits', 'a well-formed step is answered with logits');
  }

  close(): void {
    this.live.worker.close();
  }

  private async restart(): Promise<string> {
    const ended = await this.live.ended;
    assert.ok(isTesseraError(ended) && DROP_CODES.has(ended.code), `the worker ended with a coded protocol error, not ${String(ended)}`);
    this.live = await servingRank(this.fake, TOKEN, this.model);
    return ended.code;
  }
}

test('control frames mutated field by field and byte by byte: a live rank refuses them with codes and keeps serving', async (t) => {
  const path = fixture(t, 'stories260K.bin');
  if (!path) return;
  const model: RankModel = { path, modelId: modelIdentityOf(path), numLayers: 5 };
  const fake = await FakeCoordinator.open(TOKEN);
  const session = new Session(await servingRank(fake, TOKEN, model), fake, model);
  try {
    await session.serves();
    const stepCases = fc.sample(jsonMutationArbitrary(STEP_PATHS), fuzzSettings(40));
    for (const mutation of stepCases) {
      const outcome = await session.tryStep((generation) => encodeControl(applyJsonMutation(validStep(generation, 7, true), mutation) as ControlMessage));
      session.tally.add(`step ${outcome}`);
    }
    // KV reads (a prefill mesh reading its rows back): the rows validStep wrote come back; a mutated read is refused with a code.
    assert.equal(await session.tryStep((generation) => encodeControl(validKvRead(generation, 8))), 'kv-rows');
    for (const mutation of fc.sample(jsonMutationArbitrary(KV_READ_PATHS), fuzzSettings(16))) {
      session.tally.add(`kv-read ${await session.tryStep((generation) => encodeControl(applyJsonMutation(validKvRead(generation, 8), mutation) as ControlMessage))}`);
    }
    // KV writes (a decode mesh taking rows another replica computed): what is written is what a read returns, layer by layer.
    const written = validKvWrite(0, 3, -2.25).body;
    const read = await session.writeThenRead(3, -2.25);
    const layerBytes = written.byteLength;
    assert.deepEqual(new Uint8Array(read.subarray(3 * layerBytes, 4 * layerBytes)), written, 'layer 3 reads back as written (keys, then values)');
    for (const mutation of fc.sample(jsonMutationArbitrary(KV_WRITE_PATHS), fuzzSettings(12))) {
      session.tally.add(`kv-write ${await session.tryStep((generation) => encodeControl(applyJsonMutation(validKvWrite(generation).message, mutation) as ControlMessage, validKvWrite(generation).body))}`);
    }
    session.tally.add(`kv-write short body ${await session.tryStep((generation) => encodeControl(validKvWrite(generation).message, new Uint8Array(12)))}`);
    const length = encodeControl(validStep(1, 7, true)).length;
    for (const mutations of fc.sample(mutationsArbitrary(length), fuzzSettings(16))) {
      session.tally.add(`bytes ${await session.tryStep((generation) => applyMutations(encodeControl(validStep(generation, 7, true)), mutations))}`);
    }
    // The handshake's model and layout halves, named: another model's identity, layers that do not tile the model.
    assert.equal(await session.tryPlan((plan) => ({ ...plan, modelId: 'f'.repeat(64) })), 'rank-failed TESSERA_ERR_MODEL_MISMATCH');
    assert.equal(await session.tryPlan((plan) => ({ ...plan, layers: [[0, 2]] })), 'rank-failed TESSERA_ERR_LAYOUT_MISMATCH');
    assert.equal(await session.tryPlan((plan) => ({ ...plan, tp: 2 })), 'rank-failed TESSERA_ERR_LAYOUT_MISMATCH');
    // The shared-rows overlap the driver chose: a fraction to 0.5 loads (a one-rank mesh has no pair to share with);
    // anything else is not our protocol.
    assert.equal(await session.tryPlan((plan) => ({ ...plan, rowShare: 0.25 })), 'ready');
    assert.match(await session.tryPlan((plan) => ({ ...plan, rowShare: 0.7 })), /PROTOCOL/);
    for (const mutation of fc.sample(jsonMutationArbitrary(PLAN_PATHS), fuzzSettings(14))) {
      session.tally.add(`plan ${await session.tryPlan((plan) => applyJsonMutation(plan, mutation))}`);
    }
    await session.serves();
    t.diagnostic(`control fuzz: ${stepCases.length} step fields, 16 kv-read fields, 12 kv-write fields, 16 byte-mutated frames, 14 plan fields: ${session.tally.toString()}`);
  } finally {
    session.close();
    fake.close();
  }
});
