package io.jcascade.engine;

import static org.assertj.core.api.Assertions.assertThat;

import io.jcascade.engine.sampling.SamplingParams;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.assertj.core.data.Offset;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * On the 1,000 arithmetic dev prompts, jcascade's greedy answers for both arith models agree with
 * llama.cpp's on at least 99.5 % of prompts, reach the accuracies recorded with the models, and
 * give per-prompt entropies that match the PyTorch reference where the answers agree.
 */
class ArithAgreementTest {
    private static final double ENTROPY_TOLERANCE = 0.01;
    private static final Pattern FIELD = Pattern.compile("\"(prompt|answer)\":\\s*\"([^\"]*)\"");

    record Example(String prompt, String answer) {}

    record Reference(String smallAnswer, double meanEntropy, double maxEntropy) {}

    static List<Example> devSet() throws IOException {
        List<Example> out = new ArrayList<>();
        for (String line : Files.readAllLines(SharedData.shared("eval/arith-dev.jsonl"))) {
            Matcher m = FIELD.matcher(line);
            Map<String, String> f = new HashMap<>();
            while (m.find()) {
                f.put(m.group(1), m.group(2));
            }
            out.add(new Example(f.get("prompt"), f.get("answer")));
        }
        return out;
    }

    static Map<String, Reference> pytorchReference() throws IOException {
        Map<String, Reference> ref = new HashMap<>();
        List<String> lines = Files.readAllLines(SharedData.shared("eval/arith-dev-reference.csv"));
        for (String line : lines.subList(1, lines.size())) {
            // prompt,answer,op,da,db,small_answer,small_correct,small_mean_entropy,small_max_entropy,...
            String[] c = line.split(",");
            ref.put(c[0], new Reference(c[5], Double.parseDouble(c[7]), Double.parseDouble(c[8])));
        }
        return ref;
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({"arith-small.gguf, 0.609", "arith-large.gguf, 0.943"})
    void greedyAnswersAgreeWithLlamaCppAndReachRecordedAccuracy(String name, double recordedAccuracy)
            throws Exception {
        Path file = SharedData.embeddedModel(name);
        List<Example> dev = devSet();
        Map<String, Reference> reference = pytorchReference();
        GenerationParams params = GenerationParams.defaults().withMaxTokens(8).withSampling(SamplingParams.greedy());
        int agree = 0;
        int correct = 0;
        int entropyChecked = 0;
        double maxEntropyError = 0;
        double sumEntropyError = 0;
        List<String> disagreements = new ArrayList<>();
        try (Model model = Model.load(file, ModelOptions.defaults().withThreads(2));
             LlamaCppOracle llamaCpp = new LlamaCppOracle(file, 64)) {
            for (Example ex : dev) {
                GenerationResult r = model.generate(ex.prompt(), params);
                String expected = llamaCpp.greedy(ex.prompt(), 8);
                if (r.text().equals(expected)) {
                    agree++;
                } else {
                    disagreements.add(ex.prompt() + " jcascade=" + r.text() + " llama.cpp=" + expected);
                }
                if (r.text().equals(ex.answer()) && r.finishReason() == FinishReason.END_OF_SEQUENCE) {
                    correct++;
                }
                Reference ref = reference.get(ex.prompt());
                if (name.equals("arith-small.gguf") && ref != null && ref.smallAnswer().equals(r.text())) {
                    // Same tokens, so nearly the same distributions: the reference ran in float32
                    // PyTorch, jcascade rounds the KV cache and attention to half precision as
                    // llama.cpp does, which moves an entropy by up to a few parts in a thousand.
                    maxEntropyError = Math.max(maxEntropyError, Math.abs(r.meanEntropy() - ref.meanEntropy()));
                    maxEntropyError = Math.max(maxEntropyError, Math.abs(r.maxEntropy() - ref.maxEntropy()));
                    sumEntropyError += Math.abs(r.meanEntropy() - ref.meanEntropy());
                    assertThat(r.meanEntropy()).as("mean entropy of " + ex.prompt())
                            .isCloseTo(ref.meanEntropy(), Offset.offset(ENTROPY_TOLERANCE));
                    assertThat(r.maxEntropy()).as("max entropy of " + ex.prompt())
                            .isCloseTo(ref.maxEntropy(), Offset.offset(ENTROPY_TOLERANCE));
                    entropyChecked++;
                }
            }
        }
        double agreement = agree / (double) dev.size();
        double accuracy = correct / (double) dev.size();
        System.out.printf("%s: agreement with llama.cpp %.4f, accuracy %.3f, largest entropy difference from PyTorch %.5f,"
                + " disagreements %s%n", name, agreement, accuracy, maxEntropyError, disagreements);
        assertThat(dev).hasSize(1000);
        assertThat(agreement).as("share of prompts where jcascade and llama.cpp agree").isGreaterThanOrEqualTo(0.995);
        // The recorded figure is rounded to 3 places; one or two near-tie flips may move it by 0.002.
        assertThat(accuracy).isCloseTo(recordedAccuracy, Offset.offset(0.0025));
        if (name.equals("arith-small.gguf")) {
            assertThat(entropyChecked).isGreaterThan(990);
            // On average the half-precision roundings move the mean entropy far less than the worst case.
            assertThat(sumEntropyError / entropyChecked).isLessThan(1e-3);
        }
    }
}
