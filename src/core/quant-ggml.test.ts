/**
 * Golden vectors from ggml itself (libggml-base of node-llama-cpp's prebuilt
 * llama.cpp, called from C): quantize_row_{q8_0,q4_0,q4_K,q6_K}_ref of the
 * 256 values below, and the SHA-256 of ggml's dequantize_row_* output for
 * those bytes. They pin our block layouts and reference rounding to ggml's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { dequantize, quantize } from './quant.js';
import type { DType } from './dtype.js';

/** [256] deterministic values with outliers of both signs. */
function goldenInput(): Float32Array {
  const values = new Float32Array(256);
  for (let i = 0; i < 256; i++) values[i] = (((i * 37) % 101) - 50) / 23 + (i % 64 === 3 ? 3.3 : 0) - (i % 97 === 11 ? 2.9 : 0);
  return values;
}

const GGML: Record<'q8_0' | 'q4_0' | 'q4_k' | 'q6_k', { bytes: string; dequantizedSha256: string }> = {
  q8_0: {
    bytes: 'fb28c8f11b28fd26de0831ea1381f51ed70029e20b34ed16cff822da032de50f38f04b243c96f656b0106fca2984e3439efd5db71777d1318beb4ba50565bf1f7fd939931727f832ce7f42dd18b3ed27c3fd37d20d47e21cb8f22cc7023cd7114be721bcf7313b25ba0957cf1e96e433abfa48c0815ed5249ceb39b1004fc71564dc2ba2f140b806842928e80d7ff217d7fc21e1062beb10d0f51adaff24e4092eee13d3f81ddd0227e74b241f7fd93993f353ad0d6dc72781e1419bfb5bb51575cf2f89e949a30362bd1d7cad28ed19cd5325d90531e511c4f11d81fc28dc0834e814c8f420d4002ce00c38ec18622490ee4caa0866c3217fdc3a98f654b10f6dcb2986e4429ffd5bb91775d2308eec',
    dequantizedSha256: '2f2d67dff6167b52ec564799cdab69ebd2b08cd6fc45a6da9fc106baf71ba8a9',
  },
  q4_0: {
    bytes: 'f238b4679abb789a5688ab6789b0679ac57843b4740fb953fd9731eb852fca640ea842fd09b7a865db9054ca874db9763ca865cb975431352479cd358ad1469be368bd2470ce358a79b965aa8760a9775b9876ba9865a9876ba943b48620da741fb953fd9731ec862fca640ea438679ab57d9a4678ab5689b4679ac0789b59b41fb953fda842ec8620ca741fb953fd97',
    dequantizedSha256: '8245cc317dd32c3b652094464f6a6e922f2aa07d4dc26dccf6628877a4396364',
  },
  q4_k: {
    bytes: '1d20f52cfaa5eea57f5adb61bea3bfc4a6196dce2a8ed84b9f095cb01a7dc73a8ee84baf096cb62a7dc73b9ee85caf194599f25fbb1377c03489e1450af267bb2378d03599e156aaf367cb2488d1459998f255bf1366c12487e145980256b01376d13487e245a80366b02477d13498f2186bc52f8ce6499df75ab5187bc0398ce64aad076ab5287bd6399ce75aad186b',
    dequantizedSha256: '81185fd73a6b2b633eb92f87ed934de5c579046641892c329b6bc402db86963c',
  },
  q6_k: {
    bytes: '224cc71a0f89a8325c6bf5113db7d6f0c941ea63eb74fb741d951ea72fc841c9ff255d467b649dd2bbe02901177f689d1a922c740d95ed77ff57d038b04a922bb6663d50946a1ac198481ec5750cfca3ce5ad137b31a902c730f96ec78ff55d1c841da62eb73fc840d951ea63fb840c9d129b30b931c74fe86de67ff47d129b12991e64e912a5db62a51e66c11e65d822453f9248ef9138ef4538d2452f9248ed5a219f46e19a26e15a259d5ae09d66ec863be1463c9147ec923bec463bd146377cc31ceabce3e3180d1cdce6c31cd317b15',
    dequantizedSha256: '3102acd457887394aca42a5e13dd073f0a9f15ffc40767259d06b30869212d3c',
  },
};

function sha256(values: Float32Array): string {
  return createHash('sha256').update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength)).digest('hex');
}

for (const [dtype, golden] of Object.entries(GGML) as Array<[DType, { bytes: string; dequantizedSha256: string }]>) {
  test(`${dtype}: dequantizing ggml's own blocks gives ggml's floats bit for bit`, () => {
    const decoded = dequantize(dtype, Buffer.from(golden.bytes, 'hex'), 256);
    assert.equal(sha256(decoded), golden.dequantizedSha256);
  });
}

for (const dtype of ['q8_0', 'q4_0'] as const) {
  test(`${dtype}: quantize matches ggml's quantize_row_${dtype}_ref byte for byte`, () => {
    assert.equal(Buffer.from(quantize(dtype, goldenInput())).toString('hex'), GGML[dtype].bytes);
  });
}
