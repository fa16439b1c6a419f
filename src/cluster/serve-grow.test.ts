/**
 * Growing and re-shaping a mesh while it serves: a worker joining a running
 * tp 1 mesh (`serve --listen`) turns it into pp 2 mid-generation, POST
 * /admin/reshard turns it into tp 2, and the texts stay those of one
 * process. The admin routes want their own key and refuse shapes that do
 * not fit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fixture, projectRoot } from '../testing/fixtures.js';
import { adminCall, clusterOf, serve, streamAll, TEST_HEARTBEAT } from './serve-streams.case.js';

const CLI = join(projectRoot, 'dist', 'cli', 'main.js');

function worker(port: number): ChildProcess {
  return spawn(process.execPath, [CLI, 'worker', '--join', `127.0.0.1:${port}`, '--token', 'grow-token'], { stdio: 'ignore' });
}

test('a worker joining a serving tp 1 mesh grows it to pp 2 mid-stream; /admin/reshard makes it tp 2; texts unchanged', async (t) => {
  const model = fixture(t, 'stories260K.bin');
  if (!model) return;
  // Long streams: a joining worker takes seconds to start, and the mesh must grow while they run.
  const long = { maxTokens: 240 };
  const single = await serve(model);
  const expected = await streamAll(single, long).finally(() => single.close());
  const port = 40000 + (process.pid % 20000);
  const workers: ChildProcess[] = [];
  try {
    const opening = serve(model, { tp: 1, pp: 1, ep: 1, transport: 'tcp', spawn: false, port, token: 'grow-token', backend: 'reference', heartbeat: TEST_HEARTBEAT });
    workers.push(worker(port));
    const mesh = await opening;
    try {
      const start = await clusterOf(mesh);
      assert.deepEqual(start.nodes.map((node) => node.pid), [workers[0].pid]);
      const grown = await streamAll(mesh, {
        ...long,
        midway: async () => {
          workers.push(worker(port));
          while ((await clusterOf(mesh)).nodes.length < 2) await new Promise((resolve) => setTimeout(resolve, 50));
        },
      });
      assert.deepEqual(grown, expected);
      const view = await clusterOf(mesh);
      assert.deepEqual([view.layout?.tp, view.layout?.pp], [1, 2]);
      const join = view.reshards.at(-1);
      assert.equal(join?.reason, 'joined');
      assert.ok(join?.rePrefillMs !== undefined, 'the streams were re-prefilled and decoded on the grown mesh');
      assert.ok(view.nodes.every((node) => node.bytesHeld > 0 && node.rank !== undefined), JSON.stringify(view.nodes));

      const metrics = await (await fetch(`${mesh.url}/metrics`)).text();
      assert.match(metrics, /^tessera_reshards_total\{reason="joined"\} 1$/m);
      assert.match(metrics, /^tessera_mesh_generation 2$/m);

      const reshaped = await adminCall(mesh, 'POST', '/admin/reshard', { tp: 2, pp: 1 });
      assert.equal(reshaped.status, 200, JSON.stringify(reshaped.json));
      assert.deepEqual([reshaped.json.layout?.tp, reshaped.json.layout?.pp, reshaped.json.preference.pinned], [2, 1, true]);
      assert.deepEqual(await streamAll(mesh, long), expected);

      const tooBig = await adminCall(mesh, 'POST', '/admin/reshard', { tp: 2, pp: 2 });
      assert.equal(tooBig.status, 409);
      assert.equal(tooBig.json.error?.code, 'TESSERA_ERR_NO_PLACEMENT');
      const wrongKey = await fetch(`${mesh.url}/admin/cluster`, { headers: { authorization: 'Bearer nope' } });
      assert.equal(wrongKey.status, 401);
    } finally {
      await mesh.close();
    }
  } finally {
    for (const child of workers) child.kill('SIGKILL');
  }
});
