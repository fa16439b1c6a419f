import { socketMesh } from './socket-mesh.case.js';
import { transportSuite } from './transport.case.js';

// Clear by default; the sealed run is what TESSERA_SEAL_DATA=1 gives.
transportSuite('unix, clear', (size) => socketMesh('unix', size, false));
transportSuite('unix, sealed', (size) => socketMesh('unix', size, true));
