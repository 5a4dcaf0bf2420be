// Runs select_tokens's selection (jcascade.cu) on the CPU: the same logit_rank order and the same
// radix select of the k-th best rank through select_bin, a byte a pass, then the same rule for
// which tokens to take (every rank above the threshold, the lowest ids of those at it), with the
// block's threads made sequential. SelectHostCheckTest drives it against TokenCandidates.
//
// Input (stdin, little-endian): int32 n, int32 k, n float32 penalised logits.
// Output (stdout): k int32 ids, in the order taken (ascending ids).
#include "jcascade.cu"

#include <cstdio>
#include <vector>

int main() {
    int n, k;
    if (fread(&n, 4, 1, stdin) != 1 || fread(&k, 4, 1, stdin) != 1 || n < 1 || k < 1 || k > n) {
        return 2;
    }
    std::vector<float> pen(n);
    if (fread(pen.data(), 4, n, stdin) != (size_t) n) {
        return 2;
    }
    u32 prefix = 0, mask = 0, remaining = (u32) k;
    for (int shift = 24; shift >= 0; shift -= 8) {
        u32 hist[256] = {0};
        for (int i = 0; i < n; i++) {
            u32 r = logit_rank(pen[i]);
            if ((r & mask) == prefix) {
                hist[(r >> shift) & 255u]++;
            }
        }
        u32 above;
        int b = select_bin(hist, remaining, &above);
        prefix |= (u32) b << shift;
        remaining -= above;
        mask |= 255u << shift;
    }
    std::vector<int> taken;
    u32 ties = 0;
    for (int i = 0; i < n; i++) {
        u32 r = logit_rank(pen[i]);
        if (r > prefix || (r == prefix && ties++ < remaining)) {
            taken.push_back(i);
        }
    }
    fwrite(taken.data(), 4, taken.size(), stdout);
    return taken.size() == (size_t) k ? 0 : 3;
}
