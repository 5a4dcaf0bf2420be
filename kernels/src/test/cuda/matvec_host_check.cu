// Runs the decode matrix-vector kernels' per-lane code (chunk_dot / lane_dot of jcascade.cu) on
// the CPU, exactly as the 32 lanes of a warp would split a row and then sum their shares in
// warp_sum's butterfly order, and the prompt kernels' (mmq_*) lane code with mma.sync emulated from
// its fragment layout, so that the block layouts they decode are checked against the CPU reference
// on a machine without a GPU (MatvecHostCheckTest drives it).
//
// Input (stdin, little-endian): int32 type (jcascade.cu's WType), int32 path (0 matvec with float
// activations, 1 matvec with 8-bit ones: x quantized as quantize_q8 does, lane by lane, 2 mmq),
// int32 rows, int32 cols, int32 tokens (1 for the matvec paths; 2..8 for path 3, mmv_* over a few
// tokens), int64 row_bytes,
// rows * row_bytes weight bytes, tokens * cols float32 x. Output (stdout): tokens * rows float32,
// token-major.
#include "jcascade.cu"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

// quantize_q8, one block at a time: amax over the block, then each lane's q8_quant.
static std::vector<int> quantize(const float* x, int cols) {
    int n = cols / 32;
    std::vector<int> act((size_t) cols / 4 + 2 * n); // q (int8, four to an int), then d[n], then s[n]
    signed char* q = reinterpret_cast<signed char*>(act.data());
    float* d = reinterpret_cast<float*>(act.data() + cols / 4);
    int* s = act.data() + cols / 4 + n;
    for (int b = 0; b < n; b++) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) {
            amax = std::fmax(amax, std::fabs(x[32 * b + j]));
        }
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            int v = q8_quant(x[32 * b + j], amax, &d[b]);
            q[32 * b + j] = (signed char) v;
            sum += v;
        }
        s[b] = sum;
    }
    return act;
}

// quantize_q8k, one 256-element block at a time: the block's largest magnitude (first of equals:
// q8k_beats orders them totally, so the warp's butterfly finds the same one), then q8k_quant.
static std::vector<int> quantize_k(const float* x, int cols) {
    int nk = cols / 256;
    std::vector<int> act((size_t) cols / 4 + nk + cols / 32); // q, then d[cols/256], then s[cols/32]
    signed char* q = reinterpret_cast<signed char*>(act.data());
    float* d = reinterpret_cast<float*>(act.data() + cols / 4);
    int* s = act.data() + cols / 4 + nk;
    for (int b = 0; b < nk; b++) {
        float amax = -1.0f;
        float max = 0.0f;
        int at = 0;
        for (int j = 0; j < 256; j++) {
            float v = x[256 * b + j];
            if (q8k_beats(std::fabs(v), j, amax, at)) {
                amax = std::fabs(v);
                max = v;
                at = j;
            }
        }
        float iscale = amax != 0.0f ? -127.0f / max : 0.0f;
        for (int k = 0; k < 8; k++) {
            int sum = 0;
            for (int j = 32 * k; j < 32 * k + 32; j++) {
                int v = amax != 0.0f ? q8k_quant(x[256 * b + j], iscale) : 0;
                q[256 * b + j] = (signed char) v;
                sum += v;
            }
            s[8 * b + k] = sum;
        }
        d[b] = amax != 0.0f ? 1.0f / iscale : 0.0f;
    }
    return act;
}

template <int T, bool Q8>
static void rows_dot(const std::vector<u8>& w, long long row_bytes, int rows, int cols, const float* x, float* out) {
    constexpr bool K = T == W_Q4_K || T == W_Q6_K;
    std::vector<int> act = !Q8 ? std::vector<int>() : K ? quantize_k(x, cols) : quantize(x, cols);
    for (int r = 0; r < rows; r++) {
        float lanes[WARP];
        for (int l = 0; l < WARP; l++) {
            const u8* row = w.data() + (long long) r * row_bytes;
            if constexpr (Q8) {
                lanes[l] = lane_dot_q8<T>(row, cols / 32, l, act_for<T>(act.data(), cols));
            } else {
                lanes[l] = lane_dot<T>(row, cols / 32, l, x);
            }
        }
        for (int o = WARP / 2; o > 0; o >>= 1) { // __shfl_xor_sync's butterfly, all lanes at once
            float next[WARP];
            for (int l = 0; l < WARP; l++) {
                next[l] = lanes[l] + lanes[l ^ o];
            }
            std::memcpy(lanes, next, sizeof lanes);
        }
        out[r] = lanes[0];
    }
}

// mma.sync.m16n8kKD.s32.s8.s8.s32 (KD = 32 or 16) for a whole warp, from the fragment layout
// jcascade.cu states (the PTX ISA's): each lane's a[KD / 8] and b[KD / 16] registers are
// scattered into A (16 x KD) and B (KD x 8) -- per 16 of k, a[2h] row g, a[2h + 1] row g + 8 and
// b[h] token g, k 16h + 4i .. -- and each lane gets its four elements of C = A B.
template <int KD>
static void emulate_mma(const int a[WARP][KD / 8], const int b[WARP][KD / 16], int c[WARP][4]) {
    int A[16][KD];
    int B[KD][8];
    for (int lane = 0; lane < WARP; lane++) {
        int g = lane >> 2;
        int i = lane & 3;
        for (int h = 0; h < KD / 16; h++) {
            for (int e = 0; e < 4; e++) {
                A[g][16 * h + 4 * i + e] = (signed char) (a[lane][2 * h] >> (8 * e));
                A[g + 8][16 * h + 4 * i + e] = (signed char) (a[lane][2 * h + 1] >> (8 * e));
                B[16 * h + 4 * i + e][g] = (signed char) (b[lane][h] >> (8 * e));
            }
        }
    }
    for (int lane = 0; lane < WARP; lane++) {
        int g = lane >> 2;
        int i = lane & 3;
        int rc[4][2] = {{g, 2 * i}, {g, 2 * i + 1}, {g + 8, 2 * i}, {g + 8, 2 * i + 1}};
        for (int e = 0; e < 4; e++) {
            int sum = 0;
            for (int k = 0; k < KD; k++) {
                sum += A[rc[e][0]][k] * B[k][rc[e][1]];
            }
            c[lane][e] = sum;
        }
    }
}

// quantize_q8 (K: quantize_q8k) over n tokens (grid y = n): every part of the one-token layout
// n times as long, token-major: q[n][cols] | d[n][cols/32 or cols/256] | s[n][cols/32].
template <bool K>
static std::vector<int> quantize_tokens(const float* x, int cols, int n) {
    int nd = K ? cols / 256 : cols / 32;
    int nb = cols / 32;
    std::vector<int> act((size_t) n * (cols / 4 + nd + nb));
    signed char* q = reinterpret_cast<signed char*>(act.data());
    float* d = reinterpret_cast<float*>(act.data() + (size_t) n * cols / 4);
    int* s = act.data() + (size_t) n * cols / 4 + (size_t) n * nd;
    for (int t = 0; t < n; t++) {
        std::vector<int> one = K ? quantize_k(x + (size_t) t * cols, cols) : quantize(x + (size_t) t * cols, cols);
        std::memcpy(q + (size_t) t * cols, one.data(), cols);
        std::memcpy(d + (size_t) t * nd, one.data() + cols / 4, 4 * nd);
        std::memcpy(s + (size_t) t * nb, one.data() + cols / 4 + nd, 4 * nb);
    }
    return act;
}

// mmq_body, warp by warp: the same lane functions, with the mma emulated across the 32 lanes
// (one k32 for Q8_0, Q4_0 and Q4_K; two k16 for Q6_K).
template <int T>
static void mmq_rows(const std::vector<u8>& w, long long row_bytes, int rows, int cols, const float* x, int n,
                     float* out) {
    constexpr bool K = T == W_Q4_K || T == W_Q6_K;
    std::vector<int> actv = quantize_tokens<K>(x, cols, n);
    const u8* act = reinterpret_cast<const u8*>(actv.data());
    int nb = cols / 32;
    const float* xd = reinterpret_cast<const float*>(act + (long long) n * cols);
    const int* xs = reinterpret_cast<const int*>(act + (long long) n * cols + 4LL * n * (K ? cols / 256 : nb));
    for (int by = 0; by * MMQ_TILE < n; by++) {
        for (int bx = 0; bx * MMQ_TILE < rows; bx++) {
            for (int warp = 0; warp < MMQ_WARPS; warp++) {
                int r0 = bx * MMQ_TILE + (warp & 1) * 32;
                int t0 = by * MMQ_TILE + (warp >> 1) * 32;
                if (r0 >= rows || t0 >= n) {
                    continue;
                }
                static MmqLane l[WARP];
                static MmqStep st[WARP];
                static MmqKStep kst[WARP];
                static float acc[WARP][2][4][4];
                for (int lane = 0; lane < WARP; lane++) {
                    l[lane] = mmq_lane(w.data(), row_bytes, rows, cols, act, n, r0, t0, lane);
                    std::memset(acc[lane], 0, sizeof acc[lane]);
                }
                for (int b = 0; b < nb; b++) {
                    for (int lane = 0; lane < WARP; lane++) {
                        if constexpr (K) {
                            mmqk_load<T>(l[lane], xd, xs, nb, b, lane & 3, kst[lane]);
                        } else {
                            mmq_load<T>(l[lane], xd, xs, nb, b, lane & 3, st[lane]);
                        }
                    }
                    for (int j = 0; j < 4; j++) {
                        for (int f = 0; f < 2; f++) {
                            int lo[WARP][4];
                            int hi[WARP][4] = {};
                            if (T != W_Q6_K) {
                                int a[WARP][4];
                                int bf[WARP][2];
                                for (int lane = 0; lane < WARP; lane++) {
                                    std::memcpy(a[lane], K ? kst[lane].a[f] : st[lane].a[f], sizeof a[lane]);
                                    std::memcpy(bf[lane], K ? kst[lane].bf[j] : st[lane].bf[j], sizeof bf[lane]);
                                }
                                emulate_mma<32>(a, bf, lo);
                            } else {
                                for (int half = 0; half < 2; half++) {
                                    int a[WARP][2];
                                    int bf[WARP][1];
                                    for (int lane = 0; lane < WARP; lane++) {
                                        a[lane][0] = kst[lane].a[f][2 * half];
                                        a[lane][1] = kst[lane].a[f][2 * half + 1];
                                        bf[lane][0] = kst[lane].bf[j][half];
                                    }
                                    emulate_mma<16>(a, bf, half == 0 ? lo : hi);
                                }
                            }
                            for (int lane = 0; lane < WARP; lane++) {
                                if constexpr (K) {
                                    mmqk_add<T>(acc[lane][f][j], lo[lane], hi[lane], kst[lane], f, j);
                                } else {
                                    const MmqStep& s = st[lane];
                                    mmq_add<T>(acc[lane][f][j], lo[lane], s.dw[2 * f], s.dw[2 * f + 1], s.dx[j][0],
                                               s.dx[j][1], s.sx[j][0], s.sx[j][1]);
                                }
                            }
                        }
                    }
                }
                for (int lane = 0; lane < WARP; lane++) {
                    for (int f = 0; f < 2; f++) {
                        for (int j = 0; j < 4; j++) {
                            mmq_store(out, rows, n, r0, t0, lane, f, j, acc[lane][f][j]);
                        }
                    }
                }
            }
        }
    }
}

// mmv_body: each token's activations through the one-token lanes, per row, butterfly-summed.
template <int T>
static void mmv_rows(const std::vector<u8>& w, long long row_bytes, int rows, int cols, const float* x, int n,
                     float* out) {
    constexpr bool K = T == W_Q4_K || T == W_Q6_K;
    std::vector<int> act = quantize_tokens<K>(x, cols, n);
    for (int r = 0; r < rows; r++) {
        const u8* row = w.data() + (long long) r * row_bytes;
        for (int t = 0; t < n; t++) {
            float lanes[WARP];
            for (int l = 0; l < WARP; l++) {
                lanes[l] = lane_dot_q8<T>(row, cols / 32, l, act_token<T>(act.data(), cols, n, t));
            }
            for (int o = WARP / 2; o > 0; o >>= 1) {
                float next[WARP];
                for (int l = 0; l < WARP; l++) {
                    next[l] = lanes[l] + lanes[l ^ o];
                }
                std::memcpy(lanes, next, sizeof lanes);
            }
            out[(size_t) t * rows + r] = lanes[0];
        }
    }
}

static void read_all(void* p, size_t n) {
    if (std::fread(p, 1, n, stdin) != n) {
        std::fprintf(stderr, "matvec_host_check: short input\n");
        std::exit(2);
    }
}

int main() {
    int type, path, rows, cols, n;
    long long row_bytes;
    read_all(&type, 4);
    read_all(&path, 4);
    read_all(&rows, 4);
    read_all(&cols, 4);
    read_all(&n, 4);
    read_all(&row_bytes, 8);
    // 16-aligned storage, as cuMemAlloc gives the kernels (Q4_K's 16-byte loads need it).
    std::vector<u8> w((size_t) row_bytes * rows + 16);
    read_all(w.data(), (size_t) row_bytes * rows);
    std::vector<float> x((size_t) n * cols + 4);
    read_all(x.data(), 4 * (size_t) n * cols);
    if (path < 2 && n != 1) {
        std::fprintf(stderr, "matvec_host_check: the matvec paths take one token\n");
        return 2;
    }
    std::vector<float> out((size_t) n * rows, NAN); // unwritten elements stay NaN and fail
    if (path == 3 && (n < 2 || n > MMV_MAX_TOKENS)) {
        std::fprintf(stderr, "matvec_host_check: the few-token path takes 2 to %d tokens\n", MMV_MAX_TOKENS);
        return 2;
    }
    switch (type * 4 + path) {
        case 4 * W_Q8_0: rows_dot<W_Q8_0, false>(w, row_bytes, rows, cols, x.data(), out.data()); break;
        case 4 * W_Q4_0: rows_dot<W_Q4_0, false>(w, row_bytes, rows, cols, x.data(), out.data()); break;
        case 4 * W_Q4_K: rows_dot<W_Q4_K, false>(w, row_bytes, rows, cols, x.data(), out.data()); break;
        case 4 * W_Q6_K: rows_dot<W_Q6_K, false>(w, row_bytes, rows, cols, x.data(), out.data()); break;
        case 4 * W_Q8_0 + 1: rows_dot<W_Q8_0, true>(w, row_bytes, rows, cols, x.data(), out.data()); break;
        case 4 * W_Q4_0 + 1: rows_dot<W_Q4_0, true>(w, row_bytes, rows, cols, x.data(), out.data()); break;
        case 4 * W_Q4_K + 1: rows_dot<W_Q4_K, true>(w, row_bytes, rows, cols, x.data(), out.data()); break;
        case 4 * W_Q6_K + 1: rows_dot<W_Q6_K, true>(w, row_bytes, rows, cols, x.data(), out.data()); break;
        case 4 * W_Q8_0 + 2: mmq_rows<W_Q8_0>(w, row_bytes, rows, cols, x.data(), n, out.data()); break;
        case 4 * W_Q4_0 + 2: mmq_rows<W_Q4_0>(w, row_bytes, rows, cols, x.data(), n, out.data()); break;
        case 4 * W_Q4_K + 2: mmq_rows<W_Q4_K>(w, row_bytes, rows, cols, x.data(), n, out.data()); break;
        case 4 * W_Q6_K + 2: mmq_rows<W_Q6_K>(w, row_bytes, rows, cols, x.data(), n, out.data()); break;
        case 4 * W_Q8_0 + 3: mmv_rows<W_Q8_0>(w, row_bytes, rows, cols, x.data(), n, out.data()); break;
        case 4 * W_Q4_0 + 3: mmv_rows<W_Q4_0>(w, row_bytes, rows, cols, x.data(), n, out.data()); break;
        case 4 * W_Q4_K + 3: mmv_rows<W_Q4_K>(w, row_bytes, rows, cols, x.data(), n, out.data()); break;
        case 4 * W_Q6_K + 3: mmv_rows<W_Q6_K>(w, row_bytes, rows, cols, x.data(), n, out.data()); break;
        default:
            std::fprintf(stderr, "matvec_host_check: no kernel for type %d on path %d\n", type, path);
            return 2;
    }
    std::fwrite(out.data(), 4, (size_t) n * rows, stdout);
    return 0;
}
