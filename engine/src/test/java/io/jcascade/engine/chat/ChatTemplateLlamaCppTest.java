package io.jcascade.engine.chat;

import static org.assertj.core.api.Assertions.assertThat;

import de.kherud.llama.InferenceParameters;
import de.kherud.llama.LlamaModel;
import de.kherud.llama.ModelParameters;
import de.kherud.llama.Pair;
import de.kherud.llama.args.LogFormat;
import io.jcascade.engine.SharedData;
import io.jcascade.engine.TinyGguf;
import io.jcascade.engine.tokenizer.Tokenizer;
import io.jcascade.engine.tokenizer.Tokenizers;
import io.jcascade.gguf.GgufFile;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The templates inside the shared vocab files, rendered by llama.cpp itself (de.kherud's
 * {@code applyTemplate}, which adds the generation prompt) on a tiny model around each vocab.
 */
class ChatTemplateLlamaCppTest {

    @TempDir
    Path dir;

    @ParameterizedTest
    @ValueSource(strings = {"ggml-vocab-llama-bpe.gguf", "ggml-vocab-phi-3.gguf"})
    void rendersAsLlamaCpp(String vocabName) throws Exception {
        Path model = TinyGguf.withVocabOf(SharedData.shared("tokenizer-vectors/" + vocabName), dir.resolve("tiny.gguf"));
        ChatTemplate template;
        Tokenizer tok;
        try (GgufFile gguf = GgufFile.open(model)) {
            tok = Tokenizers.fromGguf(gguf);
            template = ChatTemplate.fromGguf(gguf, tok).orElseThrow();
        }
        LlamaModel.setLogger(LogFormat.TEXT, (level, message) -> { });
        try (LlamaModel llama = new LlamaModel(new ModelParameters().setModel(model.toString()).setCtxSize(64)
                .setThreads(1).setThreadsBatch(1).setGpuLayers(0))) {
            for (List<ChatMessage> chat : List.of(
                    List.of(ChatMessage.user("Hi")),
                    List.of(ChatMessage.user("Hi"), ChatMessage.assistant("Hello!"), ChatMessage.user("How are you?")),
                    // No characters beyond the BMP: de.kherud passes strings through JNI's modified
                    // UTF-8, which garbles them on the way back.
                    List.of(ChatMessage.user("  spaced  \n"), ChatMessage.assistant("ok"), ChatMessage.user("日本語 café")))) {
                List<Pair<String, String>> pairs = new ArrayList<>();
                for (ChatMessage m : chat) {
                    pairs.add(new Pair<>(m.role(), m.content()));
                }
                String expected = llama.applyTemplate(new InferenceParameters("").setMessages(null, pairs));
                String rendered = template.render(chat, true);
                // llama.cpp cuts the template's leading BOS text and lets tokenization add BOS instead;
                // we keep the text as Hugging Face renders it and drop the duplicate when encoding.
                assertThat(rendered).as(chat.toString()).isEqualTo(template.bosToken() + expected);
                int[] llamaIds = llama.encode(expected);
                int[] withBos = new int[llamaIds.length + 1];
                withBos[0] = tok.bos();
                System.arraycopy(llamaIds, 0, withBos, 1, llamaIds.length);
                assertThat(ChatTemplate.encode(tok, rendered)).as(chat.toString()).containsExactly(withBos);
            }
        }
    }
}
