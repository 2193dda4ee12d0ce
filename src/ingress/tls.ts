import 'reflect-metadata';
import { createHash, webcrypto } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import * as x509 from '@peculiar/x509';
import type { RouteTable } from './routes.js';

/**
 * TLS for the HTTPS listener: a self-signed default certificate (made once per controller), and
 * secure contexts per certificate chosen by SNI. Contexts are cached by content hash so a route
 * swap that keeps a Secret unchanged reuses its context.
 */

export const DEFAULT_CERT_CN = 'Skiff Ingress Controller Fake Certificate';

export interface PemPair {
  cert: string;
  key: string;
}

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END ${label}-----\n`;
}

/**
 * A self-signed certificate, ECDSA P-256 by default or RSA 2048 (used for the default certificate
 * and in tests).
 */
export async function makeSelfSignedCertificate(cn: string, dnsNames: string[], days = 365, keyType: 'ECDSA' | 'RSA' = 'ECDSA'): Promise<PemPair> {
  const crypto = webcrypto as unknown as Crypto;
  const alg = keyType === 'RSA'
    ? { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }
    : { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await crypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: Buffer.from(crypto.getRandomValues(new Uint8Array(8))).toString('hex').replace(/^[89a-f]/, '1'),
      name: `CN=${cn}, O=skiff`,
      notBefore: new Date(now - 3600_000),
      notAfter: new Date(now + days * 86400_000),
      keys,
      signingAlgorithm: alg,
      extensions: [
        new x509.SubjectAlternativeNameExtension(dnsNames.map((value) => ({ type: 'dns' as const, value }))),
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      ],
    },
    crypto,
  );
  const pkcs8 = await crypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { cert: cert.toString('pem') + '\n', key: pem('PRIVATE KEY', pkcs8) };
}

/** The certificate served when no Secret matches the SNI name. */
export function makeDefaultCertificate(): Promise<PemPair> {
  return makeSelfSignedCertificate(DEFAULT_CERT_CN, ['ingress.local']);
}

/**
 * Signature algorithms of the HTTPS listener, in server preference order (used with
 * honorCipherOrder). Node installs the certificate of the context returned by the SNI callback next
 * to the default certificate, one slot per key type (SSL_use_certificate), instead of replacing it.
 * In TLS 1.3 OpenSSL then signs with the first slot matching the preferred signature algorithm, which
 * with the client's order (ECDSA first) is the ECDSA default certificate even when the SNI context
 * holds an RSA certificate. The default certificate is ECDSA, so preferring every other key type
 * first makes a Secret's certificate win whatever its type; ECDSA Secrets replace the default's slot.
 */
export const SERVER_SIGALGS = [
  'ed25519', 'ed448',
  'rsa_pss_rsae_sha256', 'rsa_pss_rsae_sha384', 'rsa_pss_rsae_sha512',
  'rsa_pss_pss_sha256', 'rsa_pss_pss_sha384', 'rsa_pss_pss_sha512',
  'rsa_pkcs1_sha256', 'rsa_pkcs1_sha384', 'rsa_pkcs1_sha512',
  'ecdsa_secp256r1_sha256', 'ecdsa_secp384r1_sha384', 'ecdsa_secp521r1_sha512',
].join(':');

/** Secure contexts for the current table; `forServername` is what the SNI callback asks. */
export class CertStore {
  private cache = new Map<string, SecureContext>();
  private sni = new Map<string, SecureContext>();
  readonly defaultContext: SecureContext;

  constructor(defaultPair: PemPair) {
    this.defaultContext = createSecureContext({ cert: defaultPair.cert, key: defaultPair.key });
  }

  /** Rebuilds the SNI map; unchanged certificates keep their context. Returns secrets that failed. */
  update(table: RouteTable): string[] {
    const next = new Map<string, SecureContext>();
    const bySecret = new Map<string, SecureContext>();
    const failed: string[] = [];
    for (const [secret, pair] of Object.entries(table.certs)) {
      const hash = createHash('sha256').update(pair.cert).update('\0').update(pair.key).digest('hex');
      let ctx = this.cache.get(hash);
      if (!ctx) {
        try {
          ctx = createSecureContext({ cert: pair.cert, key: pair.key });
        } catch {
          failed.push(secret);
          continue;
        }
      }
      next.set(hash, ctx);
      bySecret.set(secret, ctx);
    }
    const sni = new Map<string, SecureContext>();
    for (const [host, secret] of Object.entries(table.sni)) {
      const ctx = bySecret.get(secret);
      if (ctx) sni.set(host, ctx);
    }
    this.cache = next;
    this.sni = sni;
    return failed;
  }

  /** Exact host, then a `*.` wildcard one label up, then the default certificate. */
  forServername(servername: string | undefined): SecureContext {
    const host = (servername ?? '').toLowerCase();
    const exact = this.sni.get(host);
    if (exact) return exact;
    const dot = host.indexOf('.');
    return (dot > 0 && this.sni.get(`*.${host.slice(dot + 1)}`)) || this.defaultContext;
  }
}
