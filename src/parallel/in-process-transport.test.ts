import { inProcessMesh } from './in-process-transport.js';
import { transportSuite } from './transport.case.js';

transportSuite('in-process', async (size) => inProcessMesh(size));
