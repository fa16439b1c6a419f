/** `tessera serve --tp 2 --pp 2`: the engine core drives a mesh of rank processes and says the same tokens. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fixture } from '../testing/fixtures.js';
import { launchServer } from './launch.js';
import type { TesseraServer } from './server.js';

async function completions(server: TesseraServer, prompts: string[]): Promise<string[]> {
  return Promise.all(
    prompts.map(async (prompt, i) => {
      const response = await fetch(`${server.url}/v1/completions`, {
        method: 'POST',
        body: JSON.stringify({ model: 'stories', prompt, max_tokens: 12 + i * 5, temperature: 0, ignore_eos: true }),
      });
      assert.equal(response.status, 200);
      return ((await response.json()) as { choices: { text: string }[] }).choices[0].text;
    }),
  );
}

test('concurrent requests on a tp 2 × pp 2 mesh equal one process, several sequences to a mesh step', async (t) => {
  const model = fixture(t, 'stories260K.bin');
  if (!model) return;
  const prompts = ['Once upon a time', 'The little dog', 'Lily and Tom went to the park. They', 'One day'];
  const single = await launchServer({ model, backend: 'reference', port: 0, servedModelName: 'stories', core: { kvCacheMib: 4 } });
  const expected = await completions(single, prompts).finally(() => single.close());
  const scratch = mkdtempSync(join(tmpdir(), 'tessera-mesh-serve-'));
  const trace = join(scratch, 'mesh.json');
  try {
    const mesh = await launchServer({
      model,
      port: 0,
      servedModelName: 'stories',
      core: { kvCacheMib: 4 },
      mesh: { tp: 2, pp: 2, ep: 1, transport: 'unix', spawn: true, backend: 'reference', trace },
    });
    try {
      assert.deepEqual(await completions(mesh, prompts), expected);
    } finally {
      await mesh.close();
    }
    // Every rank ran steps that carried more than one sequence (the requests run side by side).
    const events = (JSON.parse(readFileSync(trace, 'utf8')) as { traceEvents: { name: string; pid: number; args?: { sequences?: number } }[] }).traceEvents;
    const batched = new Set(events.filter((event) => event.name === 'step' && (event.args?.sequences ?? 1) > 1).map((event) => event.pid));
    assert.equal(batched.size, 4, `ranks with batched steps: ${[...batched].join(', ')}`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
});
