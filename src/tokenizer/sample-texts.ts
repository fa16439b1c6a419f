/** Sample texts shared by the tokenizer tests. */

/** Text that exercises the SentencePiece path: spaces, control characters, scripts, byte fallback. */
export const VARIED_TEXTS = [
  '',
  'Hello world',
  ' leading space',
  '  two leading spaces and  two  inside',
  'trailing spaces   ',
  '   ',
  '\n',
  'line one\nline two\n\nline four',
  'tab\tseparated\tvalues\t',
  'Crème brûlée, naïve café, Ångström, São Paulo',
  'Привет, мир! Γειά σου κόσμε.',
  '中文分词测试，日本語のテキスト，한국어 텍스트',
  'emoji 😀🦙 and ZWJ 👩‍👩‍👧 and flags 🇫🇷',
  'digits 0123456789 3.14159 1,000,000 2024-01-31',
  'def f(x):\n    return {"a": [x ** 2, x // 3]}  # comment\n',
  'const s = `${a}` && b || c; // <tag attr="1"/>',
  'literal </s> and <s> and <unk> markers',
  '\ufeffstarts with a byte order mark',
  'rare chars: \u0000 \u0007 \u200b \ufeff \uffff 𝔘𝔫𝔦𝔠𝔬𝔡𝔢',
];
