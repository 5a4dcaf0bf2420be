package io.jcascade.engine;

import static org.assertj.core.api.Assertions.assertThat;

import io.jcascade.engine.model.Llama;
import io.jcascade.engine.model.ModelConfig;
import io.jcascade.gguf.GgufFile;
import io.jcascade.kernels.Backend;
import io.jcascade.kernels.Backends;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** {@link Llama#forwardGreedy} is the argmax of {@link Llama#forward}'s logits, step by step. */
class ForwardGreedyTest {

    @Test
    void greedyTokensAreTheArgmaxOfTheLogits() throws Exception {
        try (GgufFile gguf = GgufFile.open(SharedData.embeddedModel("stories260K.gguf"));
                Backend cpu = Backends.create("cpu", 1)) {
            ModelConfig c = ModelConfig.from(gguf);
            Llama llama = Llama.load(gguf, c, cpu);
            int[] prompt = {1, 403, 407, 261, 378};
            float[] logits = new float[c.vocabSize()];
            List<Integer> fromLogits = new ArrayList<>();
            Llama.State s = llama.newState(64, 4); // a batch of 4: the prompt runs in two
            llama.forward(s, prompt, prompt.length, 0, logits);
            for (int i = 0; i < 20; i++) {
                int next = QuantizedPositionAgreementTest.argmax(logits); // the first of the largest
                fromLogits.add(next);
                llama.forward(s, new int[] {next}, 1, prompt.length + i, logits);
            }
            List<Integer> greedy = new ArrayList<>();
            Llama.State g = llama.newState(64, 4);
            int next = llama.forwardGreedy(g, prompt, prompt.length, 0);
            for (int i = 0; i < 20; i++) {
                greedy.add(next);
                next = llama.forwardGreedy(g, new int[] {next}, 1, prompt.length + i);
            }
            assertThat(greedy).isEqualTo(fromLogits);
            assertThat(new java.util.HashSet<>(greedy)).as("a story, not one token again and again").hasSizeGreaterThan(5);
        }
    }
}
