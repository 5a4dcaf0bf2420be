// Runs the decode matrix-vector kernels' per-lane code (chunk_dot / lane_dot of jcascade.cu) on
// the CPU, exactly as the 32 lanes of a warp would split a row and then sum their shares in
// warp_sum's butterfly order, so that the block layouts they decode are checked against the CPU
// reference on a machine without a GPU (MatvecHostCheckTest drives it).
//
// Input (stdin, little-endian): int32 type (jcascade.cu's WType), int32 rows, int32 cols,
// int64 row_bytes, rows * row_bytes weight bytes, cols float32 x. Output (stdout): rows float32.
#include "jcascade.cu"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

template <int T>
static void rows_dot(const std::vector<u8>& w, long long row_bytes, int rows, int cols, const float* x, float* out) {
    for (int r = 0; r < rows; r++) {
        float lanes[WARP];
        for (int l = 0; l < WARP; l++) {
            lanes[l] = lane_dot<T>(w.data() + (long long) r * row_bytes, cols / 32, l, x);
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
    int type, rows, cols;
    long long row_bytes;
    read_all(&type, 4);
    read_all(&rows, 4);
    read_all(&cols, 4);
    read_all(&row_bytes, 8);
    // 16-aligned storage, as cuMemAlloc gives the kernels (Q4_K's 16-byte loads need it).
    std::vector<u8> w((size_t) row_bytes * rows + 16);
    read_all(w.data(), (size_t) row_bytes * rows);
    std::vector<float> x((size_t) cols + 4);
    read_all(x.data(), 4 * (size_t) cols);
    std::vector<float> out(rows);
    switch (type) {
        case W_Q8_0: rows_dot<W_Q8_0>(w, row_bytes, rows, cols, x.data(), out.data()); break;
        case W_Q4_0: rows_dot<W_Q4_0>(w, row_bytes, rows, cols, x.data(), out.data()); break;
        case W_Q4_K: rows_dot<W_Q4_K>(w, row_bytes, rows, cols, x.data(), out.data()); break;
        case W_Q6_K: rows_dot<W_Q6_K>(w, row_bytes, rows, cols, x.data(), out.data()); break;
        default:
            std::fprintf(stderr, "matvec_host_check: no matvec kernel for type %d\n", type);
            return 2;
    }
    std::fwrite(out.data(), 4, rows, stdout);
    return 0;
}
