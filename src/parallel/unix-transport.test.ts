import { socketMesh } from './socket-mesh.case.js';
import { transportSuite } from './transport.case.js';

transportSuite('unix', (size) => socketMesh('unix', size));
