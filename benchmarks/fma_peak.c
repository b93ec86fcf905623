/* The CPU's fp32 arithmetic ceiling: GFLOP/s of fused multiply-adds alone.
 *
 *     cc -O2 -fopenmp benchmarks/fma_peak.c -o fma_peak && OMP_NUM_THREADS=2 ./fma_peak
 *
 * Every OpenMP thread runs independent chains of vector FMAs (AVX-512 where the CPU
 * has it, else AVX2 + FMA) on registers only: no memory traffic, enough chains to
 * hide the FMA latency (the inner loops are unrolled so that the chains stay in
 * registers). One FMA on a vector of w floats counts 2 w FLOPs. Prints the
 * best of 3 runs, in GFLOP/s, on one line. No convolution or matrix product can run
 * faster than this number; benchmarks/bench_speed.py compares its rates with it.
 * x86-64 only; exits 2 on a CPU without AVX2 + FMA.
 */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>

#define ROUNDS 20000000L
#define CHAINS_256 12
#define CHAINS_512 24

static volatile double sink; /* keeps the chains' results alive */

/* Defines NAME(): CHAINS independent chains of ROUNDS fused multiply-adds each, on
 * vectors of type VEC, kept in registers (the inner loop is unrolled). Returns the sum
 * of the chains' first lanes, which main keeps so that the compiler cannot drop the loop.
 * One definition serves both instruction sets; only the vector type and intrinsics differ. */
#define DEFINE_CHAINS(NAME, ISA, VEC, SET1, FMADD, FIRST_LANE, CHAINS)                  \
    __attribute__((target(ISA))) static float NAME(void) {                               \
        VEC acc[CHAINS];                                                                 \
        const VEC scale = SET1(0.999999f), shift = SET1(1e-7f);                          \
        for (int c = 0; c < CHAINS; c++) acc[c] = SET1((float)c);                        \
        for (long r = 0; r < ROUNDS; r++) {                                              \
            _Pragma("GCC unroll 24")                                                     \
            for (int c = 0; c < CHAINS; c++) acc[c] = FMADD(acc[c], scale, shift);       \
        }                                                                                \
        float sum = 0.0f;                                                                \
        for (int c = 0; c < CHAINS; c++) sum += FIRST_LANE(acc[c]);                      \
        return sum;                                                                      \
    }

DEFINE_CHAINS(chains_256, "avx2,fma", __m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_cvtss_f32, CHAINS_256)
DEFINE_CHAINS(chains_512, "avx512f", __m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_cvtss_f32, CHAINS_512)

int main(void) {
    __builtin_cpu_init();
    const int wide = __builtin_cpu_supports("avx512f");
    if (!wide && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) {
        fprintf(stderr, "fma_peak: this CPU has neither AVX-512 nor AVX2 + FMA\n");
        return 2;
    }
    const double flops_per_thread = 2.0 * ROUNDS * (wide ? CHAINS_512 * 16.0 : CHAINS_256 * 8.0);
    double best = 0.0, check = 0.0;
    for (int run = 0; run < 3; run++) {
        int threads = 1;
        const double started = omp_get_wtime();
#pragma omp parallel reduction(+ : check)
        {
            check += wide ? chains_512() : chains_256();
#pragma omp single
            threads = omp_get_num_threads();
        }
        const double rate = threads * flops_per_thread / (omp_get_wtime() - started) / 1e9;
        best = rate > best ? rate : best;
    }
    sink = check;
    printf("%.1f %s %d\n", best, wide ? "avx512" : "avx2", omp_get_max_threads());
    return 0;
}
