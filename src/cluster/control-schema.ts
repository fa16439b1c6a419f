/**
 * The schema of every control message (control-message.ts), checked as each
 * frame is decoded: types, and bounds on every number, string and array, so
 * that what a peer sends is refused (TESSERA_ERR_PROTOCOL) before it sizes an
 * allocation or indexes anything. Bounds that depend on the receiver's state
 * (a block id against its KV pool, a rank against the mesh size) are checked
 * where that state is (RankRunner.validate, RankSession).
 */
import type { ErrorCode } from '../core/errors.js';
import { KV_DTYPES } from '../core/kv-dtype.js';
import type { TraceEvent } from '../core/trace-event.js';
import type { KvLayout } from './rank-runner.js';
import type { MeshAddress } from '../parallel/socket-transport.js';
import type { NodeHardware } from './cluster-state.js';
import type { ControlMessage, HeartbeatTiming, KvReadRun, RankStepSums, StepSegment } from './control-message.js';
import type { TokenPick } from '../engine/token-pick.js';
import { MAX_BURST } from './decode-burst.js';
import { array, bool, either, int, num, object, oneOf, optional, pair, record, str, tagged, type Schema } from '../core/schema.js';

const SAFE = Number.MAX_SAFE_INTEGER;
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
/** Ranks in one mesh. */
const MAX_RANKS = 4096;
/** Token ids, positions or block ids in one segment of a step. */
const MAX_SEGMENT = 1 << 20;
/** Sequences in one step. */
const MAX_SEGMENTS = 4096;
const MESSAGE = str(4096);
const PATH = str(4096);

const generation = int(0, SAFE);
const stepId = int(0, SAFE);
/** A step id, or -1 for "not a step". */
const stepOrNone = int(-1, SAFE);
const bytes = num(0, 2 ** 62);
/** Times are differences of clocks: a rounding may dip a hair below 0. */
const millis = num(-1e6, 1e12);

/** The code is only carried back into a TesseraError; its form is checked, its name is the peer's word. */
const errorCode = str(64, /^TESSERA_ERR_[A-Z0-9_]+$/) as Schema<ErrorCode>;

const hardware = object<NodeHardware>({
  memoryBytes: bytes,
  cores: int(1, 1 << 16),
  matmulGflops: num(0, 1e9),
  accelerator: str(256),
});

const heartbeat = object<HeartbeatTiming>({ intervalMs: int(1, 3_600_000), timeoutMs: int(1, 36_000_000) });

/** The native data-plane socket beside a socket address: "host:port" or a path. */
const dataSocket = optional(str(4096));
const tcpAddress = object<Extract<MeshAddress, { kind: 'tcp' }>>({ kind: oneOf('tcp'), host: str(255), port: int(1, 65535), data: dataSocket });
const unixAddress = object<Extract<MeshAddress, { kind: 'unix' }>>({ kind: oneOf('unix'), path: PATH, data: dataSocket });
const shmAddress = object<Extract<MeshAddress, { kind: 'shm' }>>({ kind: oneOf('shm'), path: PATH });
const meshAddress: Schema<MeshAddress> = either(either(tcpAddress, unixAddress, 'a socket address'), shmAddress, 'a TCP, Unix or shared-memory mesh address');

const stepSums = object<RankStepSums>({ steps: int(0, SAFE), tokens: int(0, SAFE), stepMs: millis, computeMs: millis, waitMs: millis, transferMs: millis, eventLoopMs: millis });

const pool = object<KvLayout>({ numBlocks: int(1, 1 << 24), blockSize: int(1, 1 << 16) });

/** Int32 bounds: the rank copies these into Int32Arrays, which would wrap anything wider silently. */
const int32s = array(int(INT32_MIN, INT32_MAX), MAX_SEGMENT);

/** A rank-side pick: the sampler's own ranges (sampler.ts), and a uniform in [0, 1) with 53 bits. */
const pick = object<TokenPick>({
  temperature: num(0, Number.MAX_VALUE),
  topK: int(0, INT32_MAX),
  topP: num(Number.MIN_VALUE, 1),
  minP: num(0, 1),
  u: num(0, 1 - 2 ** -53),
  next: optional(num(0, 1 - 2 ** -53)),
  burst: optional(array(num(0, 1 - 2 ** -53), MAX_BURST)),
});

const segment = object<StepSegment>({ blockTable: int32s, rows: oneOf('none', 'last', 'all'), ids: int32s, positions: int32s, pick: optional(pick) });

const kvReadRun = object<KvReadRun>({ blockTable: int32s, from: int(0, INT32_MAX), count: int(1, MAX_SEGMENT) });
const range = pair(int(0, 1 << 20), int(0, 1 << 20));

const traceEvent = object<TraceEvent>({
  name: str(256),
  cat: optional(str(64)),
  ph: oneOf('X', 'M', 'C'),
  ts: optional(num(0, 1e18)),
  dur: optional(num(0, 1e18)),
  pid: int(0, SAFE),
  tid: optional(int(0, SAFE)),
  args: optional(record(either(num(-1e300, 1e300), str(1024), "a number or a short string"), 4096)),
});

type Of<T extends ControlMessage['type']> = Extract<ControlMessage, { type: T }>;

const plan = object<Of<'plan'>>({
  type: oneOf('plan'),
  generation,
  addresses: array(meshAddress, MAX_RANKS, 1),
  meshToken: str(64, /^[0-9a-f]{32,64}$/),
  modelPath: PATH,
  modelId: str(64, /^[0-9a-f]{64}$/),
  tokenizerPath: optional(PATH),
  tp: int(1, 1024),
  pp: int(1, 1024),
  ep: optional(int(1, 1024)),
  layers: array(pair(int(0, 1 << 20), int(0, 1 << 20)), 1024, 1),
  backend: oneOf('auto', 'native', 'reference', 'webgpu'),
  trace: optional(bool),
  threads: optional(int(1, 1024)),
  kvCacheDtype: optional(oneOf(...KV_DTYPES)),
  rowShare: optional(num(0, 0.5)),
});

export const controlSchema: Schema<ControlMessage> = tagged<ControlMessage>({
  hello: object<Of<'hello'>>({ type: oneOf('hello'), protocol: int(0, SAFE), pid: int(0, INT32_MAX), hardware }),
  welcome: object<Of<'welcome'>>({ type: oneOf('welcome'), protocol: int(0, SAFE), nodeId: str(64, /^[A-Za-z0-9_-]+$/), heartbeat }),
  refused: object<Of<'refused'>>({ type: oneOf('refused'), message: MESSAGE }),
  'beat-hello': object<Of<'beat-hello'>>({ type: oneOf('beat-hello'), protocol: int(0, SAFE), nodeId: str(64, /^[A-Za-z0-9_-]+$/) }),
  beat: object<Of<'beat'>>({ type: oneOf('beat') }),
  abort: object<Of<'abort'>>({ type: oneOf('abort'), generation }),
  prepare: object<Of<'prepare'>>({ type: oneOf('prepare'), generation, rank: int(0, MAX_RANKS - 1), size: int(1, MAX_RANKS), transport: oneOf('tcp', 'unix', 'shm') }),
  listening: object<Of<'listening'>>({ type: oneOf('listening'), generation, address: meshAddress }),
  plan,
  ready: object<Of<'ready'>>({ type: oneOf('ready'), generation, bytesRead: bytes, newBytes: bytes, bytesHeld: bytes, loadMs: millis }),
  release: object<Of<'release'>>({ type: oneOf('release'), generation }),
  step: object<Of<'step'>>({ type: oneOf('step'), generation, id: stepId, pool, segments: array(segment, MAX_SEGMENTS, 1) }),
  logits: object<Of<'logits'>>({
    type: oneOf('logits'),
    generation,
    id: stepId,
    computeMs: millis,
    waitMs: millis,
    transferMs: optional(millis),
    eventLoopMs: optional(millis),
    // A picked token id per row, -1 for a row sent as logits (checked against the step in step-pipe.ts).
    ids: optional(array(int(-1, INT32_MAX), MAX_SEGMENT)),
    // A burst's later steps' ids, step by step (checked against the step in step-pipe.ts).
    burst: optional(array(int(0, INT32_MAX), MAX_SEGMENT)),
  }),
  stats: object<Of<'stats'>>({ type: oneOf('stats'), rank: int(0, MAX_RANKS - 1), transport: str(16), decode: stepSums, other: stepSums, ahead: optional(object({ used: int(0, SAFE), missed: int(0, SAFE) })) }),
  'step-refused': object<Of<'step-refused'>>({ type: oneOf('step-refused'), generation, id: stepId, segment: int(-1, MAX_SEGMENTS), code: errorCode, message: MESSAGE }),
  'kv-read': object<Of<'kv-read'>>({ type: oneOf('kv-read'), generation, id: stepId, pool, runs: array(kvReadRun, MAX_SEGMENTS, 1) }),
  'kv-rows': object<Of<'kv-rows'>>({ type: oneOf('kv-rows'), generation, id: stepId, layers: range, heads: range, dtype: oneOf(...KV_DTYPES) }),
  'kv-refused': object<Of<'kv-refused'>>({ type: oneOf('kv-refused'), generation, id: stepId, code: errorCode, message: MESSAGE }),
  'kv-write': object<Of<'kv-write'>>({
    type: oneOf('kv-write'),
    generation,
    pool,
    blockTable: int32s,
    layer: int(0, 1 << 20),
    from: int(0, INT32_MAX),
    count: int(1, MAX_SEGMENT),
    heads: range,
    dtype: oneOf(...KV_DTYPES),
  }),
  'rank-failed': object<Of<'rank-failed'>>({ type: oneOf('rank-failed'), generation, id: stepOrNone, code: errorCode, message: MESSAGE }),
  shutdown: object<Of<'shutdown'>>({ type: oneOf('shutdown') }),
  trace: object<Of<'trace'>>({ type: oneOf('trace'), events: array(traceEvent, 1 << 22) }),
  error: object<Of<'error'>>({ type: oneOf('error'), code: errorCode, message: MESSAGE }),
  clock: object<Of<'clock'>>({ type: oneOf('clock'), sentAt: num(-1e18, 1e18) }),
  'clock-reply': object<Of<'clock-reply'>>({ type: oneOf('clock-reply'), sentAt: num(-1e18, 1e18), at: num(-1e18, 1e18) }),
});
