import { shmMesh } from './shm-mesh.case.js';
import { transportSuite } from './transport.case.js';

transportSuite('shm', async (size) => shmMesh(size));
