/** Tool calls read from replies in each template family's format, whole or streamed in any split; tools rendered into prompts. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderChatTemplate } from '../tokenizer/chat-template.js';
import { parseCalls, ToolCallReader, type ReaderResult } from './tool-call-reader.js';
import { templateKnowsTools, templateToolCall, toolPrompt } from './tool-prompt.js';

const NAMES = new Set(['get_weather', 'add']);

/** Everything a reader gives for the text fed in the given pieces: content as streamed plus the final result. */
function read(pieces: string[]): { content: string; result: ReaderResult } {
  const reader = new ToolCallReader(NAMES);
  let content = '';
  for (const piece of pieces) content += reader.push(piece);
  const result = reader.finish();
  return { content: content + result.content, result };
}

/** Every two-way split of a text, and one character at a time. */
function splits(text: string): string[][] {
  const out = [[text], [...text]];
  for (let at = 1; at < text.length; at++) out.push([text.slice(0, at), text.slice(at)]);
  return out;
}

const CASES: { format: string; text: string; content: string; calls: { name: string; arguments: string }[] }[] = [
  { format: 'Hermes / Qwen', text: 'Let me check.<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>', content: 'Let me check.', calls: [{ name: 'get_weather', arguments: '{"city":"Oslo"}' }] },
  { format: 'Hermes, two calls', text: '<tool_call>{"name": "add", "arguments": {"a": 1, "b": 2}}</tool_call>\n<tool_call>{"name": "get_weather", "arguments": {}}</tool_call>', content: '', calls: [{ name: 'add', arguments: '{"a":1,"b":2}' }, { name: 'get_weather', arguments: '{}' }] },
  { format: 'Mistral list', text: '[TOOL_CALLS][{"name": "add", "arguments": {"a": 3}}]', content: '', calls: [{ name: 'add', arguments: '{"a":3}' }] },
  { format: 'Mistral [ARGS]', text: '[TOOL_CALLS]add[ARGS]{"a": 4}[TOOL_CALLS]get_weather[ARGS]{"city": "Rome"}', content: '', calls: [{ name: 'add', arguments: '{"a":4}' }, { name: 'get_weather', arguments: '{"city":"Rome"}' }] },
  { format: 'Llama 3 python_tag', text: '<|python_tag|>{"name": "add", "parameters": {"a": 5}}', content: '', calls: [{ name: 'add', arguments: '{"a":5}' }] },
  { format: 'Llama 3 bare JSON', text: '{"name": "get_weather", "parameters": {"city": "Lima"}}', content: '', calls: [{ name: 'get_weather', arguments: '{"city":"Lima"}' }] },
  { format: 'plain text', text: 'The weather is fine, <tool but not a call.', content: 'The weather is fine, <tool but not a call.', calls: [] },
  { format: 'JSON that is not a call', text: '{"answer": 42}', content: '{"answer": 42}', calls: [] },
  { format: 'a call to an unknown tool', text: '<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>', content: '<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>', calls: [] },
  { format: 'broken JSON', text: 'ok <tool_call>{"name": "add", "arguments": {</tool_call>', content: 'ok <tool_call>{"name": "add", "arguments": {</tool_call>', calls: [] },
];

for (const { format, text, content, calls } of CASES) {
  test(`tool calls, ${format}: the same content and calls however the reply is split`, () => {
    for (const pieces of splits(text)) {
      const { content: got, result } = read(pieces);
      assert.equal(got, content, JSON.stringify(pieces));
      assert.deepEqual(result.calls, calls, JSON.stringify(pieces));
    }
  });
}

test('content before a marker streams at once; only a possible marker start is held back', () => {
  const reader = new ToolCallReader(NAMES);
  assert.equal(reader.push('Hello wor'), 'Hello wor');
  assert.equal(reader.push('ld <tool'), 'ld ');
  assert.equal(reader.push('_call>{"name": "add", "arguments": {}}</tool_call>'), '');
  assert.deepEqual(reader.finish().calls, [{ name: 'add', arguments: '{}' }]);
  assert.equal(parseCalls('nothing', NAMES), undefined);
});

const TOOLS = [{ name: 'get_weather', description: 'Weather now', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }];

test('a template that reads tools gets them, and past calls with arguments as objects', () => {
  // A small template of our own in the Hermes style, as Qwen's and Hermes' templates render tools.
  const template =
    "{% if tools %}<tools>{% for tool in tools %}{{ tool.function.name }}:{{ tool.function.parameters | tojson }};{% endfor %}</tools>\n{% endif %}" +
    "{% for m in messages %}<{{ m.role }}>{% if m.tool_calls %}{% for c in m.tool_calls %}<tool_call>{{ c.function.name }} {{ c.function.arguments.city }}</tool_call>{% endfor %}{% else %}{{ m.content }}{% endif %}</{{ m.role }}>\n{% endfor %}";
  assert.ok(templateKnowsTools(template));
  const messages = [
    { role: 'user', content: 'Weather in Oslo?' },
    { role: 'assistant', content: '', tool_calls: [templateToolCall('abc123xyz', 'get_weather', '{"city": "Oslo"}')] },
    { role: 'tool', content: 'sunny', tool_call_id: 'abc123xyz' },
  ];
  const prompt = toolPrompt(template, messages, TOOLS);
  const text = renderChatTemplate(template, prompt.messages, { addGenerationPrompt: true, tools: prompt.tools });
  assert.match(text, /^<tools>get_weather:\{"type":\s*"object"/);
  assert.match(text, /<assistant><tool_call>get_weather Oslo<\/tool_call><\/assistant>/);
  assert.match(text, /<tool>sunny<\/tool>/);
});

test('a template that knows no tools gets a system message describing them, and past calls as text', () => {
  const template = "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}";
  assert.ok(!templateKnowsTools(template));
  const prompt = toolPrompt(template, [{ role: 'system', content: 'Be brief.' }, { role: 'assistant', content: '', tool_calls: [templateToolCall('id1', 'get_weather', '{"city":"Oslo"}')] }, { role: 'tool', content: 'sunny' }], TOOLS);
  assert.equal(prompt.tools, undefined);
  const text = renderChatTemplate(template, prompt.messages, { addGenerationPrompt: true });
  assert.match(text, /^\[system\] Be brief\.\n\nYou can call functions\./);
  assert.match(text, /"name":"get_weather"/);
  assert.match(text, /\[assistant\] <tool_call>\n\{"name":"get_weather","arguments":\{"city":"Oslo"\}\}\n<\/tool_call>/);
  assert.match(text, /\[user\] <tool_response>\nsunny\n<\/tool_response>/);
});
