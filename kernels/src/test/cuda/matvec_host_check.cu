// Runs the decode matrix-vector kernels' per-lane code (chunk_dot / lane_dot of jcascade.cu) on
// the CPU, exactly as the 32 lanes of a warp would split a row and then sum their shares in
// warp_sum's butterfly order, so that the block layouts they decode are checked against the CPU
// reference on a machine without a GPU (MatvecHostCheckTest drives it).
//
// Input (stdin, little-endian): int32 type (jcascade.cu's WType), int32 activations (0 float,
// 1 the 8-bit path: x quantized as quantize_q8 does, lane by lane), int32 rows, int32 cols,
// int64 row_bytes, rows * row_bytes weight bytes, cols float32 x. Output (stdout): rows float32.
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

template <int T, bool Q8>
static void rows_dot(const std::vector<u8>& w, long long row_bytes, int rows, int cols, const float* x, float* out) {
    std::vector<int> act = Q8 ? quantize(x, cols) : std::vector<int>();
    for (int r = 0; r < rows; r++) {
        float lanes[WARP];
        for (int l = 0; l < WARP; l++) {
            const u8* row = w.data() + (long long) r * row_bytes;
            if constexpr (Q8) {
                lanes[l] = lane_dot_q8<T>(row, cols / 32, l, q8_act(act.data(), cols));
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

static void read_all(void* p, size_t n) {
    if (std::fread(p, 1, n, stdin) != n) {
        std::fprintf(stderr, "matvec_host_check: short input\n");
        std::exit(2);
    }
}

int main() {
    int type, q8, rows, cols;
    long long row_bytes;
    read_all(&type, 4);
    read_all(&q8, 4);
    read_all(&rows, 4);
    read_all(&cols, 4);
    read_all(&row_bytes, 8);
    // 16-aligned storage, as cuMemAlloc gives the kernels (Q4_K's 16-byte loads need it).
    std::vector<u8> w((size_t) row_bytes * rows + 16);
    read_all(w.data(), (size_t) row_bytes * rows);
    std::vector<float> x((size_t) cols + 4);
    read_all(x.data(), 4 * (size_t) cols);
    std::vector<float> out(rows);
    switch (type * 2 + (q8 != 0)) {
        case 2 * W_Q8_0: rows_dot<W_Q8_0, false>(w, row_bytes, rows, cols, x.data(), out.data()); break;
        case 2 * W_Q4_0: rows_dot<W_Q4_0, false>(w, row_bytes, rows, cols, x.data(), out.data()); break;
        case 2 * W_Q4_K: rows_dot<W_Q4_K, false>(w, row_bytes, rows, cols, x.data(), out.data()); break;
        case 2 * W_Q6_K: rows_dot<W_Q6_K, false>(w, row_bytes, rows, cols, x.data(), out.data()); break;
        case 2 * W_Q8_0 + 1: rows_dot<W_Q8_0, true>(w, row_bytes, rows, cols, x.data(), out.data()); break;
        case 2 * W_Q4_0 + 1: rows_dot<W_Q4_0, true>(w, row_bytes, rows, cols, x.data(), out.data()); break;
        default:
            std::fprintf(stderr, "matvec_host_check: no matvec kernel for type %d (activations %d)\n", type, q8);
            return 2;
    }
    std::fwrite(out.data(), 4, rows, stdout);
    return 0;
}
