"""Independent check of tests/data/fixed_bwd/*.bin (docs/fpga.md, "Golden files shared with HLS"):
recomputes every sum, the saturation masks, g_out and the stochastic rounding
(its own Philox4x32-10) with numpy. Run with Debian's python: /usr/bin/python3."""
import numpy as np, sys, glob, struct, os
for path in sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'data', 'fixed_bwd', '*.bin'))):
    b = open(path,'rb').read()
    assert b[:8] == b'STACLFB1'
    h = np.frombuffer(b, '<u4', 20, 8)
    clips,T,grid,W,A,kt,kh,kw,fx,fw1,fh,fwc,fy,fw2,tgu,tgy,tgh,eg,fgu,res = [int(v) for v in h]
    eg = struct.unpack('<i', struct.pack('<I', eg))[0]
    seed, step = np.frombuffer(b, '<u8', 2, 88)
    bgy,sgy,bgh,sgh = [int(v) for v in np.frombuffer(b, '<u4', 4, 104)]
    off = 120
    F=clips*T; P=grid*grid; K=kt*kh*kw
    def take(dt, n):
        global off
        a = np.frombuffer(b, dt, n, off); off += a.nbytes; return a
    g_in=take('<f4',F*(P+1)*W).reshape(F,P+1,W); xq=take('<i2',F*(P+1)*W).reshape(F,P+1,W)
    hh=take('<i2',F*P*A).reshape(F*P,A); y=take('<i2',F*P*A).reshape(F*P,A)
    w1t=take('<i2',W*A).reshape(W,A).astype(np.int64); cw=take('<i2',A*K).reshape(A,K).astype(np.int64); w2t=take('<i2',A*W).reshape(A,W).astype(np.int64)
    gu=take('<i2',F*P*W).reshape(F*P,W).astype(np.int64); gyacc=take('<i8',F*P*A).reshape(F*P,A); gy=take('<i2',F*P*A).reshape(F*P,A).astype(np.int64)
    ghacc=take('<i8',F*P*A).reshape(F*P,A); gh=take('<i2',F*P*A).reshape(F*P,A).astype(np.int64); gxacc=take('<i8',F*P*W).reshape(F*P,W)
    g_out=take('<f4',F*(P+1)*W).reshape(F,P+1,W)
    dw2=take('<i8',A*W).reshape(A,W); db2=take('<i8',W); dcw=take('<i8',A*K).reshape(A,K); dcb=take('<i8',A); dw1t=take('<i8',W*A).reshape(W,A); db1=take('<i8',A)
    assert off == len(b), (off, len(b))
    assert res == 0 and (xq[:,0]==0).all()
    # exponent
    g = g_in[:,1:].reshape(-1).astype(np.float64); nz = g[g!=0]
    e = max(np.frexp(nz)[1]) if len(nz) else -1000
    assert e == eg and fgu == min(max(14-e,0),48)
    assert (gyacc == gu @ w2t.T).all()
    bl = lambda a: int(max(int(abs(int(v))).bit_length() for v in a.reshape(-1)))
    assert bgy == bl(gyacc) and sgy == max(0,bgy-14) and bgh == bl(ghacc) and sgh == max(0,bgh-14)
    sat = lambda a: (a==32767)|(a==-32768)
    assert (gy[sat(y)]==0).all() and (gh[sat(hh)]==0).all()
    # sr bounds: floor or floor+1 (unsaturated unmasked)
    fl = np.floor_divide(gyacc, 1<<sgy); m = ~sat(y)
    assert (((gy==fl)|(gy==fl+1))[m]).all()
    fl = np.floor_divide(ghacc, 1<<sgh); m = ~sat(hh)
    assert (((gh==fl)|(gh==fl+1))[m]).all()
    # conv transpose, independent
    gy5 = gy.reshape(clips,T,grid,grid,A); h5 = hh.reshape(clips,T,grid,grid,A).astype(np.int64)
    ref_gh = np.zeros_like(gy5); ref_dcw = np.zeros((A,K),np.int64)
    for dt in range(kt):
      for dh in range(kh):
        for dw in range(kw):
          k=(dt*kh+dh)*kw+dw
          for t in range(T):
            for r in range(grid):
              for c in range(grid):
                tt,rr,cc = t+dt-kt//2, r+dh-kh//2, c+dw-kw//2
                if 0<=tt<T and 0<=rr<grid and 0<=cc<grid:
                  ref_gh[:,tt,rr,cc,:] += gy5[:,t,r,c,:]*cw[:,k]
                  ref_dcw[:,k] += (gy5[:,t,r,c,:]*h5[:,tt,rr,cc,:]).sum(0)
    assert (ref_gh.reshape(-1,A) == ghacc).all() and (ref_dcw == dcw).all() and (dcb == gy.sum(0)).all()
    assert (gxacc == gh @ w1t.T).all()
    assert (dw2 == y.astype(np.int64).T @ gu).all() and (db2 == gu.sum(0)).all()
    xr = xq[:,1:].reshape(-1,W).astype(np.int64)
    assert (dw1t == xr.T @ gh).all() and (db1 == gh.sum(0)).all()
    # g_out
    sc = fgu + fw2 - sgy + fwc - sgh + fw1
    add = np.ldexp(gxacc.astype(np.float32), -sc).astype(np.float32)  # int64->float32 rne then exact scale
    exp = g_in.copy(); pr = exp[:,1:].reshape(-1,W)
    pr2 = np.where(sat(xr), pr, (pr + add).astype(np.float32))
    exp[:,1:] = pr2.reshape(F,P,W)
    assert (exp.view('<u4') == g_out.view('<u4')).all()
    # gu: sr bounds of rint(g*2^(fgu+16))
    v = np.clip(np.rint((g_in[:,1:].reshape(-1,W).astype(np.float32)*np.float32(2.0**(fgu+16)))), -2.0**46, 2.0**46).astype(np.int64)
    fl = np.floor_divide(v, 1<<16)
    assert (((gu==np.clip(fl,-32768,32767))|(gu==np.clip(fl+1,-32768,32767)))).all()
    print(path.split('/')[-1], 'ok', len(b), 'bytes', 'e', eg, 'fgu', fgu, 'masked gy', int(sat(y).sum()), 'masked xq', int(sat(xr).sum()))

M=0xffffffff
def philox(ctr, key):
    c0,c1,c2,c3 = ctr; k0,k1 = key
    for r in range(10):
        if r: k0=(k0+0x9E3779B9)&M; k1=(k1+0xBB67AE85)&M
        p0=0xD2511F53*c0; p1=0xCD9E8D57*c2
        c0,c1,c2,c3 = ((p1>>32)^c1^k0)&M, p1&M, ((p0>>32)^c3^k1)&M, p0&M
    return c0,c1,c2,c3
assert philox((0,0,0,0),(0,0)) == (0x6627e8d5,0xe169c58d,0xbc57ac4c,0x9b00dbd8)
def rand64(seed, step, tensor, i):
    r = philox((i, tensor, step&M, step>>32), (seed&M, seed>>32)); return (r[1]<<32)|r[0]
def sr(v, s, u):
    if s == 0: return v
    q = v >> s; r = v - (q << s)
    return q + (1 if (u >> (64-s)) < r else 0)
sat16 = lambda v: max(-32768, min(32767, v))
import struct
for path in sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'data', 'fixed_bwd', '*.bin'))):
    b = open(path,'rb').read()
    h = [int(v) for v in np.frombuffer(b, '<u4', 20, 8)]
    clips,T,grid,W,A = h[:5]; K=h[5]*h[6]*h[7]; tgu,tgy,tgh = h[14:17]; fgu=h[18]
    seed, step = [int(v) for v in np.frombuffer(b, '<u8', 2, 88)]
    bgy,sgy,bgh,sgh = [int(v) for v in np.frombuffer(b, '<u4', 4, 104)]
    F=clips*T; P=grid*grid; NX=F*(P+1)*W; NH=F*P*A; NU=F*P*W
    off=120; g_in=np.frombuffer(b,'<f4',NX,off); off+=NX*4+NX*2; hh=np.frombuffer(b,'<i2',NH,off); off+=NH*2
    y=np.frombuffer(b,'<i2',NH,off); off+=NH*2+W*A*2+A*K*2+A*W*2
    gu=np.frombuffer(b,'<i2',NU,off); off+=NU*2; gyacc=np.frombuffer(b,'<i8',NH,off); off+=NH*8
    gy=np.frombuffer(b,'<i2',NH,off); off+=NH*2; ghacc=np.frombuffer(b,'<i8',NH,off); off+=NH*8; gh=np.frombuffer(b,'<i2',NH,off)
    gp = g_in.reshape(F,P+1,W)[:,1:].reshape(-1)
    for i in range(NU):
        v = float(np.rint(np.float32(gp[i])*np.float32(2.0**(fgu+16))))
        v = int(max(-2.0**46, min(2.0**46, v)))
        assert gu[i] == sat16(sr(v, 16, rand64(seed, step, tgu, i))), (path, i)
    for i in range(NH):
        want = 0 if y[i] in (32767,-32768) else sat16(sr(int(gyacc[i]), sgy, rand64(seed, step, tgy, i)))
        assert gy[i] == want
        want = 0 if hh[i] in (32767,-32768) else sat16(sr(int(ghacc[i]), sgh, rand64(seed, step, tgh, i)))
        assert gh[i] == want
    print(path.split('/')[-1], 'stochastic rounding re-derived in Python: ok')
