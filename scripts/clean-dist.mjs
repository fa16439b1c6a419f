// Removes dist/ before a build so compiled files of moved or deleted sources never linger (and never run as tests).
import { rmSync } from 'node:fs';
rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
