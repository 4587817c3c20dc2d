/* wofdecode: CPU time of wimlib's decompressor over a WOF/WIM resource (chunk table, then chunks),
 * one thread, for bench/wof-read.sh to compare with our decoder on the same chunks.
 * Usage: wofdecode RESOURCE SIZE xpress|lzx CHUNK PASSES   (prints CPU seconds per pass)
 * Built against the installed libwim.so.15 with the two public API functions declared here, since
 * Debian's wimtools ships the library without its header. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct wimlib_decompressor;
int wimlib_create_decompressor(int ctype, size_t max_block_size, struct wimlib_decompressor **dec);
int wimlib_decompress(const void *in, size_t in_size, void *out, size_t out_size, struct wimlib_decompressor *dec);
enum { CTYPE_XPRESS = 1, CTYPE_LZX = 2 };

int main(int argc, char **argv) {
	if (argc != 6) {
		fprintf(stderr, "usage: wofdecode RESOURCE SIZE xpress|lzx CHUNK PASSES\n");
		return 2;
	}
	FILE *f = fopen(argv[1], "rb");
	if (!f) { perror(argv[1]); return 1; }
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	unsigned char *res = malloc(n);
	if (!res || fread(res, 1, n, f) != (size_t)n) { fprintf(stderr, "wofdecode: cannot read %s\n", argv[1]); return 1; }
	fclose(f);
	long long size = atoll(argv[2]);
	int ctype = strcmp(argv[3], "lzx") == 0 ? CTYPE_LZX : CTYPE_XPRESS;
	long cs = atol(argv[4]), passes = atol(argv[5]);
	long long nchunks = (size + cs - 1) / cs;
	if (size > 0xFFFFFFFFLL || nchunks < 1 || (nchunks - 1) * 4 > n) { fprintf(stderr, "wofdecode: bad size\n"); return 1; }
	long table = (nchunks - 1) * 4;
	struct wimlib_decompressor *d;
	if (wimlib_create_decompressor(ctype, cs, &d)) { fprintf(stderr, "wofdecode: no decompressor\n"); return 1; }
	unsigned char *out = malloc(cs);
	struct timespec t0, t1;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
	for (long p = 0; p < passes; p++) {
		for (long long i = 0; i < nchunks; i++) {
			uint32_t start = 0, end = n - table;
			if (i > 0) memcpy(&start, res + (i - 1) * 4, 4);
			if (i < nchunks - 1) memcpy(&end, res + i * 4, 4);
			long ulen = i < nchunks - 1 ? cs : size - i * cs;
			if (end < start || table + end > n) { fprintf(stderr, "wofdecode: bad table\n"); return 1; }
			if ((long)(end - start) == ulen) {
				memcpy(out, res + table + start, ulen); /* stored as is */
			} else if (wimlib_decompress(res + table + start, end - start, out, ulen, d)) {
				fprintf(stderr, "wofdecode: chunk %lld does not decode\n", i);
				return 1;
			}
		}
	}
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
	printf("%.3f\n", ((t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9) / passes);
	return 0;
}
