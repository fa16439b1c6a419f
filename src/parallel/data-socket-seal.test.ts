/**
 * The sealed frames of the addon's tcp data sockets (sealed-link.h), with
 * real rank processes and a man in the middle: rank 1 reaches rank 0's data
 * port through a proxy that records every byte, or flips one byte of the
 * first frame after the greeting. Recorded: the mesh runs its collectives
 * bit for bit, and neither a known activation vector nor a known all-to-all
 * payload appears in the captured bytes (with TESSERA_SEAL_DATA=0, the
 * control, both do). Flipped — in a record's ciphertext or in its length
 * header: rank 0 refuses the frame with TESSERA_ERR_PROTOCOL and logs it, the
 * connection is dropped, and rank 1's collective ends TESSERA_ERR_RANK_LOST;
 * nobody hangs or crashes. Ranks that disagree about sealing
 * (TESSERA_SEAL_DATA) are refused at the greeting, with a message that says so.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:net';
import { tcpRelay } from '../testing/tcp-relay.js';
import { test } from 'node:test';
import { dataPort, startRank, type RankProcess } from '../testing/collective-rank-process.js';
import { loadNativeComm } from './native-comm.js';

/** The greeting's bytes from the dialer: offer (40) and proof (32); frames follow. */
const GREETING_BYTES = 72;

interface Proxy {
  server: Server;
  port: number;
  /** Everything rank 1 sent and everything rank 0 answered. */
  captured: () => Buffer;
}

/** A proxy in front of `target` that records both directions and, with `flipAt`, inverts that byte of the dialer's stream. */
async function middleman(target: { host: string; port: number }, flipAt?: number): Promise<Proxy> {
  const chunks: Buffer[] = [];
  const { server, port } = await tcpRelay(target, () => {
    let seen = 0;
    return {
      fromDialer: (chunk) => {
        if (flipAt !== undefined && flipAt >= seen && flipAt < seen + chunk.length) chunk[flipAt - seen] ^= 0xff;
        seen += chunk.length;
        chunks.push(chunk);
      },
      fromTarget: (chunk) => void chunks.push(chunk),
    };
  });
  return { server, port, captured: () => Buffer.concat(chunks) };
}

/** Runs a 2-rank mesh with rank 1 dialing rank 0 through a middleman; returns both verdicts, their logs and the capture. */
async function meshThroughProxy(env: Record<string, string>, flipAt?: number): Promise<{ results: Record<string, unknown>[]; ranks: RankProcess[]; captured: Buffer }> {
  const token = randomBytes(16).toString('hex');
  const ranks = await Promise.all([startRank(0, env), startRank(1, env)]);
  const proxy = await middleman(dataPort(ranks[0].address), flipAt);
  try {
    const addresses = ranks.map((rank) => rank.address);
    ranks[0].child.send({ addresses, token });
    ranks[1].child.send({ addresses: [{ ...addresses[0], data: `127.0.0.1:${proxy.port}` }, addresses[1]], token });
    const results = await Promise.all(ranks.map((rank) => rank.result));
    return { results, ranks, captured: proxy.captured() };
  } finally {
    proxy.server.close();
    for (const rank of ranks) rank.child.kill('SIGKILL');
  }
}

/** The inputs collective-rank.ts gives its ranks (its `spread`), as bytes. */
function spreadBytes(count: number, seed: number): Buffer {
  let state = seed >>> 0 || 1;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    out[i] = ((state / 2 ** 32) * 2 - 1) * 10 ** ((state >>> 27) % 8);
  }
  return Buffer.from(out.buffer);
}

/** 64 bytes of rank 1's all-reduce input of 2048 floats, and of its 9 MB all-to-all part for rank 0. */
const activation = spreadBytes(2048, 1000 * 2048 + 1).subarray(256, 320);
const allToAllPart = Buffer.from(Array.from({ length: 64 }, (_, i) => (31 + 1000 + i) & 0xff));

const skip = loadNativeComm() === undefined ? 'the native addon is not built' : false;

test('sealed tcp data frames show an eavesdropper no plaintext, and the mesh stays bit for bit (clear frames, the control, do show it)', { skip, timeout: 180_000 }, async () => {
  const sealed = await meshThroughProxy({});
  for (const [rank, result] of sealed.results.entries()) assert.deepEqual(result, { ok: true }, sealed.ranks[rank]!.stderr());
  assert.ok(sealed.captured.length > 20_000_000, `the proxy carried the collectives (${sealed.captured.length} bytes)`);
  assert.equal(sealed.captured.indexOf(activation), -1, 'an activation vector crossed in clear');
  assert.equal(sealed.captured.indexOf(allToAllPart), -1, 'an all-to-all payload crossed in clear');

  const clear = await meshThroughProxy({ TESSERA_SEAL_DATA: '0' });
  for (const [rank, result] of clear.results.entries()) assert.deepEqual(result, { ok: true }, clear.ranks[rank]!.stderr());
  assert.notEqual(clear.captured.indexOf(activation), -1, 'the control: clear frames carry the activation as it is');
  assert.notEqual(clear.captured.indexOf(allToAllPart), -1, 'the control: clear frames carry the all-to-all payload');
});

for (const [where, offset] of [['ciphertext', 10], ['length header', 2]] as const) {
  test(`a byte flipped in a sealed frame's ${where} is refused with TESSERA_ERR_PROTOCOL, logged, and the peer's collective ends RANK_LOST`, { skip, timeout: 120_000 }, async () => {
    const run = await meshThroughProxy({}, GREETING_BYTES + offset);
    const [zero, one] = run.results;
    assert.equal(zero!.code, 'TESSERA_ERR_PROTOCOL', JSON.stringify(zero) + run.ranks[0]!.stderr());
    assert.match(run.ranks[0]!.stderr(), /rank 0 dropped its data connection with rank 1: TESSERA_ERR_PROTOCOL/);
    assert.equal(one!.code, 'TESSERA_ERR_RANK_LOST', JSON.stringify(one) + run.ranks[1]!.stderr());
  });
}

test('ranks that disagree about sealing (TESSERA_SEAL_DATA) are refused at the greeting, saying so', { skip, timeout: 120_000 }, async () => {
  const token = randomBytes(16).toString('hex');
  const ranks = await Promise.all([startRank(0, { TESSERA_SEAL_DATA: '0' }), startRank(1)]);
  ranks[0]!.result.catch(() => undefined); // rank 0 never gets its peer; it is killed below
  try {
    const addresses = ranks.map((rank) => rank.address);
    for (const rank of ranks) rank.child.send({ addresses, token });
    // Rank 1's connect fails (rank 0 closed its greeting); rank 0 logs why and would wait for a real rank 1 until its deadline.
    // The TypeScript mesh links (opened first, sealed under the same setting) refuse it before the data sockets are dialed.
    // Every rank dials every other, so either refusal may come first: rank 0 refusing rank 1's greeting, or rank 1 refusing rank 0's.
    await assert.rejects(ranks[1]!.result, /exited/);
    const refusal =
      /(rank 0 refused a (data|mesh) connection .*TESSERA_ERR_JOIN_REFUSED \((a greeting for sealed data frames, and this rank's are clear|rank 0's mesh frames are clear but rank 1's are sealed)|rank 1 refused the mesh connection of rank 0: rank 1's mesh frames are sealed but rank 0's are clear).*set TESSERA_SEAL_DATA alike/;
    for (let waited = 0; !refusal.test(ranks[0]!.stderr()) && waited < 20_000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.match(ranks[0]!.stderr(), refusal);
  } finally {
    for (const rank of ranks) rank.child.kill('SIGKILL');
  }
});
