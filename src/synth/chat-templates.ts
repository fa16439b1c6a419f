/**
 * Chat templates written into synthetic models (tokenizer.chat_template), one
 * per vocabulary style, in the Jinja dialect the real models ship.
 */
import type { VocabularyStyle } from './presets.js';

/** ChatML, as Qwen2/2.5/3 use it (without the tool-calling branches). */
const CHATML =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** Llama 3 header/eot format. */
const LLAMA3 =
  "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

/** Zephyr, as TinyLlama-Chat uses it. */
const ZEPHYR =
  "{% for message in messages %}{% if message['role'] == 'user' %}{{ '<|user|>\\n' + message['content'] + eos_token }}" +
  "{% elif message['role'] == 'system' %}{{ '<|system|>\\n' + message['content'] + eos_token }}" +
  "{% elif message['role'] == 'assistant' %}{{ '<|assistant|>\\n' + message['content'] + eos_token }}{% endif %}" +
  "{% if loop.last and add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}{% endfor %}";

export function chatTemplateFor(style: VocabularyStyle): string {
  switch (style) {
    case 'qwen2':
      return CHATML;
    case 'llama-bpe':
      return LLAMA3;
    case 'sentencepiece':
      return ZEPHYR;
  }
}
