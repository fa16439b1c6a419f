import { socketMesh } from './socket-mesh.case.js';
import { transportSuite } from './transport.case.js';

// Sealed by default (TESSERA_SEAL_DATA unset); the clear run is what TESSERA_SEAL_DATA=0 gives.
transportSuite('tcp, sealed', (size) => socketMesh('tcp', size, true));
transportSuite('tcp, clear', (size) => socketMesh('tcp', size, false));
