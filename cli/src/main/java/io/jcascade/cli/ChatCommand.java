package io.jcascade.cli;

import io.jcascade.engine.CancelToken;
import io.jcascade.engine.ContextOverflowException;
import io.jcascade.engine.GenerationParams;
import io.jcascade.engine.GenerationResult;
import io.jcascade.engine.Model;
import io.jcascade.engine.ModelOptions;
import io.jcascade.engine.chat.ChatMessage;
import io.jcascade.engine.chat.ChatTemplate;
import io.jcascade.engine.sampling.SamplingParams;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code jcascade chat}: an interactive conversation on stdin/stdout through the model's chat
 * template, the reply streamed as it is generated. {@code /exit} or end of input ends it.
 *
 * <pre>
 * ./jcascade chat --model Meta-Llama-3-8B-Instruct.Q4_0.gguf --system "You are terse."
 * &gt; Hi
 * Hello! How can I help?
 * &gt; /exit
 * </pre>
 */
@Command(name = "chat", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Chat with a model on the terminal, through its chat template; /exit or end of input quits.")
final class ChatCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Mixin
    SamplingOptions samplingOptions = new SamplingOptions();

    @Mixin
    ModelLoadOptions loadOptions = new ModelLoadOptions();

    @Option(names = "--model", required = true, paramLabel = "FILE", description = "GGUF model file")
    Path model;

    @Option(names = "--system", paramLabel = "TEXT", description = "a system message that opens the conversation")
    String system;

    @Option(names = "--max-tokens", defaultValue = "512", paramLabel = "N",
            description = "most tokens per reply (default: ${DEFAULT-VALUE})")
    int maxTokens;

    private final BufferedReader in;

    ChatCommand() {
        this(new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8)));
    }

    ChatCommand(BufferedReader in) {
        this.in = in;
    }

    @Override
    public Integer call() throws IOException {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        SamplingParams sampling = samplingOptions.toParams();
        GenerationParams params = GenerationParams.defaults().withMaxTokens(maxTokens).withSampling(sampling);
        ModelOptions options = loadOptions.toModelOptions();
        try (Model m = Model.load(model, options)) {
            ChatTemplate template = GenerateCommand.chatTemplate(m, err);
            List<ChatMessage> history = new ArrayList<>();
            if (system != null) {
                history.add(ChatMessage.system(system));
            }
            while (true) {
                out.print("> ");
                out.flush();
                String line = in.readLine();
                if (line == null || line.strip().equals("/exit")) {
                    out.println();
                    out.flush();
                    return 0;
                }
                if (line.isBlank()) {
                    continue;
                }
                history.add(ChatMessage.user(line));
                int[] prompt = ChatTemplate.encode(m.tokenizer(), template.render(history, true));
                GenerationResult r;
                try {
                    r = m.generate(prompt, params, token -> {
                        out.print(token.text());
                        out.flush();
                    }, new CancelToken());
                } catch (ContextOverflowException e) {
                    history.removeLast();
                    err.println("jcascade: the conversation no longer fits the context (" + e.getMessage()
                            + "); start a new chat or raise --ctx-size");
                    err.flush();
                    continue;
                }
                out.println();
                out.flush();
                history.add(ChatMessage.assistant(r.text()));
            }
        }
    }
}
