/**
 * A certificate authority made inside a test with the openssl command: a
 * P-256 CA, and certificates it issues for names and addresses (servers) or
 * for clients (mutual TLS). Valid for a day; nothing leaves the folder.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface IssuedCertificate {
  readonly certPath: string;
  readonly keyPath: string;
}

export interface TestCa {
  readonly caPath: string;
  issue(name: string, subjectAltNames: readonly string[]): IssuedCertificate;
}

function openssl(dir: string, args: readonly string[]): void {
  const result = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${result.stderr}`);
}

export function makeTestCa(dir: string, name = 'tessera-test-ca'): TestCa {
  const caKey = join(dir, `${name}.key`);
  const caPath = join(dir, `${name}.pem`);
  openssl(dir, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', caKey, '-out', caPath, '-days', '1', '-subj', `/CN=${name}`]);
  return {
    caPath,
    issue(subject, subjectAltNames) {
      const keyPath = join(dir, `${subject}.key`);
      const request = join(dir, `${subject}.csr`);
      const certPath = join(dir, `${subject}.pem`);
      const extensions = join(dir, `${subject}.ext`);
      writeFileSync(extensions, `subjectAltName=${subjectAltNames.join(',')}\nextendedKeyUsage=serverAuth,clientAuth\n`);
      openssl(dir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyPath, '-out', request, '-subj', `/CN=${subject}`]);
      openssl(dir, ['x509', '-req', '-in', request, '-CA', caPath, '-CAkey', caKey, '-CAcreateserial', '-out', certPath, '-days', '1', '-extfile', extensions]);
      return { certPath, keyPath };
    },
  };
}
