// jcascade's CUDA kernels: the whole Llama forward pass on weights in ggml's block layouts.
//
// Built two ways, from this one file with no #include, so that it needs nothing but the compiler:
//   * by nvcc in the Maven build (profile "nvcc"), to PTX for compute_80 and a cubin for sm_90a,
//     embedded in the jar (see build-kernels.sh);
//   * by NVRTC at run time, from the copy of this file embedded in the jar, when the driver cannot
//     load the prebuilt PTX (e.g. a driver older than the nvcc that wrote it).
//
// Conventions (see io.jcascade.kernels.cuda.CudaBackend, which launches these):
//   * activations are float32, token-major: token t of width d starts at t * d;
//   * weights are the raw bytes of a ggml tensor: rows back to back, each row_bytes long;
//   * the KV cache is IEEE half (stored as unsigned short), [layer][pos][kv_head * head_dim + d];
//   * every kernel is extern "C" so the host finds it by its plain name.
//
// Numerics follow the CPU backend (CpuKernels / CpuBackend): RMSNorm and softmax sum in double,
// exp/cos/sin in double rounded to float, RoPE steps its angle by repeated float multiplication,
// the KV cache, the query and the attention weights are rounded to half (round to nearest even).

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;

#define WARP 32
// -inf without <math.h>'s INFINITY, which NVRTC does not define without headers.
#define NEG_INF __int_as_float(0xff800000)

// ---------------------------------------------------------------------------------------------
// Half precision without cuda_fp16.h: one PTX conversion each way.

__device__ __forceinline__ float half_to_float(u16 h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}

__device__ __forceinline__ u16 float_to_half(float f) {
    u16 h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}

__device__ __forceinline__ float round_half(float f) {
    return half_to_float(float_to_half(f));
}

__device__ __forceinline__ float bf16_to_float(u16 b) {
    return __int_as_float(((u32) b) << 16);
}

// Unaligned little-endian loads: rows of Q8_0 (34-byte blocks) and Q4_0 (18) are not 2-aligned
// after the first block of an odd row, and a GGUF tensor may start anywhere 32-aligned.
__device__ __forceinline__ u16 load_u16(const u8* p) {
    return (u16) (p[0] | (p[1] << 8));
}

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = WARP / 2; o > 0; o >>= 1) {
        v += __shfl_xor_sync(0xffffffffu, v, o);
    }
    return v;
}

// ---------------------------------------------------------------------------------------------
// Weight element access. Every type is read as chunks of 32 consecutive elements; element j of
// chunk b of a row. For Q8_0/Q4_0 a chunk is one ggml block; for the K-quants (super-blocks of 256
// elements) chunk b is the eighth b % 8 of super-block b / 8.
//
// Each element is dequantized exactly as the CPU reference (ScalarKernels.dequantizeRow) does, in
// the same float operations and order; the products that meet a subtraction are __fmul_rn so that
// nvcc cannot fuse them into an fma, which would round differently (embed must match bit for bit).

enum WType { W_F32 = 0, W_F16 = 1, W_BF16 = 2, W_Q8_0 = 3, W_Q4_0 = 4, W_Q4_K = 5, W_Q5_K = 6, W_Q6_K = 7,
             W_Q3_K = 8, W_Q2_K = 9 };

// The 6-bit scale of sub-block i (0..7, 32 elements) of a Q4_K/Q5_K super-block, from its 12 packed
// bytes sc: for i < 4 the low 6 bits of sc[i]; else the low nibble of sc[i+4] with the top 2 bits
// of sc[i-4] above it.
__host__ __device__ __forceinline__ int k_scale(const u8* sc, int i) {
    return i < 4 ? (sc[i] & 63) : ((sc[i + 4] & 0xF) | ((sc[i - 4] >> 6) << 4));
}

// The 6-bit min of sub-block i: for i < 4 the low 6 bits of sc[i+4]; else the high nibble of
// sc[i+4] with the top 2 bits of sc[i] above it.
__host__ __device__ __forceinline__ int k_min(const u8* sc, int i) {
    return i < 4 ? (sc[i + 4] & 63) : ((sc[i + 4] >> 4) | ((sc[i] >> 6) << 4));
}

// The 6-bit scale (0..63, before the -32) of sub-block i (0..15, 16 elements) of a Q3_K
// super-block, from its 12 packed bytes sc: the low 4 bits are the low (i < 8) or high (i >= 8)
// nibble of sc[i % 8], the high 2 bits are bits 2(i/4)..2(i/4)+1 of sc[8 + i % 4].
__device__ __forceinline__ int q3_scale(const u8* sc, int i) {
    int lo = i < 8 ? (sc[i % 8] & 0xF) : (sc[i % 8] >> 4);
    int hi = (sc[8 + i % 4] >> (2 * (i / 4))) & 3;
    return lo | (hi << 4);
}

template <int T>
__device__ __forceinline__ float weight_at(const u8* row, int b, int j) {
    if (T == W_F32) {
        const u8* p = row + 4 * (32 * b + j);
        return __int_as_float((int) (p[0] | (p[1] << 8) | (p[2] << 16) | ((u32) p[3] << 24)));
    } else if (T == W_F16) {
        return half_to_float(load_u16(row + 2 * (32 * b + j)));
    } else if (T == W_BF16) {
        return bf16_to_float(load_u16(row + 2 * (32 * b + j)));
    } else if (T == W_Q8_0) {
        // block: fp16 d, int8 qs[32]
        const u8* blk = row + 34 * b;
        float d = half_to_float(load_u16(blk));
        return d * (float) (signed char) blk[2 + j];
    } else if (T == W_Q4_0) {
        // Q4_0 block: fp16 d, u8 qs[16]; element j < 16 is the low nibble of qs[j], j >= 16 the high one of qs[j-16]
        const u8* blk = row + 18 * b;
        float d = half_to_float(load_u16(blk));
        int q = blk[2 + (j & 15)];
        q = j < 16 ? (q & 0x0F) : (q >> 4);
        return d * (float) (q - 8);
    } else if (T == W_Q4_K || T == W_Q5_K) {
        // Q4_K super-block (144 bytes): fp16 d, fp16 dmin, u8 scales[12], u8 qs[128].
        // Q5_K super-block (176 bytes): fp16 d, fp16 dmin, u8 scales[12], u8 qh[32], u8 qs[128].
        // Sub-block i = b % 8 (this chunk) reads bytes qs[32 * (i / 2) + j]: the low nibble for even
        // i, the high one for odd i; Q5_K adds bit i of qh[j] as the value 16.
        // Value d * scale(i) * q - dmin * min(i).
        const bool five = T == W_Q5_K;
        const u8* blk = row + (five ? 176 : 144) * (b >> 3);
        int i = b & 7;
        float d = half_to_float(load_u16(blk));
        float dmin = half_to_float(load_u16(blk + 2));
        int q = blk[(five ? 48 : 16) + 32 * (i >> 1) + j];
        q = (i & 1) ? (q >> 4) : (q & 0xF);
        if (five) {
            q += ((blk[16 + j] >> i) & 1) << 4;
        }
        return __fsub_rn(__fmul_rn(d * (float) k_scale(blk + 4, i), (float) q),
                         __fmul_rn(dmin, (float) k_min(blk + 4, i)));
    } else if (T == W_Q6_K) {
        // Q6_K super-block (210 bytes): u8 ql[128] (low 4 bits), u8 qh[64] (high 2 bits),
        // int8 scales[16] (one per 16 elements), fp16 d at byte 208.
        // Chunk i = b % 8 is half h = i / 4, quarter s = i % 4: the low bits are the low (s < 2) or
        // high (s >= 2) nibble of ql[64h + 32(s % 2) + j], the high bits are bits 2s..2s+1 of
        // qh[32h + j]. Value d * scales[2i + j / 16] * (q - 32).
        const u8* blk = row + 210 * (b >> 3);
        int i = b & 7;
        int h = i >> 2;
        int s = i & 3;
        int ql = blk[64 * h + 32 * (s & 1) + j];
        int qh = blk[128 + 32 * h + j];
        int q = (s < 2 ? (ql & 0xF) : (ql >> 4)) | (((qh >> (2 * s)) & 3) << 4);
        float d = half_to_float(load_u16(blk + 208));
        int sc = (signed char) blk[192 + 2 * i + (j >> 4)];
        return d * (float) sc * (float) (q - 32);
    } else if (T == W_Q3_K) {
        // Q3_K super-block (110 bytes): u8 hmask[32] (high bits), u8 qs[64] (low 2 bits),
        // u8 scales[12] (16 packed 6-bit scales, see q3_scale), fp16 d at byte 108.
        // Chunk i = b % 8 is half h = i / 4, quarter s = i % 4: the low bits are bits 2s..2s+1 of
        // qs[32h + j], the high bit is bit i of hmask[j]; the 3-bit value is the low bits, minus 4
        // when the high bit is clear. Value d * (scale(2i + j / 16) - 32) * q.
        const u8* blk = row + 110 * (b >> 3);
        int i = b & 7;
        int lo = (blk[32 + 32 * (i >> 2) + j] >> (2 * (i & 3))) & 3;
        int q = ((blk[j] >> i) & 1) ? lo : lo - 4;
        float d = half_to_float(load_u16(blk + 108));
        return d * (float) (q3_scale(blk + 96, 2 * i + (j >> 4)) - 32) * (float) q;
    } else {
        // Q2_K super-block (84 bytes): u8 scales[16] (per 16 elements: low nibble scale, high
        // nibble min), u8 qs[64] (2-bit quants), fp16 d at byte 80, fp16 dmin at 82.
        // Chunk i = b % 8 is half h = i / 4, quarter s = i % 4: q is bits 2s..2s+1 of qs[32h + j].
        // Value d * (sc & 15) * q - dmin * (sc >> 4), sc = scales[2i + j / 16].
        const u8* blk = row + 84 * (b >> 3);
        int i = b & 7;
        int sc = blk[2 * i + (j >> 4)];
        int q = (blk[16 + 32 * (i >> 2) + j] >> (2 * (i & 3))) & 3;
        float d = half_to_float(load_u16(blk + 80));
        float dmin = half_to_float(load_u16(blk + 82));
        return __fsub_rn(__fmul_rn(d * (float) (sc & 0xF), (float) q), __fmul_rn(dmin, (float) (sc >> 4)));
    }
}

// ---------------------------------------------------------------------------------------------
// Matrix product with the weights: out[t][r] = sum_c W[r][c] * x[t][c].
// One warp per row; lane j reads element j of each 32-element chunk (coalesced within a chunk);
// each warp carries MM_TOKENS tokens at once, so a weight element is read once per tile of tokens
// (the simple "tiled" form for prompt batches; a single token is the matrix-vector case).
// Grid: x = ceil(rows / MM_WARPS), y = ceil(n_tokens / MM_TOKENS). Block: MM_WARPS * 32.

#define MM_WARPS 4
#define MM_TOKENS 8

template <int T>
__device__ void matmul_body(const u8* __restrict__ w, long long row_bytes, int rows, int cols,
                            const float* __restrict__ x, float* __restrict__ out, int n_tokens) {
    int warp = threadIdx.x / WARP;
    int lane = threadIdx.x % WARP;
    int r = blockIdx.x * MM_WARPS + warp;
    if (r >= rows) {
        return;
    }
    int t0 = blockIdx.y * MM_TOKENS;
    int nt = min(MM_TOKENS, n_tokens - t0);
    const u8* row = w + (long long) r * row_bytes;
    float acc[MM_TOKENS];
#pragma unroll
    for (int i = 0; i < MM_TOKENS; i++) {
        acc[i] = 0.0f;
    }
    int chunks = (cols + 31) / 32;
    for (int b = 0; b < chunks; b++) {
        int c = 32 * b + lane;
        if (c < cols) {
            float wv = weight_at<T>(row, b, lane);
            const float* xc = x + (long long) t0 * cols + c;
#pragma unroll
            for (int i = 0; i < MM_TOKENS; i++) {
                if (i < nt) {
                    acc[i] = fmaf(wv, xc[(long long) i * cols], acc[i]);
                }
            }
        }
    }
#pragma unroll
    for (int i = 0; i < MM_TOKENS; i++) {
        float s = warp_sum(acc[i]);
        if (lane == 0 && i < nt) {
            out[(long long) (t0 + i) * rows + r] = s;
        }
    }
}

#define DEFINE_MATMUL(name, T)                                                                         \
    extern "C" __global__ void __launch_bounds__(MM_WARPS * WARP)                                      \
    name(const u8* w, long long row_bytes, int rows, int cols, const float* x, float* out, int n) {    \
        matmul_body<T>(w, row_bytes, rows, cols, x, out, n);                                           \
    }

DEFINE_MATMUL(matmul_f32, W_F32)
DEFINE_MATMUL(matmul_f16, W_F16)
DEFINE_MATMUL(matmul_bf16, W_BF16)
DEFINE_MATMUL(matmul_q8_0, W_Q8_0)
DEFINE_MATMUL(matmul_q4_0, W_Q4_0)
DEFINE_MATMUL(matmul_q4_k, W_Q4_K)
DEFINE_MATMUL(matmul_q5_k, W_Q5_K)
DEFINE_MATMUL(matmul_q6_k, W_Q6_K)
DEFINE_MATMUL(matmul_q3_k, W_Q3_K)
DEFINE_MATMUL(matmul_q2_k, W_Q2_K)

// ---------------------------------------------------------------------------------------------
// Matrix-vector product for decode (one token): out[r] = sum_c W[r][c] * x[c].
//
// At batch 1 every weight byte is read once per token, so this kernel is about keeping loads in
// flight. One warp per row, MV_WARPS rows a block. Lane l takes the 32-element chunks l, l + 32,
// ... of its row whole (a Q8_0/Q4_0 block, or the eighth of a K-quant super-block), so it reads a
// run of contiguous bytes with wide loads (16 bytes where the layout is 16-aligned: Q4_K; 2 bytes
// where it is only 2-aligned: Q8_0's 34-byte and Q4_0's 18-byte blocks, Q6_K's 210-byte
// super-blocks), decodes the scale once per chunk, and sums the chunk in float with the scale
// factored out. The loop is unrolled twice so that two chunks' loads are in flight per lane.
// Quant to float goes through the exponent trick (2^23 + n as float bits, minus 2^23 + bias),
// which is exact and costs one integer op and one add: int-to-float conversion is a quarter-rate
// instruction on recent GPUs.
//
// The chunk functions are __host__ __device__ so that a host program can run them on the CPU
// against the reference decoders (see kernels/src/test/cuda/matvec_host_check.cu): the layouts are
// checked on a machine without a GPU. Sums are in another order than the CPU's, so results agree
// to float rounding, not bit for bit (the tiled matmul above stays for prompts and as the fallback).
// Grid: x = ceil(rows / MV_WARPS). Block: MV_WARPS * 32. Needs cols % 32 == 0 (% 256, K-quants).

#define MV_WARPS 8

__host__ __device__ __forceinline__ float bits_to_float(u32 bits) {
#ifdef __CUDA_ARCH__
    return __int_as_float((int) bits);
#else
    float f;
    __builtin_memcpy(&f, &bits, 4);
    return f;
#endif
}

// n - bias exactly, for 0 <= n < 2^23: 2^23 + n as float bits, minus 2^23 + bias.
__host__ __device__ __forceinline__ float minus_bias(u32 n, float two23_plus_bias) {
    return bits_to_float(0x4B000000u | n) - two23_plus_bias;
}

__host__ __device__ __forceinline__ float half_bits_to_float(u16 h) {
#ifdef __CUDA_ARCH__
    return half_to_float(h);
#else
    u32 sign = (u32) (h & 0x8000) << 16;
    u32 exp = (h >> 10) & 0x1F;
    u32 man = h & 0x3FF;
    float mag;
    if (exp == 0) {
        mag = (float) man * (1.0f / 16777216.0f); // subnormal: man * 2^-24
    } else if (exp == 31) {
        mag = bits_to_float(man ? 0x7FC00000u : 0x7F800000u);
    } else {
        mag = bits_to_float(((exp + 112) << 23) | (man << 13));
    }
    return bits_to_float(sign | (u32) __builtin_bit_cast(u32, mag));
#endif
}

#ifndef __CUDA_ARCH__
// Host only (the matvec host check): float to IEEE half, round to nearest even, as cvt.rn.f16.f32.
static inline u16 host_float_to_half(float f) {
    u32 x;
    __builtin_memcpy(&x, &f, 4);
    u32 sign = (x >> 16) & 0x8000;
    u32 ax = x & 0x7FFFFFFF;
    if (ax >= 0x7F800000) {
        return (u16) (sign | 0x7C00 | (ax > 0x7F800000 ? 0x200 : 0));
    }
    if (ax >= 0x477FF000) { // rounds to >= 65520: infinity
        return (u16) (sign | 0x7C00);
    }
    if (ax < 0x38800000) { // below the smallest normal half: a subnormal, in units of 2^-24
        float a;
        __builtin_memcpy(&a, &ax, 4);
        return (u16) (sign | (u32) __builtin_rintf(a * 16777216.0f));
    }
    u32 r = ax + 0xFFF + ((ax >> 13) & 1); // round the 13 dropped bits to nearest even
    return (u16) (sign | ((r - 0x38000000) >> 13));
}
#endif

__host__ __device__ __forceinline__ float4 load_x4(const float* x, int i) {
#ifdef __CUDA_ARCH__
    return __ldg(reinterpret_cast<const float4*>(x) + i);
#else
    return reinterpret_cast<const float4*>(x)[i];
#endif
}

// sum_j x[j] for the 32 floats of chunk b.
__host__ __device__ __forceinline__ float chunk_x_sum(const float* x, int b) {
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < 8; i++) {
        float4 v = load_x4(x, 8 * b + i);
        s += (v.x + v.y) + (v.z + v.w);
    }
    return s;
}

template <int T>
__host__ __device__ __forceinline__ float chunk_dot(const u8* __restrict__ row, int b, const float* __restrict__ x);

// Q8_0 block b (34 bytes at 34b, 2-aligned): fp16 d, int8 qs[32]. d * sum_j qs[j] * x[j].
template <>
__host__ __device__ __forceinline__ float chunk_dot<W_Q8_0>(const u8* __restrict__ row, int b,
                                                           const float* __restrict__ x) {
    const u16* blk = reinterpret_cast<const u16*>(row + 34 * b);
    float d = half_bits_to_float(blk[0]);
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < 8; i++) {
        u32 lo = blk[1 + 2 * i];
        u32 hi = blk[2 + 2 * i];
        float4 v = load_x4(x, 8 * b + i);
        // int8 q as (q ^ 0x80) - 128: the byte with its sign bit flipped is q + 128.
        s += minus_bias((lo & 0xFF) ^ 0x80, 8388736.0f) * v.x;
        s += minus_bias((lo >> 8) ^ 0x80, 8388736.0f) * v.y;
        s += minus_bias((hi & 0xFF) ^ 0x80, 8388736.0f) * v.z;
        s += minus_bias((hi >> 8) ^ 0x80, 8388736.0f) * v.w;
    }
    return d * s;
}

// Q4_0 block b (18 bytes at 18b, 2-aligned): fp16 d, u8 qs[16]; element j < 16 is the low nibble
// of qs[j], element 16 + j the high one; value d * (q - 8).
template <>
__host__ __device__ __forceinline__ float chunk_dot<W_Q4_0>(const u8* __restrict__ row, int b,
                                                           const float* __restrict__ x) {
    const u16* blk = reinterpret_cast<const u16*>(row + 18 * b);
    float d = half_bits_to_float(blk[0]);
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        u32 q = blk[1 + 2 * i] | ((u32) blk[2 + 2 * i] << 16); // qs[4i .. 4i+3]
        float4 lo = load_x4(x, 8 * b + i);     // elements 4i .. 4i+3
        float4 hi = load_x4(x, 8 * b + 4 + i); // elements 16 + 4i ..
        s += minus_bias(q & 0xF, 8388616.0f) * lo.x;
        s += minus_bias((q >> 8) & 0xF, 8388616.0f) * lo.y;
        s += minus_bias((q >> 16) & 0xF, 8388616.0f) * lo.z;
        s += minus_bias((q >> 24) & 0xF, 8388616.0f) * lo.w;
        s += minus_bias((q >> 4) & 0xF, 8388616.0f) * hi.x;
        s += minus_bias((q >> 12) & 0xF, 8388616.0f) * hi.y;
        s += minus_bias((q >> 20) & 0xF, 8388616.0f) * hi.z;
        s += minus_bias(q >> 28, 8388616.0f) * hi.w;
    }
    return d * s;
}

// Q4_K chunk b: sub-block i = b % 8 of super-block b / 8 (144 bytes, 16-aligned when the row is:
// fp16 d, fp16 dmin, u8 scales[12], u8 qs[128]). Its 32 quants are the low (even i) or high (odd
// i) nibbles of qs[32 (i / 2) .. + 31], at byte 16 + 32 (i / 2): two 16-byte loads.
// Value d * scale(i) * q - dmin * min(i), so the chunk is d scale sum q x - dmin min sum x.
template <>
__host__ __device__ __forceinline__ float chunk_dot<W_Q4_K>(const u8* __restrict__ row, int b,
                                                           const float* __restrict__ x) {
    const u8* blk = row + 144 * (b >> 3);
    int i = b & 7;
    const u16* h = reinterpret_cast<const u16*>(blk);
    float d = half_bits_to_float(h[0]);
    float dmin = half_bits_to_float(h[1]);
    const uint4* qs = reinterpret_cast<const uint4*>(blk + 16 + 32 * (i >> 1));
    int shift = (i & 1) * 4;
    float s = 0.0f;
#pragma unroll
    for (int k = 0; k < 2; k++) {
        uint4 q4 = qs[k];
        u32 words[4] = {q4.x, q4.y, q4.z, q4.w};
#pragma unroll
        for (int w = 0; w < 4; w++) {
            u32 q = words[w] >> shift; // nibble of byte n at bits 8n .. 8n + 3
            float4 v = load_x4(x, 8 * b + 4 * k + w);
            s += minus_bias(q & 0xF, 8388608.0f) * v.x;
            s += minus_bias((q >> 8) & 0xF, 8388608.0f) * v.y;
            s += minus_bias((q >> 16) & 0xF, 8388608.0f) * v.z;
            s += minus_bias((q >> 24) & 0xF, 8388608.0f) * v.w;
        }
    }
    return d * (float) k_scale(blk + 4, i) * s - dmin * (float) k_min(blk + 4, i) * chunk_x_sum(x, b);
}

// Q6_K chunk b: i = b % 8 of super-block b / 8 (210 bytes, 2-aligned: u8 ql[128], u8 qh[64],
// int8 scales[16], fp16 d at 208); half h = i / 4, quarter s = i % 4. The low 4 bits of element j
// are the low (s < 2) or high nibble of ql[64h + 32 (s % 2) + j], the high 2 bits are bits 2s ..
// 2s + 1 of qh[32h + j]; value d * scales[2i + j / 16] * (q - 32).
template <>
__host__ __device__ __forceinline__ float chunk_dot<W_Q6_K>(const u8* __restrict__ row, int b,
                                                           const float* __restrict__ x) {
    const u8* blk = row + 210 * (b >> 3);
    int i = b & 7;
    int h = i >> 2;
    int s = i & 3;
    const u16* ql = reinterpret_cast<const u16*>(blk + 64 * h + 32 * (s & 1));
    const u16* qh = reinterpret_cast<const u16*>(blk + 128 + 32 * h);
    int lshift = s < 2 ? 0 : 4;
    int hshift = 2 * s;
    float half_sums[2];
#pragma unroll
    for (int g = 0; g < 2; g++) {
        float acc = 0.0f;
#pragma unroll
        for (int k = 0; k < 4; k++) {
            u32 l = ql[8 * g + 2 * k] | ((u32) ql[8 * g + 2 * k + 1] << 16); // 4 bytes: elements 16g + 4k ..
            u32 hb = qh[8 * g + 2 * k] | ((u32) qh[8 * g + 2 * k + 1] << 16);
            u32 lo = (l >> lshift) & 0x0F0F0F0Fu;
            u32 hi = (hb >> hshift) & 0x03030303u;
            u32 q = lo | (hi << 4); // 6-bit quants in bytes
            float4 v = load_x4(x, 8 * b + 4 * g + k);
            acc += minus_bias(q & 0xFF, 8388640.0f) * v.x;
            acc += minus_bias((q >> 8) & 0xFF, 8388640.0f) * v.y;
            acc += minus_bias((q >> 16) & 0xFF, 8388640.0f) * v.z;
            acc += minus_bias(q >> 24, 8388640.0f) * v.w;
        }
        half_sums[g] = acc;
    }
    const signed char* sc = reinterpret_cast<const signed char*>(blk + 192 + 2 * i);
    float d = half_bits_to_float(*reinterpret_cast<const u16*>(blk + 208));
    return d * ((float) sc[0] * half_sums[0] + (float) sc[1] * half_sums[1]);
}

// The lane's share of a row: chunks lane, lane + 32, ... (the host check runs this per lane).
template <int T>
__host__ __device__ __forceinline__ float lane_dot(const u8* __restrict__ row, int chunks, int lane,
                                                  const float* __restrict__ x) {
    float s0 = 0.0f;
    float s1 = 0.0f;
    int b = lane;
    for (; b + WARP < chunks; b += 2 * WARP) {
        s0 += chunk_dot<T>(row, b, x);
        s1 += chunk_dot<T>(row, b + WARP, x);
    }
    if (b < chunks) {
        s0 += chunk_dot<T>(row, b, x);
    }
    return s0 + s1;
}

// ---- 8-bit activations (the decode default for Q8_0 and Q4_0 weights) ------------------------
//
// As the CPU's default path and llama.cpp's vec_dot: the activations are quantized once per product
// to Q8_0 blocks (d = fp16(amax / 127), q = rint(x * 127 / amax)), and each block's dot is an
// exact integer sum, times d_w * d_x. Four int8 products per instruction (dp4a) instead of a
// decode, a convert and an fma per element: the float path above is bound by instructions, not
// by memory, at H100/H200 bandwidth. The activation buffer holds, for n = cols / 32 blocks:
//   int8 q[cols] | float d[n] | int s[n]   (s = sum of the block's q, for Q4_0's -8 offset)
// with q at a 16-aligned start and cols % 32 == 0, so the q of block b is two aligned 16-byte loads.

__host__ __device__ __forceinline__ int dot4(int a, int b, int c) {
#ifdef __CUDA_ARCH__
    return __dp4a(a, b, c);
#else
    for (int i = 0; i < 4; i++) {
        c += (int) (signed char) (a >> (8 * i)) * (int) (signed char) (b >> (8 * i));
    }
    return c;
#endif
}

struct Q8Act {
    const int* q; // the int8 quants, four to an int
    const float* d;
    const int* s;
};

__host__ __device__ __forceinline__ Q8Act q8_act(const void* act, int cols) {
    const u8* p = static_cast<const u8*>(act);
    Q8Act a;
    a.q = reinterpret_cast<const int*>(p);
    a.d = reinterpret_cast<const float*>(p + cols);
    a.s = reinterpret_cast<const int*>(p + cols + 4 * (cols / 32));
    return a;
}

template <int T>
__host__ __device__ __forceinline__ float chunk_dot_q8(const u8* __restrict__ row, int b, Q8Act a);

// Q8_0 block b: d_w d_x sum_j qw[j] qx[j]; the weight quants are 2-aligned (34-byte blocks).
template <>
__host__ __device__ __forceinline__ float chunk_dot_q8<W_Q8_0>(const u8* __restrict__ row, int b, Q8Act a) {
    const u16* blk = reinterpret_cast<const u16*>(row + 34 * b);
    const int4* xq = reinterpret_cast<const int4*>(a.q + 8 * b);
    int4 x0 = xq[0];
    int4 x1 = xq[1];
    int xs[8] = {x0.x, x0.y, x0.z, x0.w, x1.x, x1.y, x1.z, x1.w};
    int sumi = 0;
#pragma unroll
    for (int i = 0; i < 8; i++) {
        int w = (int) (blk[1 + 2 * i] | ((u32) blk[2 + 2 * i] << 16));
        sumi = dot4(w, xs[i], sumi);
    }
    return half_bits_to_float(blk[0]) * a.d[b] * (float) sumi;
}

// Q4_0 block b: d_w d_x (sum_j nibble[j] qx[j] - 8 sum_j qx[j]); qs[4i..4i+3] holds elements
// 4i.. in its low nibbles and 16 + 4i.. in its high ones.
template <>
__host__ __device__ __forceinline__ float chunk_dot_q8<W_Q4_0>(const u8* __restrict__ row, int b, Q8Act a) {
    const u16* blk = reinterpret_cast<const u16*>(row + 18 * b);
    const int4* xq = reinterpret_cast<const int4*>(a.q + 8 * b);
    int4 x0 = xq[0];
    int4 x1 = xq[1];
    int lo[4] = {x0.x, x0.y, x0.z, x0.w};
    int hi[4] = {x1.x, x1.y, x1.z, x1.w};
    int sumi = 0;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        u32 w = blk[1 + 2 * i] | ((u32) blk[2 + 2 * i] << 16);
        sumi = dot4((int) (w & 0x0F0F0F0Fu), lo[i], sumi);
        sumi = dot4((int) ((w >> 4) & 0x0F0F0F0Fu), hi[i], sumi);
    }
    return half_bits_to_float(blk[0]) * a.d[b] * (float) (sumi - 8 * a.s[b]);
}

// ---- K-quants with 8-bit activations: llama.cpp's Q8_K (the CPU's default path) --------------
//
// Per 256 elements: iscale = -127 / max (max: the element of largest magnitude, the first of
// equals, with its sign), q = min(127, rint(iscale x)), d = 1 / iscale, as ScalarInt8.quantizeQ8K
// and ggml's quantize_row_q8_K. The activation buffer (Q8Act with d per 256 and s per 32):
//   int8 q[cols] | float d[cols/256] | int s[cols/32]   (s = sum of each 32 quants, for the mins)

__host__ __device__ __forceinline__ Q8Act q8k_act(const void* act, int cols) {
    const u8* p = static_cast<const u8*>(act);
    Q8Act a;
    a.q = reinterpret_cast<const int*>(p);
    a.d = reinterpret_cast<const float*>(p + cols);
    a.s = reinterpret_cast<const int*>(p + cols + 4 * (cols / 256));
    return a;
}

// Whether (a2 at index i2) beats (a1 at i1) as the block's largest magnitude: larger, or equal
// and earlier (the CPU keeps the first of equals).
__host__ __device__ __forceinline__ bool q8k_beats(float a2, int i2, float a1, int i1) {
    return a2 > a1 || (a2 == a1 && i2 < i1);
}

__host__ __device__ __forceinline__ int q8k_quant(float x, float iscale) {
#ifdef __CUDA_ARCH__
    int q = __float2int_rn(__fmul_rn(iscale, x));
#else
    int q = (int) __builtin_rintf(iscale * x);
#endif
    return q < 127 ? q : 127;
}

// Q4_K chunk b (sub-block i = b % 8 of super-block b / 8): d_x (d_w sc_i sum q qx - dmin_w m_i s_x).
template <>
__host__ __device__ __forceinline__ float chunk_dot_q8<W_Q4_K>(const u8* __restrict__ row, int b, Q8Act a) {
    const u8* blk = row + 144 * (b >> 3);
    int i = b & 7;
    const u16* h = reinterpret_cast<const u16*>(blk);
    const uint4* qs = reinterpret_cast<const uint4*>(blk + 16 + 32 * (i >> 1));
    const int4* xq = reinterpret_cast<const int4*>(a.q + 8 * b);
    int shift = (i & 1) * 4;
    int sumi = 0;
#pragma unroll
    for (int k = 0; k < 2; k++) {
        uint4 q4 = qs[k];
        int4 xv = xq[k];
        sumi = dot4((int) ((q4.x >> shift) & 0x0F0F0F0Fu), xv.x, sumi);
        sumi = dot4((int) ((q4.y >> shift) & 0x0F0F0F0Fu), xv.y, sumi);
        sumi = dot4((int) ((q4.z >> shift) & 0x0F0F0F0Fu), xv.z, sumi);
        sumi = dot4((int) ((q4.w >> shift) & 0x0F0F0F0Fu), xv.w, sumi);
    }
    float dx = a.d[b >> 3];
    return dx * (half_bits_to_float(h[0]) * (float) (k_scale(blk + 4, i) * sumi)
                 - half_bits_to_float(h[1]) * (float) (k_min(blk + 4, i) * a.s[b]));
}

// Four 6-bit quants (bytes of 0..63) minus 32, as int8 bytes with no borrow between them: flip
// bit 5 (q >= 32 gives q - 32; q < 32 gives q + 32 with bit 5 set), then copy a set bit 5 into
// bits 6 and 7 (q + 32 + 192 = q - 32 mod 256).
__host__ __device__ __forceinline__ u32 minus32_bytes(u32 q) {
    u32 m = q ^ 0x20202020u;
    u32 neg = m & 0x20202020u;
    return m | (neg << 1) | (neg << 2);
}

// Q6_K chunk b: d_w d_x (sc[2i] sum_{j<16} (q-32) qx + sc[2i+1] sum_{j>=16} (q-32) qx).
template <>
__host__ __device__ __forceinline__ float chunk_dot_q8<W_Q6_K>(const u8* __restrict__ row, int b, Q8Act a) {
    const u8* blk = row + 210 * (b >> 3);
    int i = b & 7;
    int h = i >> 2;
    int s = i & 3;
    const u16* ql = reinterpret_cast<const u16*>(blk + 64 * h + 32 * (s & 1));
    const u16* qh = reinterpret_cast<const u16*>(blk + 128 + 32 * h);
    const int4* xq = reinterpret_cast<const int4*>(a.q + 8 * b);
    int lshift = s < 2 ? 0 : 4;
    int hshift = 2 * s;
    int sums[2];
#pragma unroll
    for (int g = 0; g < 2; g++) {
        int4 xv = xq[g];
        int xs[4] = {xv.x, xv.y, xv.z, xv.w};
        int sumi = 0;
#pragma unroll
        for (int k = 0; k < 4; k++) {
            u32 l = ql[8 * g + 2 * k] | ((u32) ql[8 * g + 2 * k + 1] << 16);
            u32 hb = qh[8 * g + 2 * k] | ((u32) qh[8 * g + 2 * k + 1] << 16);
            u32 q = ((l >> lshift) & 0x0F0F0F0Fu) | (((hb >> hshift) & 0x03030303u) << 4);
            sumi = dot4((int) minus32_bytes(q), xs[k], sumi);
        }
        sums[g] = sumi;
    }
    const signed char* sc = reinterpret_cast<const signed char*>(blk + 192 + 2 * i);
    float d = half_bits_to_float(*reinterpret_cast<const u16*>(blk + 208));
    return d * a.d[b >> 3] * (float) (sc[0] * sums[0] + sc[1] * sums[1]);
}

// The activation layout a type's 8-bit products read: Q8_K for the K-quants, else Q8_0.
template <int T>
__host__ __device__ __forceinline__ Q8Act act_for(const void* act, int cols) {
    if constexpr (T == W_Q4_K || T == W_Q6_K) {
        return q8k_act(act, cols);
    } else {
        return q8_act(act, cols);
    }
}

template <int T>
__host__ __device__ __forceinline__ float lane_dot_q8(const u8* __restrict__ row, int chunks, int lane, Q8Act a) {
    float s0 = 0.0f;
    float s1 = 0.0f;
    int b = lane;
    for (; b + WARP < chunks; b += 2 * WARP) {
        s0 += chunk_dot_q8<T>(row, b, a);
        s1 += chunk_dot_q8<T>(row, b + WARP, a);
    }
    if (b < chunks) {
        s0 += chunk_dot_q8<T>(row, b, a);
    }
    return s0 + s1;
}

// Lane j's part of quantizing block b of x (its element j), given the block's amax: returns q and
// sets d. CPU: Q8Activations.quantizeQ8_0, llama.cpp's AVX2 quantize_row_q8_0.
__host__ __device__ __forceinline__ int q8_quant(float x, float amax, float* d) {
#ifdef __CUDA_ARCH__
    *d = round_half(amax / 127.0f);
    float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    return __float2int_rn(__fmul_rn(x, id));
#else
    *d = half_bits_to_float(host_float_to_half(amax / 127.0f));
    float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    return (int) __builtin_rintf(x * id);
#endif
}

// Lane j's element v of block b of token t (of n) quantized into the activation layout (below):
// the warp's amax, the quant, the block's sum of quants. All 32 lanes call it together.
__device__ __forceinline__ void q8_store(float v, int lane, u8* __restrict__ act, long long t, long long n, int cols,
                                         int b) {
    float amax = fabsf(v);
    for (int o = WARP / 2; o > 0; o >>= 1) {
        amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    }
    float d;
    int q = q8_quant(v, amax, &d);
    int sum = q;
    for (int o = WARP / 2; o > 0; o >>= 1) {
        sum += __shfl_xor_sync(0xffffffffu, sum, o);
    }
    int nb = cols / 32;
    act[t * cols + 32 * b + lane] = (u8) (signed char) q;
    if (lane == 0) {
        reinterpret_cast<float*>(act + n * cols)[t * nb + b] = d;
        reinterpret_cast<int*>(act + n * cols + 4 * n * nb)[t * nb + b] = sum;
    }
}

// Quantizes x[cols] into the activation layout above. One warp per block of 32, MV_WARPS a block.
// For a prompt, grid y = the number of tokens n (token t's x at t * cols), and the layout is the
// same with every part n times as long, token-major: q[n][cols] | d[n][cols/32] | s[n][cols/32]
// (for n = 1, exactly the one-token layout).
extern "C" __global__ void __launch_bounds__(MV_WARPS * WARP)
quantize_q8(const float* __restrict__ x, int cols, u8* __restrict__ act) {
    int b = blockIdx.x * MV_WARPS + threadIdx.x / WARP;
    if (b >= cols / 32) {
        return;
    }
    long long t = blockIdx.y;
    int lane = threadIdx.x % WARP;
    q8_store(x[t * cols + 32 * b + lane], lane, act, t, gridDim.y, cols, b);
}

// Quantizes x[cols] (cols % 256 == 0) into the Q8_K activation layout above. One warp per 256
// elements, lane l holding elements 8l .. 8l + 7; MV_WARPS warps a block. For a prompt, grid y =
// the number of tokens n, and every part is n times as long, token-major:
// q[n][cols] | d[n][cols/256] | s[n][cols/32].
extern "C" __global__ void __launch_bounds__(MV_WARPS * WARP)
quantize_q8k(const float* __restrict__ x, int cols, u8* __restrict__ act) {
    int b = blockIdx.x * MV_WARPS + threadIdx.x / WARP;
    if (b >= cols / 256) {
        return;
    }
    long long t = blockIdx.y;
    long long n = gridDim.y;
    int lane = threadIdx.x % WARP;
    const float* xb = x + t * cols + 256 * b + 8 * lane;
    float v[8];
    float amax = -1.0f;
    float max = 0.0f;
    int at = 0;
    for (int j = 0; j < 8; j++) {
        v[j] = xb[j];
        if (fabsf(v[j]) > amax) {
            amax = fabsf(v[j]);
            max = v[j];
            at = 8 * lane + j;
        }
    }
    for (int o = WARP / 2; o > 0; o >>= 1) {
        float a2 = __shfl_xor_sync(0xffffffffu, amax, o);
        float m2 = __shfl_xor_sync(0xffffffffu, max, o);
        int i2 = __shfl_xor_sync(0xffffffffu, at, o);
        if (q8k_beats(a2, i2, amax, at)) {
            amax = a2;
            max = m2;
            at = i2;
        }
    }
    float iscale = amax != 0.0f ? __fdiv_rn(-127.0f, max) : 0.0f;
    int sum = 0;
    u8* q = act + t * cols + 256 * b + 8 * lane;
    for (int j = 0; j < 8; j++) {
        int qj = amax != 0.0f ? q8k_quant(v[j], iscale) : 0;
        q[j] = (u8) (signed char) qj;
        sum += qj;
    }
    // lanes 4k .. 4k + 3 hold the 32 elements of chunk 8b + k
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    if ((lane & 3) == 0) {
        reinterpret_cast<int*>(act + n * cols + 4 * n * (cols / 256))[t * (cols / 32) + 8 * b + lane / 4] = sum;
    }
    if (lane == 0) {
        reinterpret_cast<float*>(act + n * cols)[t * (cols / 256) + b] = amax != 0.0f ? __fdiv_rn(1.0f, iscale) : 0.0f;
    }
}

// ---- prompts on the tensor cores: Q8_0 / Q4_0 weights times 8-bit activations ---------------
//
// out[t][r] = sum_b d_w[r][b] d_x[t][b] sum_{j<32} qw[r][32b+j] qx[t][32b+j], the 8-bit product of
// the decode kernels above (and of the CPU), for many tokens at once: the integer block sums come
// from mma.sync m16n8k32 (s8 x s8 -> s32), whose k of 32 is exactly one Q8_0 block, so each mma
// gives 16 rows x 8 tokens of exact block sums, scaled into float accumulators at once. For Q4_0
// the nibbles (0..15) go in unsigned and the -8 comes back as -8 * s_x per block.
//
// Fragments (PTX ISA, mma.m16n8k32 .s8; g = lane / 4, i = lane % 4): A (16 rows x 32 k, row-major)
// a0 = row g, k 4i..4i+3; a1 = row g+8, same k; a2 = row g, k 16+4i..; a3 = row g+8, k 16+4i..
// B (32 k x 8 tokens) b0 = token g, k 4i..4i+3; b1 = token g, k 16+4i.. .  C (16 x 8, s32)
// c0, c1 = row g, tokens 2i, 2i+1; c2, c3 = row g+8, tokens 2i, 2i+1. So each lane reads its
// fragments straight from the block layouts: 4 bytes of a row's quants, 4 bytes of a token's.
//
// A block is MMQ_WARPS warps, 2 x 2 over a tile of 64 rows x 64 tokens; a warp takes 32 rows (two
// A fragments) x 32 tokens (four B fragments): 8 mma and 32 scaled adds per 32 columns. Fragments
// are loaded from global memory directly (the four warps share rows and tokens through L1);
// staging through shared memory, and ldmatrix, are for after a first measurement.
// Grid: x = ceil(n_tokens / 64), y = ceil(rows / 64). Block: MMQ_WARPS * 32. Needs cols % 32 == 0.
//
// The lane functions are __host__ __device__ so that matvec_host_check.cu can run them with an
// emulated mma (from the fragment layout above) against the CPU reference.

#define MMQ_WARPS 4
#define MMQ_TILE 64

__host__ __device__ __forceinline__ u32 load_u32_2aligned(const u8* p) {
    const u16* h = reinterpret_cast<const u16*>(p);
    return (u32) h[0] | ((u32) h[1] << 16);
}

// One lane's view of its warp's tile: four weight rows (g, g+8, g+16, g+24 from the warp's first
// row), four tokens' quants (g, g+8, g+16, g+24 from the warp's first token) for B, and the eight
// tokens whose C columns it holds (8j + 2i and 8j + 2i + 1). Rows and tokens past the end are
// clamped to the last one, so every load is in bounds; their results are not stored.
struct MmqLane {
    const u8* wrow[4];
    const int* xq[4];
    int tok[4][2];
};

__host__ __device__ __forceinline__ MmqLane mmq_lane(const u8* w, long long row_bytes, int rows, int cols,
                                                     const u8* act, int n, int r0, int t0, int lane) {
    MmqLane l;
    int g = lane >> 2;
    int i = lane & 3;
    for (int k = 0; k < 4; k++) {
        int r = r0 + 8 * k + g;
        l.wrow[k] = w + (long long) (r < rows ? r : rows - 1) * row_bytes;
        int t = t0 + 8 * k + g;
        l.xq[k] = reinterpret_cast<const int*>(act + (long long) (t < n ? t : n - 1) * cols);
        int c = t0 + 8 * k + 2 * i;
        l.tok[k][0] = c < n ? c : n - 1;
        l.tok[k][1] = c + 1 < n ? c + 1 : n - 1;
    }
    return l;
}

template <int T>
__host__ __device__ __forceinline__ void mmq_a(const u8* lo, const u8* hi, int b, int i, int a[4]);

// Q8_0 block b at 34 b: fp16 d, then 32 int8 quants (2-aligned).
template <>
__host__ __device__ __forceinline__ void mmq_a<W_Q8_0>(const u8* lo, const u8* hi, int b, int i, int a[4]) {
    const u8* q0 = lo + 34 * b + 2 + 4 * i;
    const u8* q1 = hi + 34 * b + 2 + 4 * i;
    a[0] = (int) load_u32_2aligned(q0);
    a[1] = (int) load_u32_2aligned(q1);
    a[2] = (int) load_u32_2aligned(q0 + 16);
    a[3] = (int) load_u32_2aligned(q1 + 16);
}

// Q4_0 block b at 18 b: fp16 d, then qs[16], element j in qs[j]'s low nibble, 16 + j in its high one.
template <>
__host__ __device__ __forceinline__ void mmq_a<W_Q4_0>(const u8* lo, const u8* hi, int b, int i, int a[4]) {
    u32 w0 = load_u32_2aligned(lo + 18 * b + 2 + 4 * i);
    u32 w1 = load_u32_2aligned(hi + 18 * b + 2 + 4 * i);
    a[0] = (int) (w0 & 0x0F0F0F0Fu);
    a[1] = (int) (w1 & 0x0F0F0F0Fu);
    a[2] = (int) ((w0 >> 4) & 0x0F0F0F0Fu);
    a[3] = (int) ((w1 >> 4) & 0x0F0F0F0Fu);
}

template <int T>
__host__ __device__ __forceinline__ float mmq_scale(const u8* row, int b) {
    const int bytes = T == W_Q8_0 ? 34 : 18;
    return half_bits_to_float(*reinterpret_cast<const u16*>(row + bytes * b));
}

// acc (this lane's four C elements) += d_w d_x (c - 8 s_x for Q4_0).
template <int T>
__host__ __device__ __forceinline__ void mmq_add(float acc[4], const int c[4], float dw_lo, float dw_hi, float dx0,
                                                 float dx1, int sx0, int sx1) {
    int o0 = T == W_Q4_0 ? 8 * sx0 : 0;
    int o1 = T == W_Q4_0 ? 8 * sx1 : 0;
    acc[0] += dw_lo * dx0 * (float) (c[0] - o0);
    acc[1] += dw_lo * dx1 * (float) (c[1] - o1);
    acc[2] += dw_hi * dx0 * (float) (c[2] - o0);
    acc[3] += dw_hi * dx1 * (float) (c[3] - o1);
}

template <typename V>
__host__ __device__ __forceinline__ V load_ro(const V* p) {
#ifdef __CUDA_ARCH__
    return __ldg(p);
#else
    return *p;
#endif
}

// What a lane loads for the 32 columns of block b: its A fragments (rows g, g+8 and g+16, g+24),
// their scales, its B fragments of the four token groups, and the scales (and, for Q4_0, the
// quant sums) of the tokens of its C elements.
struct MmqStep {
    int a[2][4];
    float dw[4];
    int bf[4][2];
    float dx[4][2];
    int sx[4][2];
};

template <int T>
__host__ __device__ __forceinline__ void mmq_load(const MmqLane& l, const float* xd, const int* xs, int nb, int b, int i,
                                                  MmqStep& st) {
    mmq_a<T>(l.wrow[0], l.wrow[1], b, i, st.a[0]);
    mmq_a<T>(l.wrow[2], l.wrow[3], b, i, st.a[1]);
    for (int k = 0; k < 4; k++) {
        st.dw[k] = mmq_scale<T>(l.wrow[k], b);
        st.bf[k][0] = load_ro(l.xq[k] + 8 * b + i);
        st.bf[k][1] = load_ro(l.xq[k] + 8 * b + 4 + i);
        for (int e = 0; e < 2; e++) {
            st.dx[k][e] = load_ro(xd + (long long) l.tok[k][e] * nb + b);
            st.sx[k][e] = T == W_Q4_0 ? load_ro(xs + (long long) l.tok[k][e] * nb + b) : 0;
        }
    }
}

// Stores this lane's elements of A fragment f (rows r0 + 16 f + g, + 8) x B fragment j.
__host__ __device__ __forceinline__ void mmq_store(float* out, int rows, int n, int r0, int t0, int lane, int f, int j,
                                                   const float acc[4]) {
    int r = r0 + 16 * f + (lane >> 2);
    int t = t0 + 8 * j + 2 * (lane & 3);
    if (r < rows && t < n) out[(long long) t * rows + r] = acc[0];
    if (r < rows && t + 1 < n) out[(long long) (t + 1) * rows + r] = acc[1];
    if (r + 8 < rows && t < n) out[(long long) t * rows + r + 8] = acc[2];
    if (r + 8 < rows && t + 1 < n) out[(long long) (t + 1) * rows + r + 8] = acc[3];
}

__device__ __forceinline__ void mma_s8(int c[4], const int a[4], const int b[2]) {
    asm("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};"
        : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// ---- prompts of K-quants on the tensor cores: Q4_K / Q6_K weights, Q8_K activations ---------
//
// As mmq_* above, over 32-element sub-blocks (chunk b: sub-block b % 8 of super-block b / 8),
// with the Q8_K activations of quantize_q8k (d_x per 256, s_x per 32). Q4_K: one m16n8k32 per
// chunk gives sum q qx, and acc += d_x (d_w sc_j C - dmin_w m_j s_x). Q6_K scales each 16
// elements on its own, so the chunk is two m16n8k16 (the k32 fragments' halves: a0 a1 | a2 a3,
// b0 | b1), combined in integers: acc += d_w d_x (sc_2j C_lo + sc_2j+1 C_hi). Same tiles and
// grid as mmq_*; needs cols % 256 == 0.

struct MmqKStep {
    int a[2][4];
    float ds[4];  // per row (g, g+8, g+16, g+24): Q4_K d_w sc_j; Q6_K d_w
    float dm[4];  // Q4_K dmin_w m_j
    int sc[4][2]; // Q6_K sc_2j, sc_2j+1
    int bf[4][2];
    float dx[4][2];
    int sx[4][2];
};

template <int T>
__host__ __device__ __forceinline__ void mmqk_row(const u8* row, int b, int i, int a_lo[2], float* ds, float* dm,
                                                  int sc[2]);

// Q4_K: the sub-block's nibbles at qs[32 (j / 2) ..], low for even j; 4-aligned (144-byte blocks).
template <>
__host__ __device__ __forceinline__ void mmqk_row<W_Q4_K>(const u8* row, int b, int i, int a[2], float* ds, float* dm,
                                                          int sc[2]) {
    const u8* blk = row + 144 * (b >> 3);
    int j = b & 7;
    const u8* qs = blk + 16 + 32 * (j >> 1) + 4 * i;
    int shift = (j & 1) * 4;
    a[0] = (int) ((*reinterpret_cast<const u32*>(qs) >> shift) & 0x0F0F0F0Fu);
    a[1] = (int) ((*reinterpret_cast<const u32*>(qs + 16) >> shift) & 0x0F0F0F0Fu);
    const u16* h = reinterpret_cast<const u16*>(blk);
    *ds = half_bits_to_float(h[0]) * (float) k_scale(blk + 4, j);
    *dm = half_bits_to_float(h[1]) * (float) k_min(blk + 4, j);
    sc[0] = sc[1] = 0;
}

// Q6_K: low 4 bits from ql[64h + 32 (s % 2) ..], high 2 from qh[32h ..] (h = j / 4, s = j % 4),
// minus 32; 2-aligned (210-byte blocks).
template <>
__host__ __device__ __forceinline__ void mmqk_row<W_Q6_K>(const u8* row, int b, int i, int a[2], float* ds, float* dm,
                                                          int sc[2]) {
    const u8* blk = row + 210 * (b >> 3);
    int j = b & 7;
    int h = j >> 2;
    int s = j & 3;
    const u8* ql = blk + 64 * h + 32 * (s & 1) + 4 * i;
    const u8* qh = blk + 128 + 32 * h + 4 * i;
    int lshift = s < 2 ? 0 : 4;
    for (int half = 0; half < 2; half++) {
        u32 l = load_u32_2aligned(ql + 16 * half);
        u32 hb = load_u32_2aligned(qh + 16 * half);
        a[half] = (int) minus32_bytes(((l >> lshift) & 0x0F0F0F0Fu) | (((hb >> (2 * s)) & 0x03030303u) << 4));
    }
    *ds = half_bits_to_float(*reinterpret_cast<const u16*>(blk + 208));
    *dm = 0.0f;
    const signed char* scales = reinterpret_cast<const signed char*>(blk + 192 + 2 * j);
    sc[0] = scales[0];
    sc[1] = scales[1];
}

template <int T>
__host__ __device__ __forceinline__ void mmqk_load(const MmqLane& l, const float* xd, const int* xs, int nb, int b,
                                                   int i, MmqKStep& st) {
    for (int k = 0; k < 4; k++) {
        int a[2];
        mmqk_row<T>(l.wrow[k], b, i, a, &st.ds[k], &st.dm[k], st.sc[k]);
        // rows g + 8k: fragment k / 2, its low (k even) or high rows; a[0] k 4i.., a[1] k 16+4i..
        st.a[k >> 1][(k & 1) + 0] = a[0];
        st.a[k >> 1][(k & 1) + 2] = a[1];
        st.bf[k][0] = load_ro(l.xq[k] + 8 * b + i);
        st.bf[k][1] = load_ro(l.xq[k] + 8 * b + 4 + i);
        for (int e = 0; e < 2; e++) {
            st.dx[k][e] = load_ro(xd + (long long) l.tok[k][e] * (nb / 8) + (b >> 3));
            st.sx[k][e] = load_ro(xs + (long long) l.tok[k][e] * nb + b);
        }
    }
}

// acc += the chunk's part for A fragment f and token group j, from c32 (Q4_K: the k32 mma) or
// c_lo, c_hi (Q6_K: the two k16 mma).
template <int T>
__host__ __device__ __forceinline__ void mmqk_add(float acc[4], const int c_lo[4], const int c_hi[4],
                                                  const MmqKStep& st, int f, int j) {
    int r[4] = {2 * f, 2 * f, 2 * f + 1, 2 * f + 1}; // C rows g, g, g+8, g+8
    int t[4] = {0, 1, 0, 1};                        // C tokens 2i, 2i+1
    for (int e = 0; e < 4; e++) {
        if constexpr (T == W_Q4_K) {
            acc[e] += st.dx[j][t[e]] * (st.ds[r[e]] * (float) c_lo[e] - st.dm[r[e]] * (float) st.sx[j][t[e]]);
        } else {
            acc[e] += st.ds[r[e]] * st.dx[j][t[e]] * (float) (st.sc[r[e]][0] * c_lo[e] + st.sc[r[e]][1] * c_hi[e]);
        }
    }
}

__device__ __forceinline__ void mma_s8_k16(int c[4], int a0, int a1, int b) {
    asm("mma.sync.aligned.m16n8k16.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5}, {%6}, {%0, %1, %2, %3};"
        : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
        : "r"(a0), "r"(a1), "r"(b));
}

// The body of every mmq_* kernel: the tile set-up and stores are shared, the 32 columns of a step
// are the type's (Q8_0/Q4_0 blocks: mmq_load, one k32 mma, mmq_add; K-quant sub-blocks:
// mmqk_load, one k32 mma for Q4_K or two k16 for Q6_K, mmqk_add).
template <int T>
__device__ void mmq_body(const u8* __restrict__ w, long long row_bytes, int rows, int cols,
                         const u8* __restrict__ act, float* __restrict__ out, int n) {
    constexpr bool K = T == W_Q4_K || T == W_Q6_K;
    int warp = threadIdx.x / WARP;
    int lane = threadIdx.x % WARP;
    // Token tiles along x, the fastest-moving block index: the blocks that read one tile of weights
    // run side by side, so the matrix comes from DRAM about once and from L2 for the other tiles.
    int r0 = blockIdx.y * MMQ_TILE + (warp & 1) * 32;
    int t0 = blockIdx.x * MMQ_TILE + (warp >> 1) * 32;
    if (r0 >= rows || t0 >= n) {
        return; // a whole warp: mma.sync needs all 32 lanes, and they leave together
    }
    int nb = cols / 32;
    // d_x per block (Q8_0) or per 256 (Q8_K), then s_x per 32
    const float* xd = reinterpret_cast<const float*>(act + (long long) n * cols);
    const int* xs = reinterpret_cast<const int*>(act + (long long) n * cols + 4LL * n * (K ? cols / 256 : nb));
    MmqLane l = mmq_lane(w, row_bytes, rows, cols, act, n, r0, t0, lane);
    int i = lane & 3;
    float acc[2][4][4];
#pragma unroll
    for (int f = 0; f < 2; f++) {
#pragma unroll
        for (int j = 0; j < 4; j++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                acc[f][j][e] = 0.0f;
            }
        }
    }
    for (int b = 0; b < nb; b++) {
        if constexpr (K) {
            MmqKStep st;
            mmqk_load<T>(l, xd, xs, nb, b, i, st);
#pragma unroll
            for (int j = 0; j < 4; j++) {
#pragma unroll
                for (int f = 0; f < 2; f++) {
                    int lo[4] = {0, 0, 0, 0};
                    int hi[4] = {0, 0, 0, 0};
                    if constexpr (T == W_Q4_K) {
                        mma_s8(lo, st.a[f], st.bf[j]);
                    } else {
                        mma_s8_k16(lo, st.a[f][0], st.a[f][1], st.bf[j][0]);
                        mma_s8_k16(hi, st.a[f][2], st.a[f][3], st.bf[j][1]);
                    }
                    mmqk_add<T>(acc[f][j], lo, hi, st, f, j);
                }
            }
        } else {
            MmqStep st;
            mmq_load<T>(l, xd, xs, nb, b, i, st);
#pragma unroll
            for (int j = 0; j < 4; j++) {
#pragma unroll
                for (int f = 0; f < 2; f++) {
                    int c[4] = {0, 0, 0, 0};
                    mma_s8(c, st.a[f], st.bf[j]);
                    mmq_add<T>(acc[f][j], c, st.dw[2 * f], st.dw[2 * f + 1], st.dx[j][0], st.dx[j][1],
                               st.sx[j][0], st.sx[j][1]);
                }
            }
        }
    }
#pragma unroll
    for (int f = 0; f < 2; f++) {
#pragma unroll
        for (int j = 0; j < 4; j++) {
            mmq_store(out, rows, n, r0, t0, lane, f, j, acc[f][j]);
        }
    }
}

// act: the n-token activation buffer of quantize_q8 (Q8_0, Q4_0) or quantize_q8k (Q4_K, Q6_K),
// grid y = n.
#define DEFINE_MMQ(name, T)                                                                            \
    extern "C" __global__ void __launch_bounds__(MMQ_WARPS * WARP)                                     \
    name(const u8* w, long long row_bytes, int rows, int cols, const u8* act, float* out, int n) {     \
        mmq_body<T>(w, row_bytes, rows, cols, act, out, n);                                            \
    }

DEFINE_MMQ(mmq_q8_0, W_Q8_0)
DEFINE_MMQ(mmq_q4_0, W_Q4_0)
DEFINE_MMQ(mmq_q4_k, W_Q4_K)
DEFINE_MMQ(mmq_q6_k, W_Q6_K)

// The lane's share of a row through either path: Q8 takes the activation buffer in x's place.
template <int T, bool Q8>
__device__ __forceinline__ float lane_share(const u8* __restrict__ row, int cols, int lane, const float* __restrict__ x) {
    if constexpr (Q8) {
        return lane_dot_q8<T>(row, cols / 32, lane, act_for<T>(x, cols));
    } else {
        return lane_dot<T>(row, cols / 32, lane, x);
    }
}

template <int T, bool Q8>
__device__ void matvec_body(const u8* __restrict__ w, long long row_bytes, int rows, int cols,
                            const float* __restrict__ x, float* __restrict__ out, int add) {
    int r = blockIdx.x * MV_WARPS + threadIdx.x / WARP;
    if (r >= rows) {
        return;
    }
    int lane = threadIdx.x % WARP;
    float s = warp_sum(lane_share<T, Q8>(w + (long long) r * row_bytes, cols, lane, x));
    if (lane == 0) {
        out[r] = add ? out[r] + s : s; // add: the residual stream, y += W x, as matmul then add
    }
}

// x is the float activations, or for the *_q8 kernels the activation buffer quantize_q8 wrote.
// add != 0 adds the product to out instead of storing it.
#define DEFINE_MATVEC(name, T, Q8)                                                                     \
    extern "C" __global__ void __launch_bounds__(MV_WARPS * WARP)                                      \
    name(const u8* w, long long row_bytes, int rows, int cols, const float* x, float* out, int add) {  \
        matvec_body<T, Q8>(w, row_bytes, rows, cols, x, out, add);                                     \
    }

DEFINE_MATVEC(matvec_q8_0, W_Q8_0, false)
DEFINE_MATVEC(matvec_q4_0, W_Q4_0, false)
DEFINE_MATVEC(matvec_q4_k, W_Q4_K, false)
DEFINE_MATVEC(matvec_q6_k, W_Q6_K, false)
DEFINE_MATVEC(matvec_q8_0_q8, W_Q8_0, true)
DEFINE_MATVEC(matvec_q4_0_q8, W_Q4_0, true)
DEFINE_MATVEC(matvec_q4_k_q8, W_Q4_K, true)
DEFINE_MATVEC(matvec_q6_k_q8, W_Q6_K, true)

// A few tokens at once (2 to MMV_MAX_TOKENS: sequences decoded together), 8-bit activations:
// warp r takes row r for every token, each exactly as the one-token kernel would (the same lanes,
// the same sums: token t's output is the one matvec_*_q8 gives it alone, to the bit), the row
// coming from L1 for the tokens after the first. The tensor-core mmq_* tiles of 64 tokens would
// leave most of their warps idle for so few and spread the matrix over too few blocks to stream
// it at full bandwidth. act: the n-token layout of quantize_q8 / quantize_q8k (grid y = n).
// Grid: x = ceil(rows / MV_WARPS). Block: MV_WARPS * 32.
#define MMV_MAX_TOKENS 8

// Token t's part of the n-token activation layout, as the one-token functions read it.
template <int T>
__host__ __device__ __forceinline__ Q8Act act_token(const void* act, int cols, int n, int t) {
    constexpr bool K = T == W_Q4_K || T == W_Q6_K;
    const u8* p = static_cast<const u8*>(act);
    int nd = K ? cols / 256 : cols / 32;  // scales a token
    int nb = cols / 32;                   // quant sums a token
    Q8Act a;
    a.q = reinterpret_cast<const int*>(p + (long long) t * cols);
    a.d = reinterpret_cast<const float*>(p + (long long) n * cols) + (long long) t * nd;
    a.s = reinterpret_cast<const int*>(p + (long long) n * cols + 4LL * n * nd) + (long long) t * nb;
    return a;
}

template <int T>
__device__ void mmv_body(const u8* __restrict__ w, long long row_bytes, int rows, int cols, const u8* __restrict__ act,
                         float* __restrict__ out, int n) {
    int r = blockIdx.x * MV_WARPS + threadIdx.x / WARP;
    if (r >= rows) {
        return;
    }
    int lane = threadIdx.x % WARP;
    const u8* row = w + (long long) r * row_bytes;
    for (int t = 0; t < n; t++) {
        float s = warp_sum(lane_dot_q8<T>(row, cols / 32, lane, act_token<T>(act, cols, n, t)));
        if (lane == 0) {
            out[(long long) t * rows + r] = s;
        }
    }
}

// (4 blocks an SM: ptxas may take up to 64 registers, which mmv_q4_0 needs not to spill)
#define DEFINE_MMV(name, T)                                                                            \
    extern "C" __global__ void __launch_bounds__(MV_WARPS * WARP, 4)                                   \
    name(const u8* w, long long row_bytes, int rows, int cols, const u8* act, float* out, int n) {     \
        mmv_body<T>(w, row_bytes, rows, cols, act, out, n);                                            \
    }

DEFINE_MMV(mmv_q8_0, W_Q8_0)
DEFINE_MMV(mmv_q4_0, W_Q4_0)
DEFINE_MMV(mmv_q4_k, W_Q4_K)
DEFINE_MMV(mmv_q6_k, W_Q6_K)

// The three projections of attention (q, k, v: same type and width) in one launch: the grid's
// warps run down the rows of the three matrices in turn. One launch instead of three per layer.
// Grid: x = ceil((rows0 + rows1 + rows2) / MV_WARPS). Block: MV_WARPS * 32.
template <int T, bool Q8>
__device__ void matvec3_body(const u8* __restrict__ w0, const u8* __restrict__ w1, const u8* __restrict__ w2,
                             long long row_bytes, int rows0, int rows1, int rows2, int cols,
                             const float* __restrict__ x, float* __restrict__ out0, float* __restrict__ out1,
                             float* __restrict__ out2) {
    int r = blockIdx.x * MV_WARPS + threadIdx.x / WARP;
    const u8* w;
    float* out;
    if (r < rows0) {
        w = w0;
        out = out0;
    } else if ((r -= rows0) < rows1) {
        w = w1;
        out = out1;
    } else if ((r -= rows1) < rows2) {
        w = w2;
        out = out2;
    } else {
        return;
    }
    int lane = threadIdx.x % WARP;
    float s = warp_sum(lane_share<T, Q8>(w + (long long) r * row_bytes, cols, lane, x));
    if (lane == 0) {
        out[r] = s;
    }
}

#define DEFINE_MATVEC3(name, T, Q8)                                                                        \
    extern "C" __global__ void __launch_bounds__(MV_WARPS * WARP)                                      \
    name(const u8* w0, const u8* w1, const u8* w2, long long row_bytes, int rows0, int rows1, int rows2, \
         int cols, const float* x, float* out0, float* out1, float* out2) {                           \
        matvec3_body<T, Q8>(w0, w1, w2, row_bytes, rows0, rows1, rows2, cols, x, out0, out1, out2);    \
    }

DEFINE_MATVEC3(matvec3_q8_0, W_Q8_0, false)
DEFINE_MATVEC3(matvec3_q4_0, W_Q4_0, false)
DEFINE_MATVEC3(matvec3_q4_k, W_Q4_K, false)
DEFINE_MATVEC3(matvec3_q6_k, W_Q6_K, false)
DEFINE_MATVEC3(matvec3_q8_0_q8, W_Q8_0, true)
DEFINE_MATVEC3(matvec3_q4_0_q8, W_Q4_0, true)
DEFINE_MATVEC3(matvec3_q4_k_q8, W_Q4_K, true)
DEFINE_MATVEC3(matvec3_q6_k_q8, W_Q6_K, true)

// silu(g) = g / (1 + e^-g), the exponential in double rounded to float, as the CPU.
__device__ __forceinline__ float silu(float g) {
    return g / (1.0f + (float) exp(-(double) g));
}

// The feed-forward's gate and up products and SwiGLU in one launch: out[r] = silu(gate_r . x) *
// (up_r . x), one warp per r (both rows). Grid: x = ceil(rows / MV_WARPS). Block: MV_WARPS * 32.
template <int T, bool Q8>
__device__ void matvec_swiglu_body(const u8* __restrict__ gate, const u8* __restrict__ up, long long row_bytes,
                                   int rows, int cols, const float* __restrict__ x, float* __restrict__ out) {
    int r = blockIdx.x * MV_WARPS + threadIdx.x / WARP;
    if (r >= rows) {
        return;
    }
    int lane = threadIdx.x % WARP;
    long long off = (long long) r * row_bytes;
    float g = warp_sum(lane_share<T, Q8>(gate + off, cols, lane, x));
    float u = warp_sum(lane_share<T, Q8>(up + off, cols, lane, x));
    if (lane == 0) {
        out[r] = silu(g) * u;
    }
}

#define DEFINE_MATVEC_SWIGLU(name, T, Q8)                                                                  \
    extern "C" __global__ void __launch_bounds__(MV_WARPS * WARP)                                      \
    name(const u8* gate, const u8* up, long long row_bytes, int rows, int cols, const float* x, float* out) { \
        matvec_swiglu_body<T, Q8>(gate, up, row_bytes, rows, cols, x, out);                            \
    }

DEFINE_MATVEC_SWIGLU(matvec_swiglu_q8_0, W_Q8_0, false)
DEFINE_MATVEC_SWIGLU(matvec_swiglu_q4_0, W_Q4_0, false)
DEFINE_MATVEC_SWIGLU(matvec_swiglu_q4_k, W_Q4_K, false)
DEFINE_MATVEC_SWIGLU(matvec_swiglu_q6_k, W_Q6_K, false)
DEFINE_MATVEC_SWIGLU(matvec_swiglu_q8_0_q8, W_Q8_0, true)
DEFINE_MATVEC_SWIGLU(matvec_swiglu_q4_0_q8, W_Q4_0, true)
DEFINE_MATVEC_SWIGLU(matvec_swiglu_q4_k_q8, W_Q4_K, true)
DEFINE_MATVEC_SWIGLU(matvec_swiglu_q6_k_q8, W_Q6_K, true)

// ---------------------------------------------------------------------------------------------
// Embedding: out[t][c] = W[tokens[t]][c], dequantized. Grid: x = ceil(cols / 256), y = n.

template <int T>
__device__ void embed_body(const u8* __restrict__ w, long long row_bytes, int cols, const int* __restrict__ tokens,
                           float* __restrict__ out) {
    int t = blockIdx.y;
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= cols) {
        return;
    }
    const u8* row = w + (long long) tokens[t] * row_bytes;
    out[(long long) t * cols + c] = weight_at<T>(row, c / 32, c % 32);
}

#define DEFINE_EMBED(name, T)                                                                          \
    extern "C" __global__ void name(const u8* w, long long row_bytes, int cols, const int* tokens, float* out) { \
        embed_body<T>(w, row_bytes, cols, tokens, out);                                                \
    }

DEFINE_EMBED(embed_f32, W_F32)
DEFINE_EMBED(embed_f16, W_F16)
DEFINE_EMBED(embed_bf16, W_BF16)
DEFINE_EMBED(embed_q8_0, W_Q8_0)
DEFINE_EMBED(embed_q4_0, W_Q4_0)
DEFINE_EMBED(embed_q4_k, W_Q4_K)
DEFINE_EMBED(embed_q5_k, W_Q5_K)
DEFINE_EMBED(embed_q6_k, W_Q6_K)
DEFINE_EMBED(embed_q3_k, W_Q3_K)
DEFINE_EMBED(embed_q2_k, W_Q2_K)

// ---------------------------------------------------------------------------------------------
// Block reductions (blockDim.x a multiple of 32, at most 1024).

__device__ double block_sum_double(double v, double* shared) {
    for (int o = WARP / 2; o > 0; o >>= 1) {
        v += __shfl_xor_sync(0xffffffffu, v, o);
    }
    int warp = threadIdx.x / WARP;
    int lane = threadIdx.x % WARP;
    __syncthreads();
    if (lane == 0) {
        shared[warp] = v;
    }
    __syncthreads();
    double s = 0.0;
    int warps = blockDim.x / WARP;
    for (int i = 0; i < warps; i++) {
        s += shared[i];
    }
    return s;
}

__device__ float block_max(float v, float* shared) {
    for (int o = WARP / 2; o > 0; o >>= 1) {
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    }
    int warp = threadIdx.x / WARP;
    int lane = threadIdx.x % WARP;
    __syncthreads();
    if (lane == 0) {
        shared[warp] = v;
    }
    __syncthreads();
    float m = NEG_INF;
    int warps = blockDim.x / WARP;
    for (int i = 0; i < warps; i++) {
        m = fmaxf(m, shared[i]);
    }
    return m;
}

// ---------------------------------------------------------------------------------------------
// RMSNorm: out[t][i] = x[t][i] * (1 / sqrt(mean(x^2) + eps)) * weight[i]; sum of the float
// squares in double, as the CPU. out may be x. Grid: n_tokens blocks of 256.

// 1 / sqrt(mean(x^2) + eps) over the n floats of xr, the squares summed in double; every thread
// of the block calls it and gets the same scale.
__device__ __forceinline__ float rms_scale(const float* xr, int n, float eps, double* partial) {
    double s = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float v = xr[i];
        s += (double) (v * v);
    }
    s = block_sum_double(s, partial);
    float mean = (float) (s / n);
    float scale = __fdiv_rn(1.0f, __fsqrt_rn(mean + eps));
    return scale;
}

extern "C" __global__ void __launch_bounds__(256)
rms_norm(const float* x, const float* __restrict__ weight, float* out, int n, float eps) {
    __shared__ double partial[32];
    const float* xr = x + (long long) blockIdx.x * n;
    float* outr = out + (long long) blockIdx.x * n;
    float scale = rms_scale(xr, n, eps, partial);
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        outr[i] = xr[i] * scale * weight[i];
    }
}

// rms_norm, and its output quantized into the 8-bit activation layout at once (what quantize_q8
// would write from it: the same floats, so the same quants), for the product that follows. One
// block per token, grid x = n tokens; needs n % 32 == 0. A warp takes 32-element blocks in turn.
extern "C" __global__ void __launch_bounds__(256)
rms_norm_q8(const float* x, const float* __restrict__ weight, float* out, int n, float eps, u8* __restrict__ act) {
    __shared__ double partial[32];
    const float* xr = x + (long long) blockIdx.x * n;
    float* outr = out + (long long) blockIdx.x * n;
    float scale = rms_scale(xr, n, eps, partial);
    int lane = threadIdx.x % WARP;
    for (int b = threadIdx.x / WARP; b < n / 32; b += blockDim.x / WARP) {
        int i = 32 * b + lane;
        float v = xr[i] * scale * weight[i];
        outr[i] = v;
        q8_store(v, lane, act, blockIdx.x, gridDim.x, n, b);
    }
}

// ---------------------------------------------------------------------------------------------
// RoPE in place. Pair i of head h of token t (position start_pos + t) turns by
// theta_i / factors[i], theta_0 = pos, theta_{i+1} = theta_i * theta_scale (in float, step by
// step, like the CPU; theta_scale = (float) pow(base, -2 / dims) comes from the host).
// Normal mode rotates (x[2i], x[2i+1]); NeoX (x[i], x[i + dims/2]). factors may be null.
// One thread per (token, head, pair).

// Rotates pair i of one head (base: its head_dim floats) at position pos. The rotation's products
// and sums are rounded one by one (no fused multiply-add), as the CPU's float arithmetic.
__device__ __forceinline__ void rope_rotate(float* base, int half, int i, int pos, float theta_scale,
                                            const float* factors, int neox, float freq_scale, float mscale) {
    float theta = (float) pos;
    for (int k = 0; k < i; k++) {
        theta = __fmul_rn(theta, theta_scale);
    }
    float angle = __fmul_rn(freq_scale, factors != 0 ? __fdiv_rn(theta, factors[i]) : theta);
    // as ggml's rope_yarn: cos and sin rounded to float, then times the magnitude scale (attn_factor)
    float c = __fmul_rn((float) cos((double) angle), mscale);
    float s = __fmul_rn((float) sin((double) angle), mscale);
    int a = neox ? i : 2 * i;
    int b = neox ? i + half : 2 * i + 1;
    float x0 = base[a];
    float x1 = base[b];
    base[a] = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
    base[b] = __fadd_rn(__fmul_rn(x0, s), __fmul_rn(x1, c));
}

// Rotates pair i of head h of token t (x: [t][n_heads][head_dim]).
__device__ __forceinline__ void rope_pair(float* x, int n_heads, int head_dim, int half, int i, int h, int t,
                                          int start_pos, float theta_scale, const float* factors, int neox,
                                          float freq_scale, float mscale) {
    rope_rotate(x + ((long long) t * n_heads + h) * head_dim, half, i, start_pos + t, theta_scale, factors, neox,
                freq_scale, mscale);
}


// RoPE on the query heads and the key heads of the same tokens in one launch: the grid's heads
// run over q's n_q first, then k's n_k (n_k = 0: one tensor's heads alone).
extern "C" __global__ void rope_qk(float* q, int n_q, float* k, int n_k, int head_dim, int rope_dims, int start_pos,
                                   int n_tokens, float theta_scale, const float* factors, int neox, float freq_scale,
                                   float mscale) {
    int half = rope_dims / 2;
    int heads = n_q + n_k;
    long long idx = (long long) blockIdx.x * blockDim.x + threadIdx.x;
    long long total = (long long) n_tokens * heads * half;
    if (idx >= total) {
        return;
    }
    int i = (int) (idx % half);
    int h = (int) ((idx / half) % heads);
    int t = (int) (idx / ((long long) half * heads));
    if (h < n_q) {
        rope_pair(q, n_q, head_dim, half, i, h, t, start_pos, theta_scale, factors, neox, freq_scale, mscale);
    } else {
        rope_pair(k, n_k, head_dim, half, i, h - n_q, t, start_pos, theta_scale, factors, neox, freq_scale, mscale);
    }
}

// ---------------------------------------------------------------------------------------------
// Attention. Four kernels, split over the KV length in chunks of ATT_CHUNK positions
// (flash-decoding's split, with the softmax kept exact: the CPU rounds the normalised weights to
// half before multiplying the values, so the weights are normalised before the value pass):
//   kv_store       rounds the new keys/values to half into the cache;
//   attn_scores    (chunk, head, token): score[s] = (half(q * q_scale) . k[s]) * scale for s < len(t);
//   attn_softmax   (head, token): softmax in place (sum in double), weights rounded to half;
//   attn_values    (chunk, head, token): partial[d] = sum_s w[s] * v[s][d] over the chunk,
//                  written straight to out when there is one chunk;
//   attn_reduce    (head, token): out[d] = sum over chunks of partial[d].
// Token t (of n_tokens, at position start_pos + t) attends positions 0..start_pos + t (causal),
// so a prompt batch (prefill) and one token (decode) take the same path.
// scores: [n_tokens][n_heads][max_len], max_len = start_pos + n_tokens.

#define ATT_CHUNK 128
#define ATT_THREADS 128
#define ATT_MAX_HEAD_DIM 512

extern "C" __global__ void kv_store(const float* k, const float* v, u16* keys, u16* values, int kv_dim, int start_pos,
                                    int n_tokens) {
    long long idx = (long long) blockIdx.x * blockDim.x + threadIdx.x;
    long long total = (long long) n_tokens * kv_dim;
    if (idx >= total) {
        return;
    }
    long long dst = (long long) start_pos * kv_dim + idx;
    keys[dst] = float_to_half(k[idx]);
    values[dst] = float_to_half(v[idx]);
}

extern "C" __global__ void __launch_bounds__(ATT_THREADS)
attn_scores(const float* __restrict__ q, const u16* __restrict__ keys, float* __restrict__ scores, int n_heads,
            int n_kv_heads, int head_dim, int start_pos, int n_tokens, float q_scale, float scale) {
    __shared__ float qh[ATT_MAX_HEAD_DIM];
    int chunk = blockIdx.x;
    int h = blockIdx.y;
    int t = blockIdx.z;
    int len = start_pos + t + 1;
    int s0 = chunk * ATT_CHUNK;
    if (s0 >= len) {
        return;
    }
    int max_len = start_pos + n_tokens;
    int kv_dim = n_kv_heads * head_dim;
    int kv_off = (h / (n_heads / n_kv_heads)) * head_dim;
    const float* qr = q + ((long long) t * n_heads + h) * head_dim;
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
        qh[d] = round_half(qr[d] * q_scale);  // phi3 scales q before the half-precision product
    }
    __syncthreads();
    int warp = threadIdx.x / WARP;
    int lane = threadIdx.x % WARP;
    int s1 = min(len, s0 + ATT_CHUNK);
    float* out = scores + ((long long) t * n_heads + h) * max_len;
    for (int s = s0 + warp; s < s1; s += ATT_THREADS / WARP) {
        const u16* kr = keys + (long long) s * kv_dim + kv_off;
        float acc = 0.0f;
        for (int d = lane; d < head_dim; d += WARP) {
            acc = fmaf(qh[d], half_to_float(kr[d]), acc);
        }
        acc = warp_sum(acc);
        if (lane == 0) {
            out[s] = acc * scale;
        }
    }
}

// The attention weights of one query over len positions, in place: an exact softmax (the max,
// exp in double rounded to float, the sum in double over the block's threads' strided shares),
// each weight rounded to half, as the CPU. Every thread of the block calls it.
__device__ __forceinline__ void softmax_to_half(float* row, int len, float* maxes, double* sums) {
    float m = NEG_INF;
    for (int s = threadIdx.x; s < len; s += blockDim.x) {
        m = fmaxf(m, row[s]);
    }
    m = block_max(m, maxes);
    double sum = 0.0;
    for (int s = threadIdx.x; s < len; s += blockDim.x) {
        float e = (float) exp((double) (row[s] - m));
        row[s] = e;
        sum += e;
    }
    sum = block_sum_double(sum, sums);
    float inv = (float) (1.0 / sum);
    for (int s = threadIdx.x; s < len; s += blockDim.x) {
        row[s] = round_half(row[s] * inv);
    }
}

extern "C" __global__ void __launch_bounds__(256)
attn_softmax(float* scores, int n_heads, int start_pos, int n_tokens) {
    __shared__ float maxes[32];
    __shared__ double sums[32];
    int h = blockIdx.x;
    int t = blockIdx.y;
    int len = start_pos + t + 1;
    int max_len = start_pos + n_tokens;
    float* row = scores + ((long long) t * n_heads + h) * max_len;
    softmax_to_half(row, len, maxes, sums);
}

extern "C" __global__ void __launch_bounds__(ATT_THREADS)
attn_values(const float* __restrict__ weights, const u16* __restrict__ values, float* __restrict__ partial,
            float* __restrict__ out, int n_heads, int n_kv_heads, int head_dim, int start_pos, int n_tokens,
            u8* __restrict__ act) {
    int chunk = blockIdx.x;
    int chunks = gridDim.x;
    int h = blockIdx.y;
    int t = blockIdx.z;
    int len = start_pos + t + 1;
    int s0 = chunk * ATT_CHUNK;
    int s1 = min(len, s0 + ATT_CHUNK);
    int max_len = start_pos + n_tokens;
    int kv_dim = n_kv_heads * head_dim;
    int kv_off = (h / (n_heads / n_kv_heads)) * head_dim;
    const float* w = weights + ((long long) t * n_heads + h) * max_len;
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
        float acc = 0.0f;
        for (int s = s0; s < s1; s++) {
            acc = fmaf(w[s], half_to_float(values[(long long) s * kv_dim + kv_off + d]), acc);
        }
        if (chunks == 1) {
            out[((long long) t * n_heads + h) * head_dim + d] = acc;
            if (act != 0) { // a warp holds 32 consecutive outputs: one block of the output projection's input
                q8_store(acc, threadIdx.x % WARP, act, t, n_tokens, n_heads * head_dim, (h * head_dim + d) / 32);
            }
        } else {
            partial[(((long long) t * n_heads + h) * chunks + chunk) * head_dim + d] = acc;
        }
    }
}

extern "C" __global__ void attn_reduce(const float* __restrict__ partial, float* __restrict__ out, int n_heads,
                                       int head_dim, int chunks, u8* __restrict__ act) {
    int h = blockIdx.x;
    int t = blockIdx.y;
    const float* p = partial + ((long long) t * n_heads + h) * chunks * head_dim;
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
        float acc = 0.0f;
        for (int c = 0; c < chunks; c++) {
            acc += p[(long long) c * head_dim + d];  // chunks past this token's length wrote 0
        }
        out[((long long) t * n_heads + h) * head_dim + d] = acc;
        if (act != 0) {
            q8_store(acc, threadIdx.x % WARP, act, t, gridDim.y, n_heads * head_dim, (h * head_dim + d) / 32);
        }
    }
}

// Decode attention in one launch for contexts of up to ATT_FUSED_MAX positions: a block per query
// head does what attn_scores, attn_softmax and attn_values do for one token in one chunk, in the
// same order (a warp per score, the softmax over 256 threads' strided shares, then a thread per
// output dimension summing positions in order), so its output is theirs to the bit; the scores
// stay in shared memory. It also stores the token's key and value (kv_store's work): the first
// query head of each KV head writes them to the cache, and every head reads the new position from
// k and v (rounded to half as the cache would hold them), so no block waits for another. Three
// launches fewer per layer, where a 1B model's step is mostly launches.
// act: as attn_values's. pos_dev: where a CUDA graph keeps the step's position, or 0 to take
// start_pos_arg. Grid: x = n_heads. Block: 256.
#define ATT_FUSED_MAX 1024

extern "C" __global__ void __launch_bounds__(256)
attn_decode(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
            u16* __restrict__ keys, u16* __restrict__ values, float* __restrict__ out, int n_heads, int n_kv_heads,
            int head_dim, int start_pos_arg, float q_scale, float scale, u8* __restrict__ act,
            const int* __restrict__ pos_dev, int rope_dims, float theta_scale, const float* factors, int neox,
            float freq_scale, float mscale) {
    // pos_dev: the position in device memory (a decode step replayed as a CUDA graph), else the argument
    int start_pos = pos_dev != 0 ? *pos_dev : start_pos_arg;
    __shared__ float qh[ATT_MAX_HEAD_DIM];
    __shared__ float kh[ATT_MAX_HEAD_DIM];
    __shared__ float w[ATT_FUSED_MAX];
    __shared__ float maxes[32];
    __shared__ double sums[32];
    int h = blockIdx.x;
    int len = start_pos + 1;
    int kv_dim = n_kv_heads * head_dim;
    int kv_off = (h / (n_heads / n_kv_heads)) * head_dim;
    const float* qr = q + (long long) h * head_dim;
    bool stores = h % (n_heads / n_kv_heads) == 0;
    long long last = (long long) start_pos * kv_dim + kv_off;
    // The query head and the new key of its KV head, rotated here when rope_dims > 0 (what
    // rope_qk would have done to q and k, in the same float operations).
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
        qh[d] = qr[d];
        kh[d] = k[kv_off + d];
    }
    __syncthreads();
    if (rope_dims > 0) {
        int half = rope_dims / 2;
        for (int i = threadIdx.x; i < 2 * half; i += blockDim.x) {
            rope_rotate(i < half ? qh : kh, half, i < half ? i : i - half, start_pos, theta_scale, factors, neox,
                        freq_scale, mscale);
        }
        __syncthreads();
    }
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
        qh[d] = round_half(qh[d] * q_scale);
        if (stores) {
            keys[last + d] = float_to_half(kh[d]);
            values[last + d] = float_to_half(v[kv_off + d]);
        }
    }
    __syncthreads();
    int warp = threadIdx.x / WARP;
    int lane = threadIdx.x % WARP;
    for (int s = warp; s < len; s += blockDim.x / WARP) {
        const u16* kr = keys + (long long) s * kv_dim + kv_off;
        float acc = 0.0f;
        for (int d = lane; d < head_dim; d += WARP) {
            float kd = s < start_pos ? half_to_float(kr[d]) : round_half(kh[d]);
            acc = fmaf(qh[d], kd, acc);
        }
        acc = warp_sum(acc);
        if (lane == 0) {
            w[s] = acc * scale;
        }
    }
    __syncthreads();
    softmax_to_half(w, len, maxes, sums);
    __syncthreads();
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
        float acc = 0.0f;
        for (int s = 0; s < start_pos; s++) {
            acc = fmaf(w[s], half_to_float(values[(long long) s * kv_dim + kv_off + d]), acc);
        }
        acc = fmaf(w[start_pos], round_half(v[kv_off + d]), acc);
        out[(long long) h * head_dim + d] = acc;
        if (act != 0) {
            q8_store(acc, lane, act, 0, 1, n_heads * head_dim, (h * head_dim + d) / 32);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Elementwise.

extern "C" __global__ void swiglu(const float* gate, const float* up, float* out, long long n) {
    long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        out[i] = silu(gate[i]) * up[i];
    }
}

extern "C" __global__ void add(const float* x, float* y, long long n) {
    long long i = (long long) blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        y[i] += x[i];
    }
}

// ---------------------------------------------------------------------------------------------
// A decoding step's choice material, so that the logits stay here (TokenCandidates on the host):
// the statistics of softmax(logits) at temperature 1 and the k best tokens of the penalised
// logits. result, 64 bytes of header then k candidates of 12 bytes:
//   int id1, int id2 (the two most likely tokens, -1 if none; NaN logits skipped, lower id first
//   among equals), int count, int pad, double max, double log_z (log sum exp(logit - max)),
//   double entropy (natural log), double p1, double p2; then { int id, float logit, float
//   penalised } per candidate, in no order (the host sorts them).
// pen: the penalised logits (penalise's output), or logits itself when no penalty applies. The
// candidates are the k best in TokenCandidates.key's order (logit_rank, then the lower id): a
// radix select of the k-th best rank, 8 bits a pass, then one pass that takes every better token
// and the lowest ids of those tied with it.
// One block of SELECT_THREADS. Needs 1 <= k <= n.

#define SELECT_THREADS 1024

__host__ __device__ __forceinline__ u32 float_to_bits(float f) {
#ifdef __CUDA_ARCH__
    return (u32) __float_as_int(f);
#else
    u32 bits;
    __builtin_memcpy(&bits, &f, 4);
    return bits;
#endif
}

// TokenCandidates.key's order as an unsigned int, larger = better: NaN ranks as -inf, -0.0 below +0.0.
__host__ __device__ __forceinline__ u32 logit_rank(float v) {
    u32 bits = float_to_bits(v);
    if ((bits & 0x7fffffffu) > 0x7f800000u) {
        bits = 0xff800000u;
    }
    return (bits & 0x80000000u) != 0 ? ~bits : bits | 0x80000000u;
}

// The bin of a 256-bin histogram (highest bin = best ranks) that holds the remaining-th best of
// the ranks counted; *above is set to how many are in the bins above it.
__host__ __device__ __forceinline__ int select_bin(const u32* hist, u32 remaining, u32* above) {
    u32 sum = 0;
    int b = 255;
    for (; b > 0; b--) {
        if (sum + hist[b] >= remaining) {
            break;
        }
        sum += hist[b];
    }
    *above = sum;
    return b;
}

// (v, i) comes before (w, j) among the most likely tokens: j is none, or v is larger, or equal with the lower id.
__device__ __forceinline__ bool likelier(float v, int i, float w, int j) {
    return j < 0 || v > w || (v == w && i < j);
}

struct Top2 {
    float v1;
    int i1;
    float v2;
    int i2;
};

__device__ __forceinline__ void top2_add(Top2& t, float v, int i) {
    if (i < 0) {
        return;
    }
    if (likelier(v, i, t.v1, t.i1)) {
        t.v2 = t.v1;
        t.i2 = t.i1;
        t.v1 = v;
        t.i1 = i;
    } else if (likelier(v, i, t.v2, t.i2)) {
        t.v2 = v;
        t.i2 = i;
    }
}

__device__ __forceinline__ void put_candidate(u8* result, int slot, int id, float logit, float penalised) {
    u8* c = result + 64 + 12 * slot;
    *(int*) c = id;
    *(float*) (c + 4) = logit;
    *(float*) (c + 8) = penalised;
}

extern "C" __global__ void __launch_bounds__(SELECT_THREADS, 1)
select_tokens(const float* __restrict__ logits, const float* __restrict__ pen, int n, int k, u8* __restrict__ result) {
    __shared__ Top2 tops[32];
    __shared__ u32 best_ranks[32];
    __shared__ int best_ids[32];
    __shared__ double sums[32];
    __shared__ u32 hist[256];
    __shared__ u32 s_prefix;
    __shared__ u32 s_remaining;
    __shared__ int s_slot;
    __shared__ int s_ties;
    __shared__ int tie_counts[32];
    int warp = threadIdx.x / WARP;
    int lane = threadIdx.x % WARP;
    int warps = blockDim.x / WARP;

    // Pass 1: the two most likely tokens (NaN skipped) and the best penalised one.
    Top2 t = {NEG_INF, -1, NEG_INF, -1};
    u32 best_rank = 0;
    int best_id = 0x7fffffff;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float v = logits[i];
        if (v == v) {
            top2_add(t, v, i);
        }
        u32 r = logit_rank(pen[i]);
        if (r > best_rank || best_id == 0x7fffffff) {  // i increases: the first of equals stays
            best_rank = r;
            best_id = i;
        }
    }
    for (int o = WARP / 2; o > 0; o >>= 1) {
        Top2 other = {__shfl_xor_sync(0xffffffffu, t.v1, o), __shfl_xor_sync(0xffffffffu, t.i1, o),
                      __shfl_xor_sync(0xffffffffu, t.v2, o), __shfl_xor_sync(0xffffffffu, t.i2, o)};
        top2_add(t, other.v1, other.i1);
        top2_add(t, other.v2, other.i2);
        u32 orank = __shfl_xor_sync(0xffffffffu, best_rank, o);
        int oid = __shfl_xor_sync(0xffffffffu, best_id, o);
        if (orank > best_rank || (orank == best_rank && oid < best_id)) {
            best_rank = orank;
            best_id = oid;
        }
    }
    if (lane == 0) {
        tops[warp] = t;
        best_ranks[warp] = best_rank;
        best_ids[warp] = best_id;
    }
    __syncthreads();
    t = tops[0];
    best_rank = best_ranks[0];
    best_id = best_ids[0];
    for (int w = 1; w < warps; w++) {
        top2_add(t, tops[w].v1, tops[w].i1);
        top2_add(t, tops[w].v2, tops[w].i2);
        if (best_ranks[w] > best_rank || (best_ranks[w] == best_rank && best_ids[w] < best_id)) {
            best_rank = best_ranks[w];
            best_id = best_ids[w];
        }
    }

    // Pass 2: log Z and the entropy, H = log Z - sum(e_i * d_i) / Z with d_i = logit_i - max, as LogitStats.
    double m = (double) t.v1;
    bool finite = t.i1 >= 0 && m > (double) NEG_INF && m < (double) -NEG_INF;
    double z = 0.0;
    double weighted = 0.0;
    if (finite) {
        for (int i = threadIdx.x; i < n; i += blockDim.x) {
            double d = (double) logits[i] - m;
            if (d == d && d > (double) NEG_INF) {
                double e = exp(d);
                z += e;
                weighted += e * d;
            }
        }
    }
    z = block_sum_double(z, sums);
    weighted = block_sum_double(weighted, sums);
    if (threadIdx.x == 0) {
        double log_z, h, p1, p2;
        if (finite) {
            log_z = log(z);
            h = log_z - weighted / z;
            h = h > 0.0 ? h : 0.0;
            p1 = exp(-log_z);
            p2 = t.i2 < 0 ? 0.0 : exp(((double) t.v2 - m) - log_z);
        } else {  // all -inf: uniform in the limit; +inf: certain (LogitStats's conventions)
            bool none = m < 0.0;
            log_z = none ? 0.0 : __longlong_as_double(0x7ff8000000000000LL);
            h = 0.0;
            p1 = none ? 1.0 / n : 1.0;
            p2 = t.i2 < 0 ? 0.0 : none ? 1.0 / n : 0.0;
        }
        *(int*) result = t.i1;
        *(int*) (result + 4) = t.i2;
        *(int*) (result + 8) = k;
        *(int*) (result + 12) = 0;
        *(double*) (result + 16) = m;
        *(double*) (result + 24) = log_z;
        *(double*) (result + 32) = h;
        *(double*) (result + 40) = p1;
        *(double*) (result + 48) = p2;
        if (k == 1) {
            put_candidate(result, 0, best_id, logits[best_id], pen[best_id]);
        }
    }
    if (k == 1) {
        return;
    }

    // Pass 3: the k-th best rank, a byte at a time from the top.
    u32 prefix = 0;
    u32 mask = 0;
    u32 remaining = (u32) k;  // how many of the ranks matching prefix on mask are still to take
    for (int shift = 24; shift >= 0; shift -= 8) {
        for (int b = threadIdx.x; b < 256; b += blockDim.x) {
            hist[b] = 0;
        }
        __syncthreads();
        for (int i = threadIdx.x; i < n; i += blockDim.x) {
            u32 r = logit_rank(pen[i]);
            if ((r & mask) == prefix) {
                atomicAdd(&hist[(r >> shift) & 255u], 1u);
            }
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            u32 above;
            int b = select_bin(hist, remaining, &above);
            s_prefix = prefix | ((u32) b << shift);
            s_remaining = remaining - above;
        }
        __syncthreads();
        prefix = s_prefix;
        remaining = s_remaining;
        mask |= 255u << shift;
    }

    // Pass 4: every token ranked above the threshold, and the first `remaining` (by id) of those at it.
    if (threadIdx.x == 0) {
        s_slot = 0;
        s_ties = 0;
    }
    __syncthreads();
    for (int base = 0; base < n; base += blockDim.x) {
        int i = base + threadIdx.x;
        float p = i < n ? pen[i] : 0.0f;
        u32 r = i < n ? logit_rank(p) : 0u;
        bool tie = i < n && r == prefix;
        u32 ties = __ballot_sync(0xffffffffu, tie);
        if (lane == 0) {
            tie_counts[warp] = __popc(ties);
        }
        __syncthreads();
        int before = s_ties + __popc(ties & ((1u << lane) - 1u));
        for (int w = 0; w < warp; w++) {
            before += tie_counts[w];
        }
        if ((i < n && r > prefix) || (tie && before < (int) remaining)) {
            put_candidate(result, atomicAdd(&s_slot, 1), i, logits[i], p);
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            for (int w = 0; w < warps; w++) {
                s_ties += tie_counts[w];
            }
        }
        __syncthreads();
    }
}

// The repetition penalty on a copy of the logits (pen, already equal to logits): each listed
// token's logit divided by the penalty when positive, multiplied when not, from the original, so
// that a token listed twice is penalised once. Grid: ceil(count / 256). Block: 256.
extern "C" __global__ void penalise(const float* __restrict__ logits, float* __restrict__ pen,
                                    const int* __restrict__ ids, int count, float penalty) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < count) {
        int id = ids[i];
        float l = logits[id];
        pen[id] = l <= 0.0f ? l * penalty : l / penalty;
    }
}
