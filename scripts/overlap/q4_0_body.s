	vmovups	%zmm3, 320(%rsp)
	vcvtph2ps	(%rdx,%r13), %zmm3
	movzwl	-64(%rdi), %r14d
	vcvtph2ps	(%rdx,%rbp), %zmm0
	vcvtph2ps	-4640(%rdx,%r11), %zmm10
	vcvtph2ps	(%rdx,%r9), %zmm12
	vmovdqu64	%zmm6, 704(%rsp)
	vxorps	%xmm13, %xmm13, %xmm13
	vpxord	%xmm20, %xmm20, %xmm20
	vmovd	%r14d, %xmm2
	movl	(%rax,%r8,4), %r14d
	prefetcht0	-544(%rdx,%r11)
	vpbroadcastd	-62(%rdi), %zmm15
	vcvtph2ps	%xmm2, %xmm2
	vbroadcastss	%xmm2, %zmm27
	shll	$3, %r14d
	vmovups	%zmm3, 384(%rsp)
	vmovdqu64	-4608(%rdx,%r11), %zmm3
	prefetcht0	-480(%rdx,%r11)
	negl	%r14d
	vmovups	%zmm0, 64(%rsp)
	vmovups	%zmm27, 448(%rsp)
	vpbroadcastd	-58(%rdi), %zmm16
	vmovdqu64	-4544(%rdx,%r11), %zmm7
	vpbroadcastd	-54(%rdi), %zmm18
	prefetcht0	-416(%rdx,%r11)
	vmovdqu64	-4480(%rdx,%r11), %zmm11
	vpbroadcastd	-50(%rdi), %zmm21
	vpbroadcastd	-46(%rdi), %zmm22
	prefetcht0	-352(%rdx,%r11)
	vmovdqu64	-4416(%rdx,%r11), %zmm8
	vpbroadcastd	-42(%rdi), %zmm14
	vpbroadcastd	-38(%rdi), %zmm19
	prefetcht0	-288(%rdx,%r11)
	vpbroadcastd	-34(%rdi), %zmm17
	prefetcht0	4096(%rdx,%r9)
	vpandd	%zmm31, %zmm3, %zmm6
	vgf2p8affineqb	$0, %zmm1, %zmm3, %zmm3
	vpdpbusd	%zmm15, %zmm6, %zmm13
	vpandd	%zmm31, %zmm7, %zmm6
	vgf2p8affineqb	$0, %zmm1, %zmm7, %zmm7
	vpandd	%zmm31, %zmm11, %zmm9
	vgf2p8affineqb	$0, %zmm1, %zmm11, %zmm11
	vpandd	%zmm31, %zmm8, %zmm23
	vgf2p8affineqb	$0, %zmm1, %zmm8, %zmm2
	vpdpbusd	%zmm16, %zmm3, %zmm13
	vmovdqu64	32(%rdx,%r9), %zmm3
	prefetcht0	4160(%rdx,%r9)
	vpdpbusd	%zmm18, %zmm6, %zmm13
	vpandd	%zmm31, %zmm3, %zmm24
	vgf2p8affineqb	$0, %zmm1, %zmm3, %zmm3
	vpdpbusd	%zmm21, %zmm7, %zmm13
	vpdpbusd	%zmm15, %zmm24, %zmm20
	vpdpbusd	%zmm22, %zmm9, %zmm13
	vpdpbusd	%zmm16, %zmm3, %zmm20
	vmovdqu64	96(%rdx,%r9), %zmm3
	prefetcht0	4224(%rdx,%r9)
	vpdpbusd	%zmm14, %zmm11, %zmm13
	vpdpbusd	%zmm19, %zmm23, %zmm13
	vpandd	%zmm31, %zmm3, %zmm6
	vgf2p8affineqb	$0, %zmm1, %zmm3, %zmm3
	vpdpbusd	%zmm18, %zmm6, %zmm20
	vmovdqu64	160(%rdx,%r9), %zmm6
	prefetcht0	4288(%rdx,%r9)
	vmovdqu64	224(%rdx,%r9), %zmm9
	prefetcht0	4352(%rdx,%r9)
	prefetcht0	4096(%rdx,%rbp)
	vmovdqu64	32(%rdx,%rbp), %zmm25
	prefetcht0	4160(%rdx,%rbp)
	vpdpbusd	%zmm17, %zmm2, %zmm13
	vpdpbusd	%zmm21, %zmm3, %zmm20
	vpandd	%zmm31, %zmm6, %zmm7
	vgf2p8affineqb	$0, %zmm1, %zmm6, %zmm6
	vpdpbusd	%zmm22, %zmm7, %zmm20
	vmovdqu64	96(%rdx,%rbp), %zmm7
	vpandd	%zmm31, %zmm9, %zmm24
	vgf2p8affineqb	$0, %zmm1, %zmm9, %zmm3
	vpxor	%xmm9, %xmm9, %xmm9
	prefetcht0	4224(%rdx,%rbp)
	vpandd	%zmm31, %zmm25, %zmm26
	vgf2p8affineqb	$0, %zmm1, %zmm25, %zmm11
	vmovdqu64	160(%rdx,%rbp), %zmm8
	prefetcht0	4288(%rdx,%rbp)
	vpdpbusd	%zmm15, %zmm26, %zmm9
	vpdpbusd	%zmm14, %zmm6, %zmm20
	vmovdqu64	224(%rdx,%rbp), %zmm6
	prefetcht0	4352(%rdx,%rbp)
	prefetcht0	4096(%rdx,%r13)
	vmovdqu64	32(%rdx,%r13), %zmm25
	prefetcht0	4160(%rdx,%r13)
	vpdpbusd	%zmm16, %zmm11, %zmm9
	vpandd	%zmm31, %zmm7, %zmm11
	vgf2p8affineqb	$0, %zmm1, %zmm7, %zmm7
	vpdpbusd	%zmm19, %zmm24, %zmm20
	vpdpbusd	%zmm18, %zmm11, %zmm9
	vpandd	%zmm31, %zmm8, %zmm11
	vpdpbusd	%zmm17, %zmm3, %zmm20
	vpandd	%zmm31, %zmm6, %zmm23
	vgf2p8affineqb	$0, %zmm1, %zmm6, %zmm6
	vpandd	%zmm31, %zmm25, %zmm26
	vgf2p8affineqb	$0, %zmm1, %zmm25, %zmm2
	vpdpbusd	%zmm21, %zmm7, %zmm9
	vgf2p8affineqb	$0, %zmm1, %zmm8, %zmm7
	vpdpbusd	%zmm22, %zmm11, %zmm9
	vpxor	%xmm11, %xmm11, %xmm11
	vpdpbusd	%zmm15, %zmm26, %zmm11
	vpdpbusd	%zmm14, %zmm7, %zmm9
	vpdpbusd	%zmm16, %zmm2, %zmm11
	vmovdqu64	96(%rdx,%r13), %zmm16
	prefetcht0	4224(%rdx,%r13)
	vmovdqu64	160(%rdx,%r13), %zmm8
	prefetcht0	4288(%rdx,%r13)
	vpdpbusd	%zmm19, %zmm23, %zmm9
	vpdpbusd	%zmm17, %zmm6, %zmm9
	vpandd	%zmm31, %zmm16, %zmm15
	vgf2p8affineqb	$0, %zmm1, %zmm16, %zmm2
	vmulps	%zmm12, %zmm27, %zmm16
	vpdpbusd	%zmm18, %zmm15, %zmm11
	vpandd	%zmm31, %zmm8, %zmm15
	vgf2p8affineqb	$0, %zmm1, %zmm8, %zmm7
	vmulps	%zmm10, %zmm27, %zmm8
	vpbroadcastd	%r14d, %zmm18
	vpaddd	%zmm18, %zmm13, %zmm3
	vcvtdq2ps	%zmm3, %zmm3
	vpaddd	%zmm18, %zmm9, %zmm9
	vpdpbusd	%zmm21, %zmm2, %zmm11
	vfmadd213ps	%zmm5, %zmm3, %zmm8
	vxorps	%xmm5, %xmm5, %xmm5
	vpdpbusd	%zmm22, %zmm15, %zmm11
	vmovdqu64	224(%rdx,%r13), %zmm15
	prefetcht0	4352(%rdx,%r13)
	vcvtph2ps	-4352(%rdx,%r11), %zmm10
	vcvtph2ps	288(%rdx,%r13), %zmm3
	movl	4(%rax,%r8,4), %r14d
	vcvtph2ps	288(%rdx,%r9), %zmm0
	movzwl	-30(%rdi), %r15d
	vmovups	%zmm8, 576(%rsp)
	addq	$2, %r8
	vpdpbusd	%zmm14, %zmm7, %zmm11
	vpxor	%xmm7, %xmm7, %xmm7
	shll	$3, %r14d
	negl	%r14d
	vpandd	%zmm31, %zmm15, %zmm21
	vgf2p8affineqb	$0, %zmm1, %zmm15, %zmm2
	vpdpbusd	%zmm19, %zmm21, %zmm11
	vmovups	%zmm10, 192(%rsp)
	vcvtph2ps	288(%rdx,%rbp), %zmm10
	prefetcht0	-256(%rdx,%r11)
	vmovups	%zmm3, 256(%rsp)
	vmovups	%zmm0, 640(%rsp)
	vmovdqu64	-4320(%rdx,%r11), %zmm8
	vpbroadcastd	-28(%rdi), %zmm30
	prefetcht0	-192(%rdx,%r11)
	vpdpbusd	%zmm17, %zmm2, %zmm11
	vpxord	%xmm17, %xmm17, %xmm17
	vpbroadcastd	-24(%rdi), %zmm29
	vmovdqu64	-4256(%rdx,%r11), %zmm24
	vpbroadcastd	-20(%rdi), %zmm25
	prefetcht0	-128(%rdx,%r11)
	vpbroadcastd	-16(%rdi), %zmm22
	vmovdqu64	-4192(%rdx,%r11), %zmm26
	vpbroadcastd	-12(%rdi), %zmm19
	prefetcht0	-64(%rdx,%r11)
	vmovdqu64	-4128(%rdx,%r11), %zmm15
	vpbroadcastd	-4(%rdi), %zmm21
	vpandd	%zmm31, %zmm8, %zmm3
	vgf2p8affineqb	$0, %zmm1, %zmm8, %zmm8
	vpdpbusd	%zmm30, %zmm3, %zmm5
	vpaddd	%zmm18, %zmm20, %zmm3
	vpbroadcastd	-8(%rdi), %zmm20
	prefetcht0	(%rdx,%r11)
	vpbroadcastd	(%rdi), %zmm23
	prefetcht0	4384(%rdx,%r9)
	vcvtdq2ps	%zmm3, %zmm3
	vmovups	%zmm10, 768(%rsp)
	addq	$68, %rdi
	vmovdqu64	320(%rdx,%r9), %zmm2
	prefetcht0	4448(%rdx,%r9)
	vmovdqu64	384(%rdx,%r9), %zmm13
	prefetcht0	4512(%rdx,%r9)
	vmovdqu64	448(%rdx,%r9), %zmm12
	prefetcht0	4576(%rdx,%r9)
	vfmadd213ps	%zmm4, %zmm3, %zmm16
	vxorps	%xmm4, %xmm4, %xmm4
	vpdpbusd	%zmm29, %zmm8, %zmm5
	vmovdqu64	512(%rdx,%r9), %zmm14
	prefetcht0	4640(%rdx,%r9)
	prefetcht0	4384(%rdx,%rbp)
	vmovdqu64	320(%rdx,%rbp), %zmm0
	prefetcht0	4448(%rdx,%rbp)
	vpandd	%zmm31, %zmm2, %zmm6
	vgf2p8affineqb	$0, %zmm1, %zmm2, %zmm2
	vpdpbusd	%zmm30, %zmm6, %zmm17
	vpandd	%zmm31, %zmm13, %zmm8
	vgf2p8affineqb	$0, %zmm1, %zmm13, %zmm13
	vpandd	%zmm31, %zmm0, %zmm3
	vgf2p8affineqb	$0, %zmm1, %zmm0, %zmm0
	vpdpbusd	%zmm30, %zmm3, %zmm4
	vmovdqu64	384(%rdx,%rbp), %zmm3
	prefetcht0	4512(%rdx,%rbp)
	vpdpbusd	%zmm29, %zmm2, %zmm17
	vpandd	%zmm31, %zmm24, %zmm2
	vgf2p8affineqb	$0, %zmm1, %zmm24, %zmm24
	vmovdqu64	448(%rdx,%rbp), %zmm10
	prefetcht0	4576(%rdx,%rbp)
	vpdpbusd	%zmm25, %zmm2, %zmm5
	vmovdqu64	512(%rdx,%rbp), %zmm6
	prefetcht0	4640(%rdx,%rbp)
	prefetcht0	4384(%rdx,%r13)
	vmovdqu64	320(%rdx,%r13), %zmm27
	prefetcht0	4448(%rdx,%r13)
	vpdpbusd	%zmm29, %zmm0, %zmm4
	vpdpbusd	%zmm25, %zmm8, %zmm17
	vmovups	448(%rsp), %zmm8
	vpdpbusd	%zmm22, %zmm24, %zmm5
	vpandd	%zmm31, %zmm3, %zmm2
	vgf2p8affineqb	$0, %zmm1, %zmm3, %zmm3
	vpdpbusd	%zmm22, %zmm13, %zmm17
	vpandd	%zmm31, %zmm12, %zmm13
	vpdpbusd	%zmm25, %zmm2, %zmm4
	vpandd	%zmm31, %zmm27, %zmm28
	vgf2p8affineqb	$0, %zmm1, %zmm27, %zmm0
	vmovdqu64	384(%rdx,%r13), %zmm27
	prefetcht0	4512(%rdx,%r13)
	vpdpbusd	%zmm30, %zmm28, %zmm7
	vpdpbusd	%zmm19, %zmm13, %zmm17
	vpdpbusd	%zmm22, %zmm3, %zmm4
	vpandd	%zmm31, %zmm10, %zmm3
	vgf2p8affineqb	$0, %zmm1, %zmm10, %zmm10
	vpdpbusd	%zmm29, %zmm0, %zmm7
	vpdpbusd	%zmm19, %zmm3, %zmm4
	vpandd	%zmm31, %zmm14, %zmm3
	vpandd	%zmm31, %zmm27, %zmm2
	vgf2p8affineqb	$0, %zmm1, %zmm27, %zmm0
	vpdpbusd	%zmm25, %zmm2, %zmm7
	vmulps	64(%rsp), %zmm8, %zmm25
	vcvtdq2ps	%zmm9, %zmm2
	vpandd	%zmm31, %zmm15, %zmm9
	vmulps	384(%rsp), %zmm8, %zmm8
	vpdpbusd	%zmm20, %zmm10, %zmm4
	vfmadd213ps	704(%rsp), %zmm2, %zmm25
	vpandd	%zmm31, %zmm26, %zmm2
	vpdpbusd	%zmm19, %zmm2, %zmm5
	vgf2p8affineqb	$0, %zmm1, %zmm26, %zmm2
	vpdpbusd	%zmm22, %zmm0, %zmm7
	vpandd	%zmm31, %zmm6, %zmm0
	vgf2p8affineqb	$0, %zmm1, %zmm6, %zmm6
	vpdpbusd	%zmm21, %zmm0, %zmm4
	vpdpbusd	%zmm20, %zmm2, %zmm5
	vpaddd	%zmm18, %zmm11, %zmm2
	vgf2p8affineqb	$0, %zmm1, %zmm15, %zmm11
	vpdpbusd	%zmm23, %zmm6, %zmm4
	vcvtdq2ps	%zmm2, %zmm2
	vfmadd213ps	320(%rsp), %zmm2, %zmm8
	vpdpbusd	%zmm21, %zmm9, %zmm5
	vgf2p8affineqb	$0, %zmm1, %zmm12, %zmm9
	vpdpbusd	%zmm20, %zmm9, %zmm17
	vgf2p8affineqb	$0, %zmm1, %zmm14, %zmm9
	vpdpbusd	%zmm23, %zmm11, %zmm5
	vmovdqu64	448(%rdx,%r13), %zmm11
	prefetcht0	4576(%rdx,%r13)
	vmovdqu64	512(%rdx,%r13), %zmm0
	prefetcht0	4640(%rdx,%r13)
	addq	$576, %rdx
	vpdpbusd	%zmm21, %zmm3, %zmm17
	vmovd	%r15d, %xmm3
	vcvtph2ps	%xmm3, %xmm3
	vpdpbusd	%zmm23, %zmm9, %zmm17
	vbroadcastss	%xmm3, %zmm3
	vpandd	%zmm31, %zmm11, %zmm10
	vgf2p8affineqb	$0, %zmm1, %zmm11, %zmm9
	vpdpbusd	%zmm19, %zmm10, %zmm7
	vpbroadcastd	%r14d, %zmm10
	vpaddd	%zmm10, %zmm5, %zmm2
	vmulps	192(%rsp), %zmm3, %zmm5
	vpaddd	%zmm10, %zmm17, %zmm6
	vcvtdq2ps	%zmm2, %zmm2
	vcvtdq2ps	%zmm6, %zmm6
	vpdpbusd	%zmm20, %zmm9, %zmm7
	vpandd	%zmm31, %zmm0, %zmm9
	vgf2p8affineqb	$0, %zmm1, %zmm0, %zmm0
	vfmadd213ps	576(%rsp), %zmm2, %zmm5
	vpdpbusd	%zmm21, %zmm9, %zmm7
	vpaddd	%zmm10, %zmm4, %zmm9
	vmulps	640(%rsp), %zmm3, %zmm4
	vcvtdq2ps	%zmm9, %zmm2
	vpdpbusd	%zmm23, %zmm0, %zmm7
	vpaddd	%zmm10, %zmm7, %zmm0
	vcvtdq2ps	%zmm0, %zmm0
	vfmadd213ps	%zmm16, %zmm6, %zmm4
	vmulps	768(%rsp), %zmm3, %zmm6
	vmulps	256(%rsp), %zmm3, %zmm3
	vfmadd213ps	%zmm25, %zmm2, %zmm6
	vfmadd213ps	%zmm8, %zmm0, %zmm3
