import { socketMesh } from './socket-mesh.case.js';
import { transportSuite } from './transport.case.js';

transportSuite('tcp', (size) => socketMesh('tcp', size));
