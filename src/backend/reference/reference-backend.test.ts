import { runBackendSuite } from '../backend.case.js';
import { ReferenceBackend } from './reference-backend.js';

runBackendSuite('reference', () => new ReferenceBackend());
