/**
 * Mutation fuzzing of data frames against a live rank: the worker runs the
 * last stage of a two-stage mesh, and this test plays both its coordinator
 * and its first stage, down to the raw socket bytes. Each case is a fresh
 * generation: stray mesh connections come first (the previous generation's
 * hello replayed, a mutated hello, a frame header of a gigabyte), which the
 * rank refuses while it still takes its real peer; then a step whose hidden
 * states frame is mutated (length prefix and payload: bit flips, boundary
 * values, cuts, inserts; NaN and infinite floats). The rank must answer with
 * logits of the right size, or fail the generation with a coded error that
 * is not TESSERA_ERR_INTERNAL, and serve the next generation. Fixed seed and
 * case counts; the test reports what it tried.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { test } from 'node:test';
import fc from 'fast-check';
import { encodeControl, stepMessage, type ControlMessage } from './control-message.js';
import { modelIdentityOf } from './model-identity.js';
import { FramedSocket } from '../parallel/framed-socket.js';
import { acceptGreeting, dialGreeting, greetingProof } from '../parallel/mesh-greeting.js';
import type { MeshAddress } from '../parallel/socket-transport.js';
import { applyMutations, fuzzSettings, mutationsArbitrary, Tally, type Mutation } from '../testing/byte-mutation.js';
import { FakeCoordinator } from '../testing/fake-coordinator.js';
import { fixture } from '../testing/fixtures.js';
import { joinRank, planFor, POOL, prepare, type LiveRank, type RankModel } from '../testing/rank-driver.js';

// Clear frames: the mutations reach the rank's own framing and payload checks. A sealed link (the tcp
// default) refuses any altered byte before those (src/parallel/socket-transport-seal.test.ts).
process.env.TESSERA_SEAL_DATA = '0';

const TOKEN = 'data-fuzz-token-9d41e7';
const HIDDEN = 64;
const TOKENS = 3;
const CODES = new Set(['TESSERA_ERR_PROTOCOL', 'TESSERA_ERR_FRAME_TOO_LARGE', 'TESSERA_ERR_RANK_LOST']);

function frame(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length, true);
  out.set(payload, 4);
  return out;
}

/** A dialer's half of a greeting (offer, then a proof against a listener nonce it guessed), as a recording would replay it; fixed nonces keep the fuzz cases the same every run. */
function helloFrame(meshToken: string, from: number, to: number): Uint8Array {
  const [nonce, guessed] = ['5a'.repeat(32), 'c3'.repeat(32)];
  const json = (value: object): Uint8Array => frame(new TextEncoder().encode(JSON.stringify(value)));
  return Buffer.concat([json({ rank: from, nonce }), json({ proof: greetingProof(meshToken, 'dialer', 2, from, to, nonce, guessed) })]);
}

/** Greets the worker's mesh listener as rank 0, as a real rank does. */
async function greetWorker(address: MeshAddress, meshToken: string): Promise<Socket> {
  const socket = await write(address, new Uint8Array(0));
  await dialGreeting(new FramedSocket(socket, (why) => new Error(why)), meshToken, 2, 0, 1);
  return socket;
}

function hiddenFrame(fill: (index: number) => number): Uint8Array {
  return frame(new Uint8Array(Float32Array.from({ length: TOKENS * HIDDEN }, (_, i) => fill(i)).buffer));
}

function write(address: MeshAddress, bytes: Uint8Array): Promise<Socket> {
  if (address.kind !== 'tcp') throw new Error('the fuzz mesh is TCP');
  return new Promise((resolve, reject) => {
    const socket = connect({ host: address.host, port: address.port }, () => socket.write(bytes, () => resolve(socket)));
    socket.on('error', reject);
  });
}

/** Stage 0's listener: the worker dials it and reads what this test writes on the accepted socket. */
async function stageZeroListener(): Promise<{ server: Server; address: MeshAddress; accepted: Promise<Socket> }> {
  const server = createServer();
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, address: { kind: 'tcp', host: '127.0.0.1', port: (server.address() as { port: number }).port }, accepted };
}

interface Case {
  label: string;
  /** Stray connections to the worker's mesh listener before the real peer. */
  strays: ((meshToken: string, previous: string) => Uint8Array)[];
  hidden: Uint8Array;
}

class Mesh {
  private previousToken = randomBytes(16).toString('hex');
  private step = 1;
  readonly tally = new Tally();

  constructor(
    private readonly live: LiveRank,
    private readonly model: RankModel,
  ) {}

  /** One generation: strays, the real connection, a step fed `hidden`; what the rank said. */
  async run(fuzz: Case): Promise<string> {
    const meshToken = randomBytes(16).toString('hex');
    const own = await prepare(this.live, 1, 2);
    const stage0 = await stageZeroListener();
    const open: Socket[] = [];
    try {
      await this.live.worker.send(planFor(this.live, this.model, [stage0.address, own], meshToken, [[0, 2], [2, this.model.numLayers]]));
      for (const stray of fuzz.strays) open.push(await write(own, stray(meshToken, this.previousToken)));
      const greeted = greetWorker(own, meshToken);
      const toWorker = await stage0.accepted;
      open.push(toWorker);
      // The worker dials stage 0 and greets it; this test answers as rank 0 would.
      assert.deepEqual(await acceptGreeting(new FramedSocket(toWorker, (why) => new Error(why)), meshToken, 2, 0), { rank: 1 });
      open.push(await greeted);
      const ready = await this.live.worker.expect('ready');
      assert.ok(ready, 'the rank loads its stage despite the stray connections');
      const request = { blockTable: Int32Array.of(0), ids: Int32Array.of(1, 2, 3), positions: Int32Array.of(0, 1, 2), rows: 'last' as const };
      await this.live.worker.send(stepMessage(this.live.generation, this.step++, POOL, [request]) as ControlMessage);
      toWorker.end(fuzz.hidden);
      return await this.outcome();
    } finally {
      this.previousToken = meshToken;
      for (const socket of open) socket.destroy();
      stage0.server.close();
    }
  }

  private async outcome(): Promise<string> {
    for (;;) {
      const envelope = await this.live.worker.next();
      assert.ok(envelope, 'the worker keeps its control connection whatever its peers send');
      const { message, body } = envelope;
      if (message.type === 'logits') {
        assert.equal(body.byteLength, 512 * 4);
        return 'logits';
      }
      if (message.type === 'rank-failed' || message.type === 'step-refused') {
        assert.ok(CODES.has(message.code), `${message.code}: ${message.message}`);
        return `${message.type} ${message.code}`;
      }
    }
  }
}

function cases(): Case[] {
  const valid = hiddenFrame((i) => Math.sin(i));
  const fixed: Case[] = [
    { label: 'well-formed', strays: [], hidden: valid },
    { label: 'replayed hello of the last generation', strays: [(_, previous) => helloFrame(previous, 0, 1)], hidden: valid },
    { label: 'hello of a rank to itself', strays: [(token) => helloFrame(token, 1, 1)], hidden: valid },
    { label: 'hello header of 1 GiB', strays: [() => Uint8Array.of(0, 0, 0, 0x40)], hidden: valid },
    { label: 'hello of rank 7 of 2', strays: [(token) => helloFrame(token, 7, 1)], hidden: valid },
    { label: 'NaN hidden states', strays: [], hidden: hiddenFrame(() => Number.NaN) },
    { label: 'infinite hidden states', strays: [], hidden: hiddenFrame((i) => (i % 2 ? Infinity : -Infinity)) },
    { label: 'hidden header of 2^31', strays: [], hidden: Uint8Array.of(0, 0, 0, 0x80, 1, 2, 3) },
    { label: 'hidden frame one float short', strays: [], hidden: frame(valid.subarray(8)) },
    { label: 'empty hidden frame', strays: [], hidden: frame(new Uint8Array(0)) },
  ];
  const helloLength = helloFrame('0'.repeat(32), 0, 1).length;
  const mutated = fc.sample(fc.tuple(mutationsArbitrary(valid.length), fc.option(mutationsArbitrary(helloLength), { freq: 3 })), fuzzSettings(24));
  return [
    ...fixed,
    ...mutated.map(([hidden, hello]: [Mutation[], Mutation[] | null]) => ({
      label: `hidden ${hidden.map((m) => m.kind).join('+')}${hello ? `, hello ${hello.map((m) => m.kind).join('+')}` : ''}`,
      strays: hello ? [(token: string) => applyMutations(helloFrame(token, 0, 1), hello)] : [],
      hidden: applyMutations(valid, hidden),
    })),
  ];
}

test('data frames and mesh hellos mutated: a live rank refuses them with codes and serves the next generation', async (t) => {
  const path = fixture(t, 'stories260K.bin');
  if (!path) return;
  const model: RankModel = { path, modelId: modelIdentityOf(path), numLayers: 5 };
  const fake = await FakeCoordinator.open(TOKEN);
  const live = await joinRank(fake, TOKEN);
  const mesh = new Mesh(live, model);
  try {
    const all = cases();
    for (const fuzz of all) mesh.tally.add(await mesh.run(fuzz));
    assert.equal(await mesh.run(all[0]!), 'logits', 'a well-formed generation still serves');
    t.diagnostic(`data frame fuzz: ${all.length} generations (${all.length - 10} mutated at random): ${mesh.tally.toString()}`);
  } finally {
    live.worker.close();
    fake.close();
  }
});
