"""Generates src/internal/glv_tables.rs: the constants of secp256k1's GLV
endomorphism and the fixed multiples of G that `glv::lincomb_with_generator` reads.

Everything written is checked here first: beta and lambda are non-trivial
cube roots of unity and lambda·G = (beta·Gx, Gy); the lattice basis is
derived (extended Euclid on n and lambda), not copied; the split
k = k1 + lambda·k2 (mod n), with the truncated product glv.rs rounds
through, holds and both halves stay under 2^128 on edge cases and 200,000
random scalars; a full a·G + b·R through the split equals
the direct product. Run: python3 tools/glv_tables.py (writes the file).
"""
import math, os, random, sys
random.seed(1)
p = 2**256 - 2**32 - 977
n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
Gx = 0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798
Gy = 0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8
def inv(a, m): return pow(a, -1, m)
def add(P, Q):
    if P is None: return Q
    if Q is None: return P
    if P[0] == Q[0]:
        if (P[1] + Q[1]) % p == 0: return None
        l = 3 * P[0] * P[0] * inv(2 * P[1], p) % p
    else:
        l = (Q[1] - P[1]) * inv(Q[0] - P[0], p) % p
    x = (l * l - P[0] - Q[0]) % p
    return (x, (l * (P[0] - x) - P[1]) % p)
def mul(k, P):
    R = None
    for b in bin(k % n)[2:]:
        R = add(R, R)
        if b == '1': R = add(R, P)
    return R
G = (Gx, Gy)
# cube roots of unity
beta = 0x7AE96A2B657C07106E64479EAC3434E99CF0497512F58995C1396C28719501EE
lam = 0x5363AD4CC05C30E0A5261C028812645A122E22EA20816678DF02967C1B23BD72
assert pow(beta, 3, p) == 1 and beta != 1
assert pow(lam, 3, n) == 1 and lam != 1
assert mul(lam, G) == (beta * Gx % p, Gy), "lambda/beta pairing"
# short lattice basis from extended Euclid on (n, lam)
def basis():
    r0, r1 = n, lam
    t0, t1 = 0, 1
    root = math.isqrt(n)
    while r1 >= root:
        q = r0 // r1
        r0, r1 = r1, r0 - q * r1
        t0, t1 = t1, t0 - q * t1
    # r1 < sqrt(n) now; (r0,t0) previous
    # standard: v1 = (r_{l+1}, -t_{l+1}), v2 = shorter of (r_l, -t_l), (r_{l+2}, -t_{l+2})
    rl, tl = r0, t0
    rl1, tl1 = r1, t1
    q = rl // rl1
    rl2, tl2 = rl - q * rl1, tl - q * tl1
    v1 = (rl1, -tl1)
    if rl*rl + tl*tl <= rl2*rl2 + tl2*tl2: v2 = (rl, -tl)
    else: v2 = (rl2, -tl2)
    return v1, v2
(a1, b1), (a2, b2) = basis()
for a, b in ((a1, b1), (a2, b2)):
    assert (a + b * lam) % n == 0
g1 = ((b2 << 384) + n // 2) // n
g2 = ((-b1 << 384) + n // 2) // n
def mul_shift_384(k, g):
    """As glv.rs computes it: only the partial products of 32-bit words at
    word 10 and above, then rounded at bit 383."""
    kw = [(k >> (32 * i)) & 0xFFFFFFFF for i in range(8)]
    gw = [(g >> (32 * j)) & 0xFFFFFFFF for j in range(8)]
    high = sum(kw[i] * gw[j] << (32 * (i + j)) for i in range(8) for j in range(8) if i + j >= 10)
    return (high + (1 << 383)) >> 384
def split(k):
    c1 = mul_shift_384(k, g1)
    c2 = mul_shift_384(k, g2)
    k2 = (-(c1 * b1 + c2 * b2)) % n
    k1 = (k - lam * k2) % n
    return k1, k2
def signed(x): return (x, 1) if x <= n // 2 else (n - x, -1)
worst = 0
tests = [1, 2, n - 1, n - 2, n // 2, n // 2 + 1, lam, n - lam, 2**255, 2**128, 2**128 - 1]
tests += [random.randrange(n) for _ in range(200000)]
for k in tests:
    k1, k2 = split(k)
    assert (k1 + lam * k2) % n == k % n
    worst = max(worst, signed(k1)[0].bit_length(), signed(k2)[0].bit_length())
print("worst magnitude bits", worst, file=sys.stderr)
assert worst <= 128, "a half over 2^128 would send recovery to the generic path"
print("g1 bits", g1.bit_length(), "g2 bits", g2.bit_length(), "c bits", ((n-1)*g1 >> 384).bit_length(), file=sys.stderr)
print("a1", hex(a1), "b1", hex(b1), "a2", hex(a2), "b2", hex(b2), file=sys.stderr)
# one full check of the MSM decomposition on a random R
R = mul(random.randrange(1, n), G)
for _ in range(3):
    u = random.randrange(n); v = random.randrange(n)
    want = add(mul(u, G), mul(v, R))
    (x1, y1) = split(u); (x2, y2) = split(v)
    phi = lambda P: (beta * P[0] % p, P[1])
    got = add(add(mul(x1, G), mul(y1, phi(G))), add(mul(x2, R), mul(y2, phi(R))))
    assert got == want
def le(x): return x.to_bytes(32, 'little')
def rs(name, x): return f"pub(super) const {name}: [u8; 32] = hex!(\"{le(x).hex()}\");"
out = []
out.append(rs("BETA", beta)); out.append(rs("LAMBDA", lam))
out.append(rs("MINUS_B1", (-b1) % n)); out.append(rs("MINUS_B2", (-b2) % n))
out.append(f"pub(super) const G1: [u32; 8] = [{', '.join(hex((g1 >> (32*i)) & 0xffffffff) for i in range(8))}];")
out.append(f"pub(super) const G2: [u32; 8] = [{', '.join(hex((g2 >> (32*i)) & 0xffffffff) for i in range(8))}];")
def table(P):
    T = []; Q = None
    for d in range(1, 16):
        Q = add(Q, P); T.append(Q)
    return T
phiG = (beta * Gx % p, Gy)
for name, P in (("G", G), ("NEG_G", (Gx, (-Gy) % p)), ("PHI_G", phiG), ("NEG_PHI_G", (phiG[0], (-Gy) % p))):
    pts = "".join(f"    pt(\n        hex!(\"{le(x).hex()}\"),\n        hex!(\"{le(y).hex()}\"),\n    ),\n" for x, y in table(P))
    out.append(f"/// d·{name} for d = 1..=15.\npub(super) static TABLE_{name}: [Secp256k1Point; 15] = [\n{pts}];")
header = "// Generated by tools/glv_tables.py (which checks every value); do not edit.\n"
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "..", "src", "internal", "glv_tables.rs"), "w") as f:
    f.write(header + "\n".join(out) + "\n")
