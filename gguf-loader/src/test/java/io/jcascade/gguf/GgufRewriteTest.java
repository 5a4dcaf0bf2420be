package io.jcascade.gguf;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Rewrites every real shared GGUF file with {@link GgufWriter}: the copy must read back with equal
 * metadata and tensor bytes, and since all of these files use the canonical layout (tensors in
 * info order, each at the next 32-byte boundary, zero padding, file padded to the alignment, as
 * llama.cpp writes them; vocab-only files without tensors end right after the header, unpadded)
 * the copy must also be byte-identical to the original.
 */
class GgufRewriteTest {

    @TempDir
    Path tmp;

    @ParameterizedTest
    @ValueSource(strings = {
        "models/stories260K.gguf",
        "models/llama-2-tiny-random.gguf",
        "models/derived/stories260K-Q8_0.gguf",
        "models/derived/stories260K-Q4_0.gguf",
        "models/arith-small.gguf",
        "models/arith-large.gguf",
        "tokenizer-vectors/ggml-vocab-llama-spm.gguf",
        "tokenizer-vectors/ggml-vocab-gpt-2.gguf",
        "tokenizer-vectors/ggml-vocab-bert-bge.gguf",
        "tokenizer-vectors/ggml-vocab-phi-3.gguf",
        "tokenizer-vectors/ggml-vocab-llama-bpe.gguf",
    })
    void rewriteIsEqualAndByteIdentical(String relative) throws IOException {
        Path original = SharedData.require(relative);
        Path copy = tmp.resolve("copy.gguf");
        try (GgufFile in = GgufFile.open(original)) {
            GgufWriter w = new GgufWriter().version(in.version());
            w.putAll(in.metadata());
            in.tensors().forEach(w::addTensor);
            w.write(copy);

            try (GgufFile out = GgufFile.open(copy)) {
                assertThat(out.version()).isEqualTo(in.version());
                assertThat(out.metadata()).containsExactlyEntriesOf(in.metadata());
                assertThat(out.alignment()).isEqualTo(in.alignment());
                assertThat(out.dataOffset()).isEqualTo(in.dataOffset());
                assertThat(out.tensors()).containsExactlyElementsOf(in.tensors());
                for (int i = 0; i < in.tensors().size(); i++) {
                    assertThat(out.tensors().get(i).data().mismatch(in.tensors().get(i).data()))
                            .as(in.tensors().get(i).name()).isEqualTo(-1L);
                }
            }
        }
        assertThat(Files.size(copy)).isEqualTo(Files.size(original));
        assertThat(Files.mismatch(copy, original)).as("first differing byte").isEqualTo(-1L);
    }
}
