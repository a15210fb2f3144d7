#!/usr/bin/env python3
"""loop_cycles.py: cycles per iteration of a kernel's hottest loop, with its
data in L1, on this x86-64 machine (a developer's tool, not a test).

    scripts/loop_cycles.py FILE --kernel K [--config "repack=1"] [--qkc build/qkc] [--ops 12]

The loop is taken from `qkc emit --stage=asm` (the basic block with the most
zmm vpdpbusd/vpdpwssd/vfmadd instructions that branches back to itself),
wrapped in a function whose registers are set so that every memory operand
reads one 1 MiB buffer (bases at its middle, index registers 0, spills on a
scratch stack), and timed over many calls; the loop's own counter runs 16
iterations a call. Cycles come from the time of a chain of dependent
integer adds (one cycle each) run the same way. What it measures is the
loop's compute rate with every load an L1 hit: the figure a change to the
decode or the float work moves, apart from the memory system, whose noise
on a shared machine hides 10-20% changes (docs/performance.md). Run it
twice: a run whose clock reads well below the other's was disturbed by the
host. Needs gcc and python3; x86-64 with AVX-512 only (the buffer is read
into zmm0-29).
"""
import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile

DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
void run_loop(void *buf, long n);
void add_chain(long n);
static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
int main(int argc, char **argv)
{
    char *b = aligned_alloc(64, 1 << 20);
    memset(b, 0x3c, 1 << 20); /* bytes of normal f16/f32 values: no denormal slow paths */
    for (int i = 0; i < 1 << 20; i += 7)
        b[i] = (char)(0x30 + (i & 7));
    int clock = argc > 1; /* the clock in a process of its own: the loop's state stays out of it */
    double best = 1e9;
    for (int r = 0; r < 63; r++) { /* minima: the host's other work only adds */
        double t0 = now(), t;
        if (clock) {
            add_chain(10000000);
            t = (now() - t0) / 10000000.0;
        } else {
            for (long c = 0; c < 30000; c++)
                run_loop(b, 16);
            t = (now() - t0) / (30000 * 16.0);
        }
        best = t < best ? t : best;
    }
    printf("%.4f\n", best * 1e9);
    return 0;
}
"""

ADD_CHAIN = """
.globl add_chain
add_chain:
 xor %eax, %eax
1: add $1, %rax
 cmp %rdi, %rax
 jne 1b
 ret
"""

GPRS = ['%rax', '%rbx', '%rcx', '%rdx', '%rsi', '%rdi', '%rbp',
        '%r8', '%r9', '%r10', '%r11', '%r12', '%r13', '%r14', '%r15']


def hottest_loop(asm):
    """(label, instruction lines) of the self-looping block with the most
    zmm dot products and FMAs."""
    blocks, label, lines = [], None, []
    for l in asm.splitlines():
        m = re.match(r'^(\.LBB\w+|[A-Za-z_]\w*):', l)
        if m:
            blocks.append((label, lines))
            label, lines = m.group(1), []
        elif l.startswith('\t') and not l.lstrip().startswith(('.', '#')):
            lines.append(l)
    blocks.append((label, lines))
    best, score = None, 0
    for label, lines in blocks:
        if not lines or not re.match(r'\s*j\w+\s+' + re.escape(label or '-') + r'$', lines[-1]):
            continue
        n = sum(1 for l in lines if re.search(r'(vpdpbusd|vpdpwssd|vfmadd)\S*\s.*zmm', l))
        if n > score:
            best, score = (label, lines), n
    return best


def counter(lines):
    """(counter register, its step, the operand it is compared with); a
    count-down loop (decq and jne) gives (register, 0, None)"""
    cmp_ = [l for l in lines if re.match(r'\s*cmpq\s', l)]
    if not cmp_:
        dec = [l.split()[1] for l in lines if re.match(r'\s*decq\s+%r\w+$', l)]
        if len(dec) == 1 and re.match(r'\s*jne\s', lines[-1]):
            return dec[0], 0, None
        raise SystemExit('loop_cycles: no loop counter found (a 64-bit compare, or one decq before jne)')
    a, b = [x.strip() for x in cmp_[-1].split(None, 1)[1].split(',')]

    def step(r):
        for l in lines:
            m = re.match(r'\s*addq\s+\$(\d+),\s*' + re.escape(r) + r'$', l)
            if m:
                return int(m.group(1))
            if re.match(r'\s*incq\s+' + re.escape(r) + r'$', l):
                return 1
        return 0
    if not step(b) and step(a):
        a, b = b, a
    if not step(b):
        raise SystemExit('loop_cycles: no counter advanced by a constant: ' + cmp_[-1].strip())
    return b, step(b), a


def harness(label, lines):
    bases, index = set(), set()
    for l in lines:
        for m in re.finditer(r'\((%r\w+)(?:,(%r\w+)(?:,\d)?)?\)', l):
            bases.add(m.group(1))
            if m.group(2):
                index.add(m.group(2))
    ctr, step, limit = counter(lines)
    out = ['.text', '.globl run_loop', 'run_loop:',
           ' push %rbx; push %rbp; push %r12; push %r13; push %r14; push %r15',
           ' mov %rsp, saved_sp(%rip); sub $8192, %rsp; and $-64, %rsp',
           ' vmovq %rdi, %xmm31; vmovq %rsi, %xmm30']
    out += [f' vmovdqu64 (%rdi), %zmm{i}' for i in range(30)]
    if limit is None or limit.startswith('%'):
        pass
    elif '(%rsp)' in limit:
        out.append(f' vmovq %xmm30, %rax; imul ${step}, %rax; mov %rax, {limit}')
    else:
        raise SystemExit('loop_cycles: the counter is compared with ' + limit)
    for r in GPRS:
        if r in (ctr, limit):
            continue
        if r in bases and r not in index and r != '%rsp':
            out.append(f' vmovq %xmm31, {r}; add $524288, {r}')
        else:
            out.append(f' xor {r}, {r}')
    if limit is None:
        out.append(f' vmovq %xmm30, {ctr}')
    else:
        if limit.startswith('%'):
            out.append(f' vmovq %xmm30, {limit}; imul ${step}, {limit}')
        out.append(f' xor {ctr}, {ctr}')
    out.append('.Lloop:')
    out += [l.replace(label, '.Lloop') for l in lines]
    out += [' vzeroupper; mov saved_sp(%rip), %rsp',
            ' pop %r15; pop %r14; pop %r13; pop %r12; pop %rbp; pop %rbx; ret',
            ADD_CHAIN, '.data', 'saved_sp: .quad 0', '.section .note.GNU-stack,"",@progbits']
    return '\n'.join(out) + '\n'


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('file')
    ap.add_argument('--kernel', required=True)
    ap.add_argument('--config', default='')
    ap.add_argument('--qkc', default='build/qkc')
    ap.add_argument('--ops', type=int, default=12, help='most frequent instructions to list')
    o = ap.parse_args()
    cmd = [o.qkc, 'emit', o.file, '--kernel', o.kernel, '--stage=asm'] + (['--config', o.config] if o.config else [])
    asm = subprocess.run(cmd, capture_output=True, text=True)
    if asm.returncode:
        raise SystemExit(asm.stderr.strip())
    found = hottest_loop(asm.stdout)
    if not found:
        raise SystemExit('loop_cycles: no self-looping block with zmm dot products or FMAs')
    label, lines = found
    with tempfile.TemporaryDirectory() as d:
        open(os.path.join(d, 'loop.s'), 'w').write(harness(label, lines))
        open(os.path.join(d, 'main.c'), 'w').write(DRIVER)
        exe = os.path.join(d, 'run')
        cc = subprocess.run(['gcc', '-O2', os.path.join(d, 'main.c'), os.path.join(d, 'loop.s'), '-o', exe],
                            capture_output=True, text=True)
        if cc.returncode:
            raise SystemExit('loop_cycles: the harness does not assemble:\n' + cc.stderr)
        run = subprocess.run([exe], capture_output=True, text=True)
        if run.returncode:
            raise SystemExit(f'loop_cycles: the harness failed (status {run.returncode}): the loop reads '
                             'memory this tool does not model')
        clock = subprocess.run([exe, 'clock'], capture_output=True, text=True, check=True)
        ns, add_ns = float(run.stdout), float(clock.stdout)
        cycles, ghz = f'{ns / add_ns:.1f}', f'{1 / add_ns:.3f}'
        ns = f'{ns:.2f}'
    ops = collections.Counter(l.split()[0] for l in lines)
    print(f'{label}: {len(lines)} instructions, {cycles} cycles an iteration ({ns} ns; clock {ghz} GHz, '
          'from a chain of dependent adds)')
    for op, n in ops.most_common(o.ops):
        print(f'  {n:5d} {op}')


if __name__ == '__main__':
    sys.exit(main())
