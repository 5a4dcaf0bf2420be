package io.jcascade.cli;

import io.jcascade.cascade.Cascade;
import io.jcascade.cascade.CascadeConfig;
import io.jcascade.cascade.ConfigException;
import io.jcascade.cli.JCascade.CliException;
import io.jcascade.cli.server.CascadeBackend;
import io.jcascade.cli.server.ModelBackend;
import io.jcascade.cli.server.OpenAiServer;
import io.jcascade.cli.server.ServerBackend;
import io.jcascade.engine.ModelOptions;
import java.io.IOException;
import java.io.PrintWriter;
import java.net.BindException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code jcascade serve}: an OpenAI-compatible HTTP server for one model or a whole cascade.
 *
 * <pre>
 * ./jcascade serve --model models/stories260K.gguf --port 8080 --parallel 4
 * ./jcascade serve --model models/arith-large.gguf --chat-format raw --port 8081
 * ./jcascade serve --cascade models/arith-cascade.json
 * curl -s http://127.0.0.1:8080/v1/completions -d '{"prompt": "Once upon a time", "max_tokens": 16, "temperature": 0}'
 * </pre>
 */
@Command(name = "serve", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Serve a model (or a cascade) over HTTP with OpenAI's API: POST /v1/completions, "
                + "POST /v1/chat/completions, GET /v1/models, GET /health, GET /metrics.",
            "The request's \"model\" key is ignored (as llama.cpp's server does). Ctrl-C stops it gracefully."})
final class ServeCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Source source;

    static final class Source {
        @Option(names = "--model", required = true, paramLabel = "FILE", description = "GGUF model file to serve")
        Path model;

        @Option(names = "--cascade", required = true, paramLabel = "CONFIG.json",
                description = "answer every request through this cascade (see docs/CASCADE.md)")
        Path cascade;
    }

    @Option(names = "--host", defaultValue = "127.0.0.1", paramLabel = "ADDR",
            description = "address to listen on (default: ${DEFAULT-VALUE}; 0.0.0.0 for every interface)")
    String host;

    @Option(names = "--port", defaultValue = "8080", paramLabel = "N",
            description = "TCP port; 0 picks a free one (default: ${DEFAULT-VALUE})")
    int port;

    @Option(names = "--parallel", defaultValue = "4", paramLabel = "N",
            description = "generations that run at once (default: ${DEFAULT-VALUE})")
    int parallel;

    @Option(names = "--sequences", defaultValue = "1", paramLabel = "N",
            description = "with --model: decode up to N of the running generations together, one step reading the "
                    + "weights once for all (at most --parallel; default: ${DEFAULT-VALUE}, each on its own)")
    int sequences;

    @Option(names = "--queue", defaultValue = "16", paramLabel = "N",
            description = "requests that may wait for a slot; past that the server answers 503 (default: ${DEFAULT-VALUE})")
    int queue;

    @Option(names = "--threads", paramLabel = "N",
            description = "CPU threads; 0 = one per core (default: 0, or the cascade config's)")
    Integer threads;

    @Option(names = "--ctx-size", defaultValue = "0", paramLabel = "N",
            description = "context length; 0 = the model's (default: ${DEFAULT-VALUE})")
    int contextLength;

    @Option(names = "--backend", defaultValue = "auto", paramLabel = "B",
            description = "cpu, cuda or auto (default: ${DEFAULT-VALUE})")
    String backend;

    @Option(names = "--alias", paramLabel = "NAME", description = "model id in responses (default: the file name)")
    String alias;

    @Option(names = "--chat-format", defaultValue = "template", paramLabel = "F",
            description = "how chat messages become a prompt: template (the model's chat template, else plain "
                    + "\"User:\" lines), plain, or raw (message contents joined by newlines, for base models) "
                    + "(default: ${DEFAULT-VALUE})")
    String chatFormat;

    @Option(names = "--shutdown-grace", defaultValue = "5", paramLabel = "SECONDS",
            description = "on Ctrl-C, how long running requests may finish (default: ${DEFAULT-VALUE})")
    int grace;

    @Override
    public Integer call() throws Exception {
        if (parallel < 1 || queue < 0 || port < 0 || port > 65535 || grace < 0 || contextLength < 0
                || (threads != null && threads < 0)) {
            throw new CliException("--parallel must be >= 1, --queue >= 0, --port 0..65535, --shutdown-grace >= 0,"
                    + " --ctx-size >= 0, --threads >= 0");
        }
        if (!io.jcascade.kernels.Backends.NAMES.contains(backend)) {
            throw new CliException("unknown --backend " + backend + "; choose cpu, cuda or auto");
        }
        if (sequences < 1 || sequences > parallel) {
            throw new CliException("--sequences must be between 1 and --parallel (" + parallel + "): " + sequences);
        }
        if (sequences > 1 && source.model == null) {
            throw new CliException("--sequences works with --model; a cascade's local tiers generate on their own");
        }
        ModelBackend.ChatFormat format;
        try {
            format = ModelBackend.ChatFormat.valueOf(chatFormat.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new CliException("unknown --chat-format " + chatFormat + "; choose template, plain or raw");
        }
        PrintWriter err = spec.commandLine().getErr();
        ServerBackend b = source.model != null ? loadModel(format) : loadCascade();
        OpenAiServer server;
        try {
            server = OpenAiServer.start(b, OpenAiServer.Options.defaults().withHost(host).withPort(port)
                    .withParallel(parallel).withQueue(queue).withShutdownGrace(Duration.ofSeconds(grace)), err);
        } catch (BindException e) {
            b.close();
            throw new CliException("cannot listen on " + host + ":" + port + ": " + e.getMessage());
        } catch (IOException | RuntimeException e) {
            b.close();
            throw e;
        }
        String chat = b instanceof ModelBackend mb ? ", chat: " + mb.chatDescription() : "";
        String together = sequences > 1 ? ", " + sequences + " decoded together" : "";
        err.println("jcascade: serving " + b.name() + " at " + server.baseUri() + " (parallel " + parallel + together
                + ", queue " + queue + chat + "); Ctrl-C stops");
        err.flush();
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            err.println("jcascade: stopping: no new connections; running requests get " + grace + " s");
            err.flush();
            server.close();
            err.println("jcascade: stopped");
            err.flush();
            stopped.countDown();
        }, "jcascade-shutdown"));
        stopped.await();
        return 0;
    }

    private ServerBackend loadModel(ModelBackend.ChatFormat format) throws IOException {
        ModelOptions options = ModelOptions.defaults().withBackend(backend).withThreads(threads != null ? threads : 0)
                .withContextLength(contextLength);
        return ModelBackend.load(source.model, options, alias, format, sequences);
    }

    private ServerBackend loadCascade() throws IOException {
        if (!Files.isRegularFile(source.cascade)) {
            throw new CliException("no such config file: " + source.cascade);
        }
        try {
            CascadeConfig c = CascadeConfig.load(source.cascade);
            if (threads != null) {
                c = c.withLocalThreads(threads);
            }
            return new CascadeBackend(Cascade.builder().config(c).build());
        } catch (ConfigException e) {
            throw new CliException(e.getMessage());
        } catch (IllegalArgumentException e) {
            throw new CliException(e.getMessage());
        }
    }
}
