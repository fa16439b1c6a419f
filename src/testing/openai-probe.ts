/**
 * A child process that asks a server for one completion through the
 * official `openai` client and prints the outcome as JSON. It runs apart
 * because a test's own CA can reach the client's TLS only through
 * NODE_EXTRA_CA_CERTS, which Node reads at start-up.
 * Usage: node openai-probe.js BASE_URL MODEL (the key in $OPENAI_API_KEY).
 */
import OpenAI from 'openai';

const [baseURL, model] = process.argv.slice(2);
try {
  const client = new OpenAI({ baseURL, apiKey: process.env.OPENAI_API_KEY ?? 'none', maxRetries: 0, timeout: 60_000 });
  const completion = await client.completions.create({ model: model!, prompt: 'the robot', max_tokens: 5, temperature: 0 });
  process.stdout.write(JSON.stringify({ ok: true, text: completion.choices[0]?.text, tokens: completion.usage?.completion_tokens }));
} catch (error) {
  const cause = (error as { cause?: { code?: string; cause?: { code?: string } } }).cause;
  process.stdout.write(JSON.stringify({ ok: false, name: (error as Error).name, status: (error as { status?: number }).status, code: cause?.code ?? cause?.cause?.code }));
}
