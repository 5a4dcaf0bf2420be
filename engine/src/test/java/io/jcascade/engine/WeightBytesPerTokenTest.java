package io.jcascade.engine;

import static org.assertj.core.api.Assertions.assertThat;

import io.jcascade.engine.model.Llama;
import io.jcascade.gguf.GgufFile;
import io.jcascade.gguf.GgufTensor;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** The decode ceiling's denominator: every tensor but the embedding, unless the embedding is the output head. */
class WeightBytesPerTokenTest {

    @Test
    void embeddedModelCountsEveryTensorButTheEmbeddingUnlessItIsTheOutputHead() throws Exception {
        assertAddsUp(SharedData.embeddedModel("stories260K.gguf"));
    }

    @Test
    void sharedModelsAddUp() throws Exception {
        assertAddsUp(SharedData.shared("models/llama-2-tiny-random.gguf"));
        assertAddsUp(SharedData.shared("models/arith-small.gguf"));
    }

    private static void assertAddsUp(Path model) throws Exception {
        try (GgufFile g = GgufFile.open(model)) {
            long all = 0;
            for (GgufTensor t : g.tensors()) {
                all += t.byteSize();
            }
            long embd = g.tensor("token_embd.weight").byteSize();
            long expected = g.findTensor("output.weight").isPresent() ? all - embd : all;
            assertThat(Llama.weightBytesPerToken(g)).as("%s", model).isEqualTo(expected).isPositive();
        }
    }
}
