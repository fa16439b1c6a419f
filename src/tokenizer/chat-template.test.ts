import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TesseraError } from '../core/errors.js';
import { FALLBACK_CHAT_TEMPLATE, renderChatTemplate, type ChatMessage } from './chat-template.js';

/** meta-llama/Llama-2-7b-chat-hf tokenizer_config.json chat_template. */
const LLAMA2_TEMPLATE =
  "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}" +
  "{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
  "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}" +
  "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

const CONVERSATION: ChatMessage[] = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Hi!' },
  { role: 'assistant', content: 'Hello.' },
  { role: 'user', content: 'Name a colour.' },
];

test('the fallback ChatML template renders turns and the generation prompt', () => {
  const rendered = renderChatTemplate(FALLBACK_CHAT_TEMPLATE, CONVERSATION, { addGenerationPrompt: true });
  assert.equal(
    rendered,
    '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n' +
      '<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n',
  );
  const withoutPrompt = renderChatTemplate(FALLBACK_CHAT_TEMPLATE, CONVERSATION.slice(1, 2), { addGenerationPrompt: false });
  assert.equal(withoutPrompt, '<|im_start|>user\nHi!<|im_end|>\n');
});

test('a Llama 2 chat template renders with BOS/EOS tokens and the system block', () => {
  const rendered = renderChatTemplate(LLAMA2_TEMPLATE, CONVERSATION, { bosToken: '<s>', eosToken: '</s>', addGenerationPrompt: true });
  assert.equal(rendered, '<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi! [/INST] Hello. </s><s>[INST] Name a colour. [/INST]');
});

test('template errors are TESSERA_ERR_CHAT_TEMPLATE: raise_exception, unparsable text', () => {
  const isTemplateError = (error: unknown): boolean => error instanceof TesseraError && error.code === 'TESSERA_ERR_CHAT_TEMPLATE';
  const wrongOrder = [CONVERSATION[2]!, CONVERSATION[1]!];
  assert.throws(() => renderChatTemplate(LLAMA2_TEMPLATE, wrongOrder, { addGenerationPrompt: true }), isTemplateError);
  assert.throws(() => renderChatTemplate(LLAMA2_TEMPLATE, wrongOrder, { addGenerationPrompt: true }), /roles must alternate/);
  assert.throws(() => renderChatTemplate('{% for m in messages %}{{ m.content }', CONVERSATION, { addGenerationPrompt: false }), isTemplateError);
});
