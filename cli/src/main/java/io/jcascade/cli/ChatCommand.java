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

    @Option(names = "--model", required = true, paramLabel = "FILE", description = "GGUF model file")
    Path model;

    @Option(names = "--system", paramLabel = "TEXT", description = "a system message that opens the conversation")
    String system;

    @Option(names = "--max-tokens", defaultValue = "512", paramLabel = "N",
            description = "most tokens per reply (default: ${DEFAULT-VALUE})")
    int maxTokens;

    @Option(names = "--temperature", defaultValue = "0.8", paramLabel = "T",
            description = "sampling temperature; 0 is greedy (default: ${DEFAULT-VALUE})")
    float temperature;

    @Option(names = "--top-k", defaultValue = "40", paramLabel = "K", description = "0 = off (default: ${DEFAULT-VALUE})")
    int topK;

    @Option(names = "--top-p", defaultValue = "0.95", paramLabel = "P", description = "1 = off (default: ${DEFAULT-VALUE})")
    float topP;

    @Option(names = "--min-p", defaultValue = "0.05", paramLabel = "P", description = "0 = off (default: ${DEFAULT-VALUE})")
    float minP;

    @Option(names = "--seed", paramLabel = "S", description = "random seed (default: a fresh one each run)")
    Long seed;

    @Option(names = "--threads", defaultValue = "0", paramLabel = "N",
            description = "CPU threads; 0 = one per core (default: ${DEFAULT-VALUE})")
    int threads;

    @Option(names = "--backend", defaultValue = "auto", paramLabel = "B",
            description = "cpu, cuda or auto (default: ${DEFAULT-VALUE})")
    String backend;

    @Option(names = "--ctx-size", defaultValue = "0", paramLabel = "N",
            description = "context length; 0 = the model's (default: ${DEFAULT-VALUE})")
    int contextLength;

    private final BufferedReader in;

    ChatCommand() {
        this(new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8)));
    }

    ChatCommand(BufferedReader in) {
        this.in = in;
    }

    @Override
    public Integer call() throws IOException {
        if (!io.jcascade.kernels.Backends.NAMES.contains(backend)) {
            throw new JCascade.CliException("unknown --backend " + backend + "; choose cpu, cuda or auto");
        }
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        SamplingParams sampling = new SamplingParams(temperature, topK, topP, minP, 1.0f, 64,
                seed != null ? seed : System.nanoTime());
        GenerationParams params = GenerationParams.defaults().withMaxTokens(maxTokens).withSampling(sampling);
        ModelOptions options = ModelOptions.defaults().withBackend(backend).withThreads(threads)
                .withContextLength(contextLength);
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
