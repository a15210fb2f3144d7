import os, sys, re
# gen.py [VARIANT...] > loop.S
# Wraps the inner loop of qkc's q4_0 int8 GEMV (q4_0_body.s: `qkc emit --stage=asm` of
# /tmp kernel g at d011562, --layout any, Zen 5 host; 4 row groups of 16 a work item, 2 blocks an
# iteration) in a callable qloop(W, items, x, sums, stride, nblocks), with instruction classes
# removed or changed: nopf, pft1, nospill, nostore, addstore, nobcast (x broadcasts from a
# register), noscal, nocvtmem, nogf (shift for gf2p8affineqb), nofloat, nodec, nodp (vpaddd for
# vpdpbusd), onlymem, memdp [kcvt kx kdec kscal kfl], half, align, sink, sinkall, onestream (the
# work item's 4 groups interleaved into one stream) [pfaddN], pfseq [DN] [two] [pftop].
# The body assumes the registers the generated code set up (r11 = r12 + 4640, rdx the moving
# weight pointer, rdi x, rax/r8 x's sums, rsp spill slots at 64..832); regenerate the body for
# another build and check those before trusting a figure.
var = sys.argv[1:]
body = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'q4_0_body.s')).read().splitlines()
out = []
for l in body:
    s = l.strip()
    op = s.split()[0] if s else ''
    if 'nopf' in var and op.startswith('prefetch'): continue
    if 'nospill' in var and op == 'vmovups' and '(%rsp)' in s.split(',')[-1]: continue
    if 'nospill' in var and '(%rsp)' in s:
        s = re.sub(r'-?\d*\(%rsp\)', '%zmm28', s)
    if 'pft1' in var and op == 'prefetcht0': s = s.replace('prefetcht0', 'prefetcht1')
    if 'nobcast' in var and op == 'vpbroadcastd' and '(%rdi)' in s:
        s = 'vpbroadcastd %xmm30, ' + s.split(',')[-1].strip()
    if 'noscal' in var and op in ('movzwl', 'movl') and '(' in s:
        s = op.replace('movzwl','movl') + ' %ecx, ' + s.split(',')[-1].strip()
    if 'nocvtmem' in var and op == 'vcvtph2ps' and '(' in s:
        s = 'vcvtph2ps %ymm30, ' + s.split(',')[-1].strip()
    if 'align' in var and op in ('vmovdqu64', 'vcvtph2ps') and '(%rdx' in s:
        m = re.match(r'(\S+)\s+(-?\d*)\((%rdx,%r\w+)\),\s*(\S+)', s)
        X = int(m.group(2) or 0); reg = m.group(3)
        rel = X + (4640 if reg.endswith('r11') else 0)
        X2 = X - (rel % 64)
        s = '%s %d(%s), %s' % (m.group(1), X2, reg, m.group(4))
    if 'nogf' in var and op == 'vgf2p8affineqb':
        a = [t.strip() for t in s.split(None,1)[1].split(',')]
        s = 'vpsrlw $4, %s, %s' % (a[2], a[3])
    if 'nofloat' in var and op in ('vcvtdq2ps', 'vmulps', 'vfmadd213ps', 'vcvtph2ps', 'vbroadcastss'): continue
    if 'nofloat' in var and op == 'vmovups' : continue
    out.append('\t' + s)
hdr_one = 'onestream' in var
def regs_read(l):
    t = l.strip().split(None, 1)
    if len(t) < 2: return set()
    ops = [o.strip() for o in re.split(r',(?![^()]*\))', t[1])]
    src = ops[:-1] if t[0] not in ('vpdpbusd', 'vfmadd213ps') else ops
    out_ = set()
    for o in src:
        for m in re.findall(r'%[xyz]mm(\d+)', o): out_.add(int(m))
    return out_
def sink(out, ops):
    i = 0
    out = [(l, False) for l in out]
    while i < len(out):
        l = out[i][0].strip()
        t = l.split(None, 1)
        if not out[i][1] and t and t[0] in ops and '(%r' in l and not l.endswith('(%rsp)') and '%rsp' not in l:
            dst = int(re.findall(r'%[xyz]mm(\d+)\s*$', l)[0])
            j = i + 1
            while j < len(out):
                lj = out[j][0].strip()
                if dst in regs_read(lj) or re.search(r'%[xyz]mm' + str(dst) + r'\s*$', lj) or lj.startswith('addq') or lj.startswith('cmpq'): break
                j += 1
            ins = out.pop(i); out.insert(j - 1, (ins[0], True)); continue
        i += 1
    return [l for l, _ in out]
if 'sink' in var:
    out = sink(out, ('vmovdqu64',))
if 'sinkall' in var:
    out = sink(out, ('vmovdqu64', 'vpbroadcastd', 'vcvtph2ps'))

if 'onlymem' in var:
    keep = ('prefetch', 'vmovdqu64', 'cmpq', 'jl', 'addq')
    out = [l for l in out if l.strip().split()[0].startswith(keep) and not '(%rsp)' in l]
if 'nodec' in var:
    out = [l for l in out if l.strip().split()[0] not in ('vpandd', 'vgf2p8affineqb', 'vpsrlw')]
if 'memdp' in var:
    extra = ()
    if 'kcvt' in var: extra += ('vcvtph2ps',)
    if 'kx' in var: extra += ('vpbroadcastd',)
    if 'kdec' in var: extra += ('vpandd', 'vgf2p8affineqb')
    if 'kscal' in var: extra += ('movzwl', 'movl', 'vmovd', 'shll', 'negl')
    if 'kfl' in var: extra += ('vcvtdq2ps', 'vmulps', 'vfmadd213ps', 'vbroadcastss', 'vpaddd')
    out = [l for l in out if l.strip().split()[0].startswith(('prefetch', 'vmovdqu64', 'cmpq', 'jl', 'addq', 'vpdpbusd', 'vpxor', 'vxorps', 'vpxord') + extra) and not '(%rsp)' in l]
if 'half' in var:
    o2 = []; n = 0
    for l in out:
        op = l.strip().split()[0]
        if op.startswith('v') and op not in ('vmovdqu64',) and 'prefetch' not in op:
            n += 1
            if n % 2 == 0: continue
        o2.append(l)
    out = o2
if 'addstore' in var:
    out = out[:3] + ['\tvmovdqu64 %zmm6, 704(%rsp)'] + out[3:]
if 'nostore' in var:
    out = [l for l in out if not (l.strip().split()[0] in ('vmovups', 'vmovdqu64') and l.strip().endswith('(%rsp)'))]
if 'nodp' in var:
    out = [l.replace('vpdpbusd', 'vpaddd') for l in out]

if 'pfseq' in var:
    out = [l for l in out if not l.strip().startswith('prefetch')]
    D = int([v for v in var if v.startswith('D')][0][1:]) if any(v.startswith('D') for v in var) else 4096
    pf = ['\tprefetcht0 %d(%%rdx,%%r12)' % (D + 64 * q) for q in range(36)]
    if 'two' in var:
        pf = [p for q in range(36) for p in ('\tprefetcht0 %d(%%rdx,%%r12)' % (2048 + 64 * q), '\tprefetcht1 %d(%%rdx,%%r12)' % (D + 64 * q))]
        step = len(out) // 72; o2 = []
        for i, l in enumerate(out):
            if i % step == 0 and i // step < 72: o2.append(pf[i // step])
            o2.append(l)
        out = o2
    elif 'pftop' in var:
        out = pf + out
    else:
        # spread: one prefetch every len(out)/36 instructions
        step = len(out) // 36; o2 = []
        for i, l in enumerate(out):
            if i % step == 0 and i // step < 36: o2.append(pf[i // step])
            o2.append(l)
        out = o2
if hdr_one:
    out = [l.replace('addq\t$576, %rdx', 'addq\t$2304, %rdx').replace('addq $576, %rdx', 'addq $2304, %rdx') for l in out]
    extra = int([v for v in var if v.startswith('pfadd')][0][5:]) if any(v.startswith('pfadd') for v in var) else 0
    if extra:
        o2 = []
        for l in out:
            m = re.match(r'(\s*prefetcht\d)\s+(-?\d*)\((.*)\)', l)
            if m: l = '%s %d(%s)' % (m.group(1), int(m.group(2) or 0) + extra, m.group(3))
            o2.append(l)
        out = o2
print('''	.text
	.globl qloop
	.type qloop,@function
# qloop(W, items, x, sums, stride, nblocks)
qloop:
	pushq %rbp
	pushq %rbx
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, %rbx
	subq $2048, %rsp
	andq $-64, %rsp
	movq %rdi, %r10          # W base
	movq %rdx, 8(%rsp)       # x
	movq %rcx, 32(%rsp)      # sums
	movq %r8, 16(%rsp)       # stride
	movq %rsi, 24(%rsp)      # items
	movq %r9, 48(%rsp)       # blocks per group
	movl $0x0f0f0f0f, %ecx
	vpbroadcastd %ecx, %zmm31
	movl $0x01020408, %ecx
	vpbroadcastd %ecx, %zmm1
	vpxord %zmm3, %zmm3, %zmm3
	vpxord %zmm4, %zmm4, %zmm4
	vpxord %zmm5, %zmm5, %zmm5
	vpxord %zmm6, %zmm6, %zmm6
	xorl %ecx, %ecx
.Litem:
	cmpq 24(%rsp), %rcx
	jge .Ldone
	movq %rcx, %r12
	shlq $2, %r12
	imulq 16(%rsp), %r12
''' + ('''	leaq 576(%r12), %r9
	leaq 1152(%r12), %rbp
	leaq 1728(%r12), %r13
''' if hdr_one else '''	movq 16(%rsp), %r9
	addq %r12, %r9
	movq 16(%rsp), %rbp
	addq %r9, %rbp
	movq 16(%rsp), %r13
	addq %rbp, %r13
''') + '''	leaq 4640(%r12), %r11
	movq %r10, %rdx
	movq 8(%rsp), %rdi
	xorl %r8d, %r8d
	movq 48(%rsp), %rsi
	movq 32(%rsp), %rax
	incq %rcx
	movq %rcx, 40(%rsp)
	.p2align 4
.Lloop:''')
print('\n'.join(out))
print('''	cmpq	%rsi, %r8
	jl	.Lloop
	movq 40(%rsp), %rcx
	jmp .Litem
.Ldone:
	movq 32(%rsp), %rax
	vmovdqu64 %zmm3, (%rax)
	vpaddd %zmm4, %zmm5, %zmm4
	vpaddd %zmm4, %zmm6, %zmm4
	vmovdqu64 %zmm4, 64(%rax)
	movq %rbx, %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbx
	popq %rbp
	vzeroupper
	ret
''')
