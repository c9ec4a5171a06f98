import { describe, expect, it } from 'vitest';
import { normalizePassword, scramVerifier } from '../../src/db/scram.js';

describe('scramVerifier', () => {
  it('matches the RFC 7677 test vector (user "user", password "pencil")', () => {
    // RFC 7677 §3: salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations. The StoredKey is that of the
    // RFC's example; the whole verifier is proven by a real SCRAM login in the passwd tests.
    const verifier = scramVerifier('pencil', 4096, Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'));
    expect(verifier).toMatch(/^SCRAM-SHA-256\$4096:W22ZaJ0SNY7soEsUEjb6gQ==\$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:[A-Za-z0-9+/]{43}=$/);
  });

  it('uses a fresh salt each time and the given iteration count', () => {
    const a = scramVerifier('secret', 8192);
    const b = scramVerifier('secret', 8192);
    expect(a).not.toBe(b);
    expect(a).toMatch(/^SCRAM-SHA-256\$8192:[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=:[A-Za-z0-9+/]{43}=$/);
  });

  it('SASLprep-normalises like PostgreSQL: mapped characters go, prohibited ones leave the password as it is', () => {
    expect(normalizePassword('I\u00ADX')).toBe('IX'); // soft hyphen is mapped to nothing
    expect(normalizePassword('\u2168')).toBe('IX'); // NFKC
    expect(normalizePassword('a\u0007b')).toBe('a\u0007b'); // prohibited control character: used raw
  });
});
