#include "textflag.h"

// The zlib checksum with AVX2, 64 bytes per step. Over n bytes b[0..n-1] starting from (s1, s2):
//
//	s1' = s1 + Σ b[i]
//	s2' = s2 + n*s1 + Σ (n-i)*b[i]
//
// Split the n bytes into k steps of 64. Byte t of step j has weight n-64j-t = 64*(k-1-j) + (64-t):
// the first part is 64 times the byte sums of all earlier steps, gathered by adding the running byte
// sum (Y0) into Y1 before each step; the second is the same fixed weight 64..1 in every step, done by
// VPMADDUBSW (bytes times weights, pairs added into 16 words, at most 255*(64+63) < 2^15) and VPMADDWD
// against ones (pairs of words into 8 dwords, Y2 and Y3).
//
// A chunk is at most chunkBytes (1024 steps). Within it Y0 and Y1 are 64-bit lanes (VPSADBW gives
// four 64-bit sums), Y2 and Y3 lanes stay below 1024*255*(64+63+62+61) < 2^31, and the weighted total
// summed across lanes is at most 255*(64+...+1)*1024 < 2^30, so 32-bit adds cannot overflow. After
// each chunk the totals join s1 and s2 in 64-bit registers and both are reduced modulo 65521.

#define chunkBytes 65536

// Byte i of the 64-byte weight table is 64-i.
DATA weights<>+0(SB)/8, $0x393a3b3c3d3e3f40
DATA weights<>+8(SB)/8, $0x3132333435363738
DATA weights<>+16(SB)/8, $0x292a2b2c2d2e2f30
DATA weights<>+24(SB)/8, $0x2122232425262728
DATA weights<>+32(SB)/8, $0x191a1b1c1d1e1f20
DATA weights<>+40(SB)/8, $0x1112131415161718
DATA weights<>+48(SB)/8, $0x090a0b0c0d0e0f10
DATA weights<>+56(SB)/8, $0x0102030405060708
GLOBL weights<>(SB), RODATA|NOPTR, $64

// func adler32AVX2Blocks(adler uint32, p []byte) uint32
// Only whole 64-byte steps of p are summed; the caller finishes the rest.
TEXT ·adler32AVX2Blocks(SB), NOSPLIT, $0-36
	MOVL adler+0(FP), AX
	MOVL AX, BX
	ANDL $0xffff, AX         // s1
	SHRL $16, BX             // s2
	MOVQ p_base+8(FP), SI
	MOVQ p_len+16(FP), CX
	ANDQ $-64, CX
	JZ   done

	VMOVDQU weights<>+0(SB), Y14  // weights 64..33
	VMOVDQU weights<>+32(SB), Y13 // weights 32..1
	VPCMPEQW Y12, Y12, Y12
	VPSRLW   $15, Y12, Y12         // sixteen words of 1
	VPXOR    Y15, Y15, Y15         // zero, for VPSADBW
	MOVQ     $65521, R11

chunk:
	MOVQ    $chunkBytes, DX
	CMPQ    CX, DX
	CMOVQLT CX, DX           // DX = bytes in this chunk
	SUBQ    DX, CX

	// Every byte of the chunk adds the s1 it started with to s2.
	MOVQ  DX, R8
	IMULQ AX, R8
	ADDQ  R8, BX

	VPXOR Y0, Y0, Y0         // byte sums of the steps so far
	VPXOR Y1, Y1, Y1         // sum over steps of Y0 before the step
	VPXOR Y2, Y2, Y2         // weighted sums, first 32 bytes of each step
	VPXOR Y3, Y3, Y3         // weighted sums, last 32 bytes

step:
	VMOVDQU    (SI), Y4
	VMOVDQU    32(SI), Y5
	VPADDQ     Y0, Y1, Y1
	VPSADBW    Y15, Y4, Y6
	VPSADBW    Y15, Y5, Y7
	VPADDQ     Y6, Y7, Y7
	VPADDQ     Y7, Y0, Y0
	VPMADDUBSW Y14, Y4, Y8
	VPMADDUBSW Y13, Y5, Y9
	VPMADDWD   Y12, Y8, Y8
	VPMADDWD   Y12, Y9, Y9
	VPADDD     Y8, Y2, Y2
	VPADDD     Y9, Y3, Y3
	ADDQ       $64, SI
	SUBQ       $64, DX
	JNZ        step

	// s1 += lanes of Y0.
	VEXTRACTI128 $1, Y0, X4
	VPADDQ       X4, X0, X0
	VPSHUFD      $0x4e, X0, X4
	VPADDQ       X4, X0, X0
	VMOVQ        X0, R8
	ADDQ         R8, AX

	// s2 += 64 * lanes of Y1.
	VEXTRACTI128 $1, Y1, X4
	VPADDQ       X4, X1, X1
	VPSHUFD      $0x4e, X1, X4
	VPADDQ       X4, X1, X1
	VMOVQ        X1, R8
	SHLQ         $6, R8
	ADDQ         R8, BX

	// s2 += lanes of Y2 and Y3.
	VPADDD       Y3, Y2, Y2
	VEXTRACTI128 $1, Y2, X4
	VPADDD       X4, X2, X2
	VPSHUFD      $0x4e, X2, X4
	VPADDD       X4, X2, X2
	VPSHUFD      $0xb1, X2, X4
	VPADDD       X4, X2, X2
	VMOVD        X2, R8
	ADDQ         R8, BX

	// Reduce both modulo 65521 (DIVQ divides DX:AX; DX is zero here).
	DIVQ R11
	MOVQ DX, R9
	MOVQ BX, AX
	XORL DX, DX
	DIVQ R11
	MOVQ DX, BX
	MOVQ R9, AX

	TESTQ CX, CX
	JNZ   chunk
	VZEROUPPER

done:
	SHLL $16, BX
	ORL  BX, AX
	MOVL AX, ret+32(FP)
	RET
